"""Training pipeline: trains one classifier on exactly one dataset artifact version.

The dataset is passed as an artifact version *id* and resolved in the pipeline body,
never "latest by name": the autopilot decides which version to train on, and a newer
version published between that decision and the run start must not be picked up
instead. Resolving in the body also makes the run record that version as its input.

Evaluation uses the ``iris_testing_dataset`` written by the same run that wrote the
training dataset; a dataset registered with ``save_artifact`` has no such companion,
so a held-out split of the dataset itself is used instead. Metrics go to the model
version (``log_metadata(..., infer_model=True)``), where the promoter reads them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from zenml import ArtifactConfig, Model, log_metadata, pipeline, step
from zenml.client import Client
from zenml.enums import ArtifactType
from zenml.models import ArtifactVersionResponse

from pipelines import DEFAULT_MODEL_NAME, TESTING_DATASET, TRAINED_MODEL
from pipelines._launch import default_run_name, run_pipeline
from pipelines.datasets import (
    LABEL_COLUMN,
    feature_columns,
    split_frame,
    validate_training_frame,
)

EVAL_FROM_TESTING_DATASET = "testing_dataset"
EVAL_FROM_HOLDOUT_SPLIT = "holdout_split"
HOLDOUT_TEST_SIZE = 0.25
HOLDOUT_RANDOM_STATE = 0


@step
def split_holdout(
    dataset: pd.DataFrame,
) -> tuple[
    Annotated[pd.DataFrame, "holdout_train_split"],
    Annotated[pd.DataFrame, "holdout_eval_split"],
]:
    """Hold out part of a dataset that came without a testing dataset of its own.

    The ``return a, b`` literal matters: ZenML only treats a tuple annotation as
    several outputs when the function's source returns a tuple expression.
    """
    validate_training_frame(dataset)
    train, evaluation = split_frame(dataset, HOLDOUT_TEST_SIZE, HOLDOUT_RANDOM_STATE)
    return train, evaluation


@step
def train_classifier(
    train: pd.DataFrame,
) -> Annotated[
    ClassifierMixin, ArtifactConfig(name=TRAINED_MODEL, artifact_type=ArtifactType.MODEL)
]:
    """Fit a logistic regression; validation first so a bad dataset fails clearly."""
    validate_training_frame(train)
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(train[feature_columns(train)], train[LABEL_COLUMN])
    return classifier


@step
def evaluate_classifier(
    classifier: ClassifierMixin,
    train: pd.DataFrame,
    evaluation: pd.DataFrame,
    eval_source: str,
    dataset_version_id: str,
    dataset_artifact_name: str,
    dataset_artifact_version: str,
) -> Annotated[float, "accuracy"]:
    """Score the classifier and log the metrics to the model version being trained."""
    validate_training_frame(evaluation)
    predicted = classifier.predict(evaluation[feature_columns(evaluation)])
    truth = evaluation[LABEL_COLUMN]
    accuracy = float(accuracy_score(truth, predicted))
    log_metadata(
        metadata={
            "accuracy": accuracy,
            "f1_macro": float(f1_score(truth, predicted, average="macro")),
            "n_train_rows": len(train),
            "n_eval_rows": len(evaluation),
            "eval_source": eval_source,
            "dataset_version_id": dataset_version_id,
            "dataset_artifact_name": dataset_artifact_name,
            "dataset_artifact_version": dataset_artifact_version,
        },
        infer_model=True,
    )
    return accuracy


def describe_dataset(dataset_version_id: UUID) -> ArtifactVersionResponse:
    """Fetch an artifact version eagerly, even inside a pipeline body.

    ``Client().get_artifact_version`` is lazy during pipeline compilation; the store
    call underneath it is not.
    """
    return Client().zen_store.get_artifact_version(dataset_version_id, hydrate=True)


def find_testing_dataset(dataset: ArtifactVersionResponse) -> ArtifactVersionResponse | None:
    """Return the testing dataset written by the run that wrote ``dataset``, if any.

    Prefers an output of the same step; ``None`` for datasets saved outside a pipeline
    (no producer run) or whose run wrote no ``iris_testing_dataset``.
    """
    run_id = dataset.producer_pipeline_run_id
    if run_id is None:
        return None
    candidates: list[tuple[bool, ArtifactVersionResponse]] = []
    for step_run in Client().get_pipeline_run(run_id).steps.values():
        for version in step_run.outputs.get(TESTING_DATASET, []):
            if version.id != dataset.id:
                candidates.append((step_run.id == dataset.producer_step_run_id, version))
    candidates.sort(key=lambda candidate: not candidate[0])
    return candidates[0][1] if candidates else None


@pipeline(enable_cache=False, model=Model(name=DEFAULT_MODEL_NAME))
def training_pipeline(dataset_version_id: str) -> None:
    """Train and evaluate a classifier on the dataset artifact version with this id.

    Inside a pipeline body ``Client().get_artifact_version`` returns a lazy loader that
    ZenML evaluates when the step starts (by id, so still exactly this version), and
    the step records it as its input. Choosing the evaluation source needs real data
    now, so ``describe_dataset`` queries the store directly; it also makes an unknown
    id fail at launch, before a run and an empty model version exist.
    """
    described = describe_dataset(UUID(dataset_version_id))
    dataset = Client().get_artifact_version(UUID(dataset_version_id))
    testing = find_testing_dataset(described)
    if testing is None:
        train, evaluation = split_holdout(dataset)
        eval_source = EVAL_FROM_HOLDOUT_SPLIT
    else:
        train, evaluation = dataset, testing
        eval_source = EVAL_FROM_TESTING_DATASET
    classifier = train_classifier(train)
    evaluate_classifier(
        classifier=classifier,
        train=train,
        evaluation=evaluation,
        eval_source=eval_source,
        dataset_version_id=str(described.id),
        dataset_artifact_name=described.name,
        dataset_artifact_version=described.version,
    )


def launch_training(
    dataset_version_id: str,
    model_name: str,
    tags: list[str],
    run_name: str | None = None,
) -> UUID:
    """Run ``training_pipeline`` on the active stack; return the run id, raise if it failed.

    A failed step raises ``PipelineRunFailed`` (a ``RuntimeError``) carrying the step's
    message. Each run creates a new version of model ``model_name``, even when a step
    fails (the model version is created at run start and then has no metrics); an
    unknown dataset id raises ``KeyError`` before any run or model version exists.
    """
    name = run_name or default_run_name(training_pipeline.name)
    configured = training_pipeline.with_options(
        model=Model(name=model_name),
        tags=list(tags) or None,
        run_name=name,
        enable_cache=False,
    )
    return run_pipeline(configured, name, dataset_version_id=dataset_version_id)
