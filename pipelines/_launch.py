"""Run a pipeline in-process on the active stack and return the id of its run.

All launchers share this so that they agree on one thing the service relies on: a
launcher returns only for a run that did not fail, and it always returns the run id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse
from zenml.pipelines.pipeline_definition import Pipeline


def run_pipeline(
    configured: Pipeline, tags: list[str], run_name: str | None, **params: Any
) -> UUID:
    """Call ``configured(**params)`` and return the run id, raising if the run failed.

    On the local orchestrator the call blocks and already raises ``RuntimeError`` when
    a step fails; that error is left to propagate. Calling a pipeline returns ``None``
    when ZenML decides not to run it (a schedule, or
    ``ZENML_PREVENT_PIPELINE_EXECUTION``), so the run is then looked up by name/tags.
    """
    returned = configured(**params)
    run = returned if returned is not None else _find_run(configured.name, tags, run_name)
    run = Client().get_pipeline_run(run.id)
    if run.status in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
        raise RuntimeError(f"pipeline run {run.name} ({run.id}) ended with status {run.status}")
    return run.id


def _find_run(pipeline_name: str, tags: list[str], run_name: str | None) -> PipelineRunResponse:
    """Find the run just launched when calling the pipeline did not return it."""
    client = Client()
    if run_name is not None:
        return client.get_pipeline_run(run_name, allow_name_prefix_match=False)
    if not tags:
        raise RuntimeError(
            f"pipeline {pipeline_name} returned no run and has neither a run name nor "
            "tags to find it by"
        )
    runs = client.list_pipeline_runs(
        pipeline=pipeline_name, tags=tags, sort_by="desc:created", size=1
    )
    if not runs.items:
        raise RuntimeError(f"no run of pipeline {pipeline_name} found with tags {tags}")
    return runs.items[0]
