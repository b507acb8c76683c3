"""A training pipeline that reads the active stack when imported, as ZenML's e2e template does
(`experiment_tracker = Client().active_stack.experiment_tracker` at module level, then
`@step(experiment_tracker=experiment_tracker.name)`): here the stack's container registry, which
only the stack its runs get (`AUTOPILOT_STACK`) has."""

from __future__ import annotations

from zenml import pipeline, step
from zenml.client import Client

container_registry = Client().active_stack.container_registry


@step(enable_cache=False, extra={"registry": container_registry.name})
def train(dataset_version_id: str) -> str:
    return dataset_version_id


@pipeline(enable_cache=False)
def training(dataset_version_id: str) -> None:
    train(dataset_version_id)
