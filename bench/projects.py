"""Pipelines that stand in for many users' projects in the benchmarks: each run publishes one
tagged version of the artifact `dataset_<project>` (a dynamic name, filled per run)."""

from __future__ import annotations

from typing import Annotated

from zenml import add_tags, pipeline, step


@step(enable_cache=False)
def publish(value: int) -> Annotated[list[int], "dataset_{project}"]:
    add_tags(tags=["approved"], infer_artifact=True)
    return [value]


@pipeline(enable_cache=False)
def project_producer(value: int) -> None:
    publish(value=value)


def produce(project: int | str, value: int) -> None:
    project_producer.with_options(substitutions={"project": str(project)})(value=value)
