"""Feature-engineering pipeline: publishes one new version of each iris dataset per run.

Each run writes ``iris_training_dataset``, ``iris_testing_dataset`` and the unlabeled
``iris_inference_dataset`` (see ``pipelines.datasets`` for the contract). Caching is
off because every run must publish *new* versions: the autopilot reacts to versions,
and a cache hit would re-use the old ones silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import pandas as pd
from zenml import add_tags, log_metadata, pipeline, step
from zenml.client import Client

from pipelines import INFERENCE_DATASET, TESTING_DATASET, TRAINING_DATASET
from pipelines._launch import default_run_name, run_pipeline
from pipelines.datasets import (
    LABEL_COLUMN,
    add_label_noise,
    load_iris_frame,
    split_frame,
)

SPLIT_STEP = "split_dataset"


@step
def split_dataset(
    test_size: float,
    random_state: int,
    label_noise: float,
    training_tags: list[str],
) -> tuple[
    Annotated[pd.DataFrame, TRAINING_DATASET],
    Annotated[pd.DataFrame, TESTING_DATASET],
    Annotated[pd.DataFrame, INFERENCE_DATASET],
]:
    """Split iris into train/test, add label noise to train, and drop labels for inference.

    Noise goes into the training set only, so a noisy dataset is judged against clean
    test labels and its model scores visibly worse. Tags are added here (not with a
    static ``ArtifactConfig``) because they are a run parameter and must land on the
    training dataset version only.
    """
    train, test = split_frame(load_iris_frame(), test_size, random_state)
    train = add_label_noise(train, label_noise, random_state)
    inference = test.drop(columns=[LABEL_COLUMN])
    if training_tags:
        add_tags(tags=list(training_tags), infer_artifact=True, artifact_name=TRAINING_DATASET)
    log_metadata(
        metadata={
            "label_noise": label_noise,
            "random_state": random_state,
            "test_size": test_size,
            "n_rows": len(train),
        },
        infer_artifact=True,
        artifact_name=TRAINING_DATASET,
    )
    return train, test, inference


@pipeline(enable_cache=False)
def feature_engineering_pipeline(
    test_size: float = 0.25,
    random_state: int = 0,
    label_noise: float = 0.0,
    training_tags: list[str] | None = None,
) -> None:
    """Publish new versions of the training, testing and inference datasets."""
    split_dataset(
        test_size=test_size,
        random_state=random_state,
        label_noise=label_noise,
        training_tags=list(training_tags or []),
    )


@dataclass(frozen=True)
class PublishedDatasets:
    """Ids and versions of the artifact versions one feature-engineering run wrote."""

    run_id: UUID
    training_id: UUID
    training_version: str
    testing_id: UUID
    inference_id: UUID


def launch_feature_engineering(
    *,
    test_size: float = 0.25,
    random_state: int = 0,
    label_noise: float = 0.0,
    training_tags: list[str] | None = None,
    run_tags: list[str] | None = None,
    run_name: str | None = None,
) -> PublishedDatasets:
    """Run ``feature_engineering_pipeline`` on the active stack and report what it wrote."""
    name = run_name or default_run_name(feature_engineering_pipeline.name)
    configured = feature_engineering_pipeline.with_options(
        run_name=name, tags=list(run_tags or []) or None, enable_cache=False
    )
    run_id = run_pipeline(
        configured,
        name,
        test_size=test_size,
        random_state=random_state,
        label_noise=label_noise,
        training_tags=list(training_tags or []),
    )
    return published_datasets(run_id)


def published_datasets(run_id: UUID) -> PublishedDatasets:
    """Read the three dataset versions a finished feature-engineering run produced."""
    outputs = Client().get_pipeline_run(run_id).steps[SPLIT_STEP].outputs
    training = outputs[TRAINING_DATASET][0]
    return PublishedDatasets(
        run_id=run_id,
        training_id=training.id,
        training_version=training.version,
        testing_id=outputs[TESTING_DATASET][0].id,
        inference_id=outputs[INFERENCE_DATASET][0].id,
    )
