"""The launcher a worker calls: run any ZenML pipeline in-process for one action.

The pipeline runs with a run configuration derived from the user's YAML (if any), written
beside the run's log (`runs/<key>.run-config.yaml`) and applied the way ZenML applies any
`config_path`. ZenML lets a YAML win over code, so everything the daemon relies on is set in
that YAML, whatever the user's said:
- `model`: the automation's model; training with `version: null` (a new version per run:
  ZenML merges a run configuration into the code's field by field, so only an explicit null
  clears a version set in code, `@pipeline(model=Model(name=..., version="v1"))`), inference
  pinned to the production version it was launched for (by a name ZenML resolves to exactly
  that version: `service/core/pinning.py`). The YAML's other model fields are kept.
- `parameters`: the user's, then the daemon's filled ones;
- `tags`: the user's plus `autopilot` and the action key (recovery and loop protection);
- `run_name`: chosen here, ending with the attempt's token, so the attempt's run can be found
  (failed or not); `enable_cache: false`, so an inference on a new model version really runs.

After the run, the launcher checks it wrote where it had to (`check_pinned`, `check_trained`).
A run that did not is tagged `autopilot:rejected` and its attempt fails (`RunRejected`): ZenML
cannot mark a completed run failed, and the tag tells the daemon (and a fresh ledger) that it
does not count, nor does the model version it created.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

import yaml

from service.core.records import REJECTED_RUN_TAG
from service.files import write_private

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import ModelVersionResponse, PipelineRunResponse
    from zenml.pipelines.pipeline_definition import Pipeline

LAUNCHER = "service.runtime.launch:launch_pipeline"


class PipelineRunFailed(RuntimeError):
    """A launched run failed; the message carries the failing steps' own errors."""

    def __init__(self, message: str, run_id: UUID | None) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunRejected(RuntimeError):
    """The run completed, but wrote into (or served) a model version it must not have: an
    inference on another version than its pin, a training into a version it did not create."""

    def __init__(self, message: str, run_id: UUID) -> None:
        super().__init__(message)
        self.run_id = run_id


def launch_pipeline(
    *,
    pipeline: str,
    source_root: str,
    config_path: str | None,
    parameters: dict[str, Any],
    model_name: str,
    model_version: str | None,
    model_version_id: str | None,
    tags: list[str],
    run_config_path: str,
    run_token: str | None = None,
) -> str:
    """Run `pipeline` (`module:attribute` under `source_root`) once; return its run id. The
    run's name ends with `run_token`, the attempt's id in the ledger, so that recovery finds
    this attempt's run by its tag and name, whatever the clocks say."""
    from service.runtime.sources import activate, load_attribute
    from service.runtime.stack_refresh import use_stack_as_stored

    activate(source_root)
    use_stack_as_stored()  # before the user's modules, which may read it when imported
    target: Pipeline = load_attribute(pipeline)
    run_name = default_run_name(target.name, run_token)
    config = run_configuration(config_path, parameters, model_name, model_version, tags, run_name)
    write_private(run_config_path, yaml.safe_dump(config, sort_keys=False))
    run_id = run_pipeline(target.with_options(config_path=run_config_path), run_name)
    if model_version_id is not None:
        check_pinned(run_id, model_version_id)
    else:
        check_trained(run_id, model_name)
    return str(run_id)


def run_configuration(
    config_path: str | None,
    parameters: dict[str, Any],
    model_name: str,
    model_version: str | None,
    tags: list[str],
    run_name: str,
) -> dict[str, Any]:
    """The user's run configuration with what the daemon relies on set over it."""
    config: dict[str, Any] = {}
    if config_path is not None:
        config = yaml.safe_load(Path(config_path).read_text()) or {}
    # An explicit null, not a missing key: ZenML merges this into the code's model field by
    # field, and a missing `version` would leave one set in code (every run into one version).
    model = {**(config.get("model") or {}), "name": model_name, "version": None}
    if model_version is not None:
        model["version"] = str(model_version)
    user_tags = [tag for tag in config.get("tags") or [] if tag not in tags]
    return {
        **config,
        "model": model,
        "parameters": {**(config.get("parameters") or {}), **parameters},
        "tags": [*user_tags, *tags],
        "run_name": run_name,
        "enable_cache": False,
    }


def check_pinned(run_id: UUID, model_version_id: str) -> None:
    """An inference must have run on the version it was pinned to."""
    from zenml.client import Client

    client = Client()
    run = client.get_pipeline_run(run_id)
    used = run.model_version.id if run.model_version else None
    if str(used) != model_version_id:
        _reject(
            client,
            run,
            f"run {run.name} used model version {used}, not the pinned {model_version_id}",
        )


