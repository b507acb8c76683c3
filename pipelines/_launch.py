"""Run a pipeline in-process on the active stack and return the id of its run.

All launchers share this so that they agree on what the service relies on: a launcher
returns the run id of a run that did not fail, and otherwise raises a ``RuntimeError``
whose message says which step failed and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse
from zenml.pipelines.pipeline_definition import Pipeline

FAILED_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.STOPPED)


class PipelineRunFailed(RuntimeError):
    """A launched run failed; the message carries the failing steps' own errors."""

    def __init__(self, message: str, run_id: UUID | None) -> None:
        """Keep the run id so callers can inspect the failed run."""
        super().__init__(message)
        self.run_id = run_id


def default_run_name(pipeline_name: str) -> str:
    """A run name in ZenML's default shape, chosen here so the run can be found by it."""
    return f"{pipeline_name}-{datetime.now(UTC):%Y_%m_%d-%H_%M_%S_%f}"


def run_pipeline(configured: Pipeline, run_name: str, **params: Any) -> UUID:
    """Run ``configured(**params)`` under ``run_name``; return its id or raise.

    ``configured`` must already carry ``run_name`` (``with_options(run_name=...)``):
    the name is how the run is found when calling the pipeline returns ``None`` (a
    schedule, or ``ZENML_PREVENT_PIPELINE_EXECUTION``) and when it raises. The local
    orchestrator raises a bare ``RuntimeError("... failure in step(s): x")`` for a
    failed step; that is re-raised as ``PipelineRunFailed`` naming the step's own
    error (e.g. the dataset ``ValueError``), and raised outside the ``except`` block so
    that the step's message is the root cause reported upstream.
    """
    failure: RuntimeError | None = None
    try:
        returned = configured(**params)
    except RuntimeError as error:
        failure = error
    if failure is not None:
        raise _explain_failure(failure, run_name)
    run = Client().get_pipeline_run(
        returned.id if returned is not None else run_name, allow_name_prefix_match=False
    )
    if run.status in FAILED_STATUSES:
        raise PipelineRunFailed(_describe_run_failure(run), run.id)
    return run.id


def _explain_failure(error: RuntimeError, run_name: str) -> RuntimeError:
    """Attach the failing steps' errors to ZenML's generic run-failure error."""
    try:
        run = Client().get_pipeline_run(run_name, allow_name_prefix_match=False)
    except KeyError:
        return error  # failed before the run existed: ZenML's error says it all
    return PipelineRunFailed(f"{error}: {_describe_run_failure(run)}", run.id)


def _describe_run_failure(run: PipelineRunResponse) -> str:
    """One line per failed step: ``step: ExceptionType: message``."""
    details = []
    for step_run in run.steps.values():
        info = step_run.exception_info
        if step_run.status not in FAILED_STATUSES or info is None:
            continue
        kind = (info.source or "Exception").rsplit(".", 1)[-1]
        details.append(f"{step_run.name}: {kind}: {info.message}")
    return "; ".join(details) or f"run {run.name} ended with status {run.status}"
