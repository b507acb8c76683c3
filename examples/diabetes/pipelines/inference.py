"""Batch inference with the configured model version (by default: production)."""

from uuid import UUID

from steps import predict
from zenml import get_pipeline_context, pipeline
from zenml.client import Client


@pipeline
def inference(dataset_id: str) -> None:
    """Predict for one dataset version, given by id, with the run's model version.

    The model comes from the run configuration, e.g. `configs/inference.yaml`; the
    `diabetes_predictions` are linked to that model version.

    Args:
        dataset_id: Id of an artifact version holding a DataFrame of features.
    """
    model = get_pipeline_context().model
    if model is None:
        raise RuntimeError("inference needs a model: run it with configs/inference.yaml")
    model_artifact = model.get_model_artifact("diabetes_model")
    dataset = Client().get_artifact_version(UUID(dataset_id))
    predict(model=model_artifact, dataset=dataset)