def check_trained(run_id: UUID, model_name: str) -> None:
    """A training must have written into one version of its model: the one it created.

    Every version a run writes into is linked to it (ZenML links the run's own version, and
    the version of any step configured with a `Model` of its own). A version was created by
    this run when the run is the first one configured with it and the version is not older
    than the run (ZenML creates a run's new version right after the run, in the same store
    call, so both times come from one clock). A version set in code is cleared by the run
    configuration (`version: null`); this is what catches the rest, e.g. a step with
    `@step(model=Model(name=..., version="production"))`, whose outputs and metadata land in
    production. Only a completed run is checked: one that goes on on another orchestrator has
    written nothing yet but its own version."""
    from zenml.client import Client
    from zenml.utils.pagination_utils import depaginate

    client = Client()
    run = client.get_pipeline_run(run_id)
    if not run.status.is_finished:
        return
    own = run.model_version
    if own is None or own.model.name != model_name:
        _reject(client, run, f"run {run.name} created no version of model {model_name}")
    if not _created_by(client, own, run):
        _reject(
            client,
            run,
            f"run {run.name} trained into version {own.name} of model {model_name}, which it "
            "did not create (a version set where the launcher cannot clear it)",
        )
    links = depaginate(client.list_model_version_pipeline_run_links, pipeline_run_id=run.id)
    for link in links:
        if link.model_version == own.id:
            continue
        other = client.get_model_version(model_version_name_or_number_or_id=link.model_version)
        if other.model.name == model_name:
            _reject(
                client,
                run,
                f"run {run.name} also wrote into version {other.name} of model {model_name} "
                f"(number {other.number}, stage {other.stage}): a step of the pipeline is "
                f"configured with its own Model(name={model_name!r}, version=...); a training "
                "run may only write into the version it creates",
            )


def _created_by(client: Client, version: ModelVersionResponse, run: PipelineRunResponse) -> bool:
    first = client.list_pipeline_runs(
        model_version_id=version.id, sort_by="asc:created", size=1, hydrate=False
    )
    return bool(first.items) and first.items[0].id == run.id and version.created >= run.created


def _reject(client: Client, run: PipelineRunResponse, why: str) -> NoReturn:
    """Tag the run as rejected, then fail the attempt with `why`."""
    from zenml.models import PipelineRunUpdate

    try:
        client.zen_store.update_run(run.id, PipelineRunUpdate(add_tags=[REJECTED_RUN_TAG]))
    except Exception as error:  # the attempt fails all the same; say the tag is missing
        why = f"{why} (and it could not be tagged {REJECTED_RUN_TAG}: {error})"
    raise RunRejected(why, run.id)


def default_run_name(pipeline_name: str, token: str | None = None) -> str:
    """A run name in ZenML's default shape, chosen here so the run can be found by it; with
    a token, the token ends it (`<pipeline>-<time>-<token>`)."""
    name = f"{pipeline_name}-{datetime.now(UTC):%Y_%m_%d-%H_%M_%S_%f}"
    return f"{name}-{token}" if token else name


def run_pipeline(configured: Pipeline, run_name: str, **params: Any) -> UUID:
    """Run ``configured(**params)`` under ``run_name``; return its id or raise.

    ``configured`` must already carry ``run_name``: the name is how the run is found when
    calling the pipeline returns ``None`` (a schedule, or ``ZENML_PREVENT_PIPELINE_EXECUTION``)
    and when it raises. The local orchestrator raises a bare ``RuntimeError("... failure in
    step(s): x")`` for a failed step; that is re-raised as ``PipelineRunFailed`` naming the
    step's own error, outside the ``except`` block so that the step's message is the root cause
    reported upstream.
    """
    from zenml.client import Client
    from zenml.enums import ExecutionStatus

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
    if run.status in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
        raise PipelineRunFailed(_describe_run_failure(run), run.id)
    return run.id


def _explain_failure(error: RuntimeError, run_name: str) -> RuntimeError:
    """Attach the failing steps' errors to ZenML's generic run-failure error."""
    from zenml.client import Client

    try:
        run = Client().get_pipeline_run(run_name, allow_name_prefix_match=False)
    except KeyError:
        return error  # failed before the run existed: ZenML's error says it all
    return PipelineRunFailed(f"{error}: {_describe_run_failure(run)}", run.id)


def _describe_run_failure(run: PipelineRunResponse) -> str:
    """One line per failed step: ``step: ExceptionType: message``."""
    from zenml.enums import ExecutionStatus

    details = []
    for step_run in run.steps.values():
        info = step_run.exception_info
        if step_run.status not in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
            continue
        if info is None:
            continue
        kind = (info.source or "Exception").rsplit(".", 1)[-1]
        details.append(f"{step_run.name}: {kind}: {info.message}")
    return "; ".join(details) or f"run {run.name} ended with status {run.status}"
