"""Pipelines that stand in for many users' projects in the benchmarks: each run of
`project_producer` publishes one tagged version of the artifact `dataset_<project>` (a dynamic
name, filled per run); each run of `project_trainer` makes a new version of `model_<project>`."""

from __future__ import annotations

from typing import Annotated

from zenml import Model, add_tags, log_metadata, pipeline, step


@step(enable_cache=False)
def publish(value: int) -> Annotated[list[int], "dataset_{project}"]:
    add_tags(tags=["approved"], infer_artifact=True)
    return [value]


@pipeline(enable_cache=False)
def project_producer(value: int) -> None:
    publish(value=value)


def produce(project: int | str, value: int) -> None:
    project_producer.with_options(substitutions={"project": str(project)})(value=value)


@step(enable_cache=False)
def fit(value: int) -> Annotated[list[int], "classifier"]:
    log_metadata(metadata={"accuracy": 0.9 + value / 100}, infer_model=True)
    return [value]


@pipeline(enable_cache=False)
def project_trainer(value: int) -> None:
    fit(value=value)


def train(project: int | str, value: int) -> None:
    """A training run of project `project`: a new version of `model_<project>`, made by the
    run, with the metric the promotion policy reads logged on it (as the iris pipeline does)."""
    project_trainer.with_options(model=Model(name=f"model_{project}"))(value=value)
