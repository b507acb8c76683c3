"""A training pipeline whose module fails to import: a helper it imports raises."""

from __future__ import annotations

from labels import LABELS
from zenml import pipeline, step


@step
def train(dataset_version_id: str) -> list[str]:
    return LABELS


@pipeline
def training(dataset_version_id: str) -> None:
    train(dataset_version_id)
