"""Batch-inference pipeline pinned to one model version number.

The model artifact is resolved at the pipeline level from the pipeline's ``Model``
(pattern 2 of "passing artifacts between pipelines"), not inside a step: a cached step
could otherwise keep serving an old model. The launcher pins ``Model(name, version=N)``
so the run reads the ``trained_model`` of version N, and the ``predictions`` it writes
are linked to that same version; no new model version is created.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import pandas as pd
from sklearn.base import ClassifierMixin
from zenml import Model, get_pipeline_context, log_metadata, pipeline, step
from zenml.client import Client
from zenml.enums import ModelStages

from pipelines import DEFAULT_MODEL_NAME, INFERENCE_DATASET, PREDICTIONS, TRAINED_MODEL
from pipelines._launch import default_run_name, run_pipeline
from pipelines.datasets import LABEL_COLUMN


def inference_features(classifier: ClassifierMixin, data: pd.DataFrame) -> pd.DataFrame:
    """Select the model's feature columns, in training order, with a clear error if absent.

    A labelled frame is accepted too (``target`` is ignored), so a testing dataset can
    be scored as is.
    """
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise ValueError("inference dataset must be a non-empty pandas DataFrame")
    expected = getattr(classifier, "feature_names_in_", None)
    if expected is None:
        return data.drop(columns=[LABEL_COLUMN], errors="ignore")
    names = [str(name) for name in expected]
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise ValueError(f"inference dataset lacks the model's feature columns: {missing}")
    return data[names]


@step
def predict(
    classifier: ClassifierMixin,
    data: pd.DataFrame,
) -> Annotated[pd.Series, PREDICTIONS]:
    """Predict a label per row; the index of the inference dataset is kept."""
    predictions = pd.Series(
        classifier.predict(inference_features(classifier, data)),
        index=data.index,
        name="prediction",
    )
    log_metadata(metadata={"n_rows": len(predictions)}, infer_artifact=True)
    return predictions


@pipeline(
    enable_cache=False,
    model=Model(name=DEFAULT_MODEL_NAME, version=ModelStages.PRODUCTION),
)
def do_predictions(
    inference_dataset_name: str = INFERENCE_DATASET, inference_dataset_id: str | None = None
) -> None:
    """Score the latest version of ``inference_dataset_name`` with the pipeline's model, or
    exactly the artifact version ``inference_dataset_id`` when given (the autopilot gives it
    the scoring dataset version it was launched for).

    The default model is the production version of ``iris_classifier``; the launcher
    replaces it with an explicit version number. Both look-ups below are lazy inside a
    pipeline body: ZenML resolves them when the ``predict`` step starts, so "latest"
    means latest at step start, and the step records the exact versions as inputs.
    """
    model = get_pipeline_context().model
    if model is None:
        raise RuntimeError("do_predictions needs a Model configured on the pipeline")
    classifier = model.get_model_artifact(TRAINED_MODEL)
    # A version id is looked up by id, a name gives the latest version of that name.
    data = Client().get_artifact_version(inference_dataset_id or inference_dataset_name)
    predict(classifier=classifier, data=data)


def launch_inference(
    model_name: str,
    model_version_number: int,
    inference_dataset_name: str,
    tags: list[str],
    run_name: str | None = None,
) -> UUID:
    """Run ``do_predictions`` pinned to version ``model_version_number``; return the run id.

    Raises ``KeyError`` if that model version does not exist (checked first, because
    ZenML's own error for a missing numbered version talks about reserved names) and
    ``PipelineRunFailed`` (a ``RuntimeError``) if the run fails.
    """
    Client().get_model_version(model_name, model_version_number)
    name = run_name or default_run_name(do_predictions.name)
    configured = do_predictions.with_options(
        model=Model(name=model_name, version=model_version_number),
        tags=list(tags) or None,
        run_name=name,
        enable_cache=False,
    )
    return run_pipeline(configured, name, inference_dataset_name=inference_dataset_name)
