"""Score the configured model version on an evaluation dataset (by default: production)."""

from uuid import UUID

from steps import score_model
from zenml import get_pipeline_context, pipeline
from zenml.client import Client


@pipeline
def evaluation(dataset_id: str) -> None:
    """Score the run's model version on one dataset version, given by id.

    Every model version scored on the same dataset version gets a score comparable with the
    others', unlike the rmse each training measured on its own test split.

    Args:
        dataset_id: Id of a `diabetes_holdout` artifact version.
    """
    model = get_pipeline_context().model
    if model is None:
        raise RuntimeError("evaluation needs a model: run it with configs/evaluation.yaml")
    model_artifact = model.get_model_artifact("diabetes_model")
    dataset = Client().get_artifact_version(UUID(dataset_id))
    score_model(model=model_artifact, dataset=dataset)
