"""The store adapter: the only code in the daemon that touches the ZenML client.

It turns ZenML responses into the core's plain records and performs the few writes the daemon
makes (stage changes, decision metadata, marking an orphaned run failed). Every read is a
filtered, indexed query: per-artifact `version_number` and per-model `number` cursors, so an
idle poll does not grow with the size of the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from service.core.polling import PollGroup, Seen
from service.core.records import DatasetVersion, ModelVersionInfo, RunInfo, RunStatus

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import ArtifactVersionResponse, ModelVersionResponse, PipelineRunResponse

PAGE_SIZE = 100
DECISION_METADATA_KEY = "autopilot_decision"


class StoreAdapter:
    """Reads observations from a ZenML store and applies the daemon's decisions to it."""

    def __init__(self, client: Client | None = None) -> None:
        from zenml.client import Client

        self._client = client or Client()
        self._finished_runs: dict[str, RunInfo] = {}  # finished runs never change: cache them

    # -- connection and stack -----------------------------------------------------------------

    def describe(self) -> dict[str, str]:
        """Where the store is (never its credentials)."""
        config = self._client.zen_store.config
        return {"store_type": str(config.type.value), "store_url": _safe_url(config.url)}

    def ping(self) -> None:
        """One cheap round trip; raises when the store is unreachable."""
        self._client.zen_store.get_store_info()

    def stack_id(self, name_or_id: str) -> str:
        """The id of a stack, to run pipelines on it; KeyError when there is no such stack."""
        return str(self._client.get_stack(name_or_id, allow_name_prefix_match=False).id)

    def orchestrator_runs_in_process(self, stack: str | None) -> bool:
        """True when runs execute inside the launching process (the local orchestrator).

        Such a run cannot outlive its worker, so a run still `running` after the daemon crashed
        is an orphan. Runs on other orchestrators go on by themselves and are watched instead.
        """
        from zenml.enums import StackComponentType

        model = self._client.get_stack(stack) if stack else self._client.active_stack_model
        orchestrator = model.components[StackComponentType.ORCHESTRATOR][0]
        return str(orchestrator.flavor_name) == "local"

    # -- datasets -----------------------------------------------------------------------------

    def latest_dataset_number(self, name: str) -> int:
        page = self._client.list_artifact_versions(
            artifact=name, sort_by="desc:version_number", size=1
        )
        numbers = [_version_number(v) for v in page.items]
        return max((n for n in numbers if n is not None), default=0)

    def dataset_versions_above(
        self, group: PollGroup, cursors: Mapping[str, int], seen: Seen
    ) -> Iterator[DatasetVersion]:
        """New versions of a group of artifacts in one query (`oneof:`), lowest number first:
        those above each artifact's own cursor. Judged ones read on the way go to `seen`."""
        pages = self._pages(
            self._client.list_artifact_versions,
            artifact=_one_of(list(group.names)),
            version_number=f"gt:{group.above}",
            sort_by="asc:version_number",
            hydrate=False,
            **_leaving_out(seen.ids_above(group)),
        )
        for response in pages:
            name, number = response.artifact.name, _version_number(response)
            if number is not None and _unseen(name, str(response.id), number, cursors, seen):
                yield self._dataset_record(response)

    def dataset_versions_with_tags(
        self, name: str, tags: list[str], created_before: datetime | None = None
    ) -> Iterator[DatasetVersion]:
        """Versions of `name` carrying every tag (for approvals that come after creation)."""
        filters: dict[str, Any] = {"artifact": name, "tags": [f"equals:{t}" for t in tags]}
        if created_before is not None:
            filters["created"] = f"lt:{created_before:%Y-%m-%d %H:%M:%S}"
        yield from self._dataset_pages(sort_by="asc:created", **filters)

    def dataset_version(self, id: str) -> DatasetVersion | None:
        try:
            response = self._client.get_artifact_version(UUID(id), hydrate=False)
        except KeyError:
            return None
        return self._dataset_record(response)

    def _dataset_pages(self, **filters: Any) -> Iterator[DatasetVersion]:
        for response in self._pages(self._client.list_artifact_versions, hydrate=False, **filters):
            yield self._dataset_record(response)

    def _dataset_record(self, response: ArtifactVersionResponse) -> DatasetVersion:
        run_id = response.producer_pipeline_run_id
        return DatasetVersion(
            id=str(response.id),
            artifact_name=response.artifact.name,
            version=str(response.version),
            number=_version_number(response),
            tags=frozenset(tag.name for tag in response.tags),
            created=response.created,
            producer=self.run(str(run_id)) if run_id else None,
            from_step=str(response.save_type.value) == "step_output",
        )

    # -- runs ---------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunInfo | None:
        cached = self._finished_runs.get(run_id)
        if cached is not None:
            return cached
        try:
            response = self._client.get_pipeline_run(UUID(run_id), hydrate=False)
        except KeyError:
            return None
        return self._run_record(response)

    def runs_for_key(self, key: str) -> list[RunInfo]:
        """Every run launched for an action key, oldest first (one per attempt)."""
        page = self._client.list_pipeline_runs(
            tags=f"equals:{key}", sort_by="asc:created", size=PAGE_SIZE
        )
        return [self._run_record(r) for r in page.items]

    def run_failure(self, run_id: str) -> str | None:
        """Why a run failed, from its failed steps' recorded exceptions (not the launcher's
        generic wrapper), so the reason is the same whichever orchestrator ran it."""
        steps = self._client.list_run_steps(
            pipeline_run_id=UUID(run_id), status="failed", hydrate=True, size=PAGE_SIZE
        )
        reasons = []
        for step in steps.items:
            info = step.exception_info
            if info is None:
                continue
            kind = (info.source or "").rsplit(".", 1)[-1] or "Error"
            message = info.message or info.traceback.strip().splitlines()[-1]
            reasons.append(f"step {step.name}: {kind}: {message}")
        return "; ".join(reasons)[:2000] or None

    def mark_run_failed(self, run_id: str, reason: str) -> None:
        """Close an orphaned run (its process died with the daemon) so the store tells the truth."""
        from zenml.enums import ExecutionStatus
        from zenml.models import PipelineRunUpdate

        self._client.zen_store.update_run(
            UUID(run_id),
            PipelineRunUpdate(status=ExecutionStatus.FAILED, status_reason=reason[:250]),
        )
        self._finished_runs.pop(run_id, None)

    def _run_record(self, response: PipelineRunResponse) -> RunInfo:
        status = response.status
        if status.is_finished:
            folded = RunStatus.SUCCEEDED if status.is_successful else RunStatus.FAILED
        else:
            folded = RunStatus.IN_PROGRESS
        record = RunInfo(
            id=str(response.id),
            status=folded,
            tags=frozenset(tag.name for tag in response.tags),
            name=response.name,
            created=response.created,
            start_time=response.start_time,
            end_time=response.end_time,
        )
        if folded is not RunStatus.IN_PROGRESS:
            self._finished_runs[record.id] = record
        return record

    # -- models -------------------------------------------------------------------------------

    def latest_model_number(self, model: str) -> int:
        page = self._client.list_model_versions(model=model, sort_by="desc:number", size=1)
        return max((v.number for v in page.items), default=0)

    def model_versions_above(
        self, group: PollGroup, cursors: Mapping[str, int], seen: Seen
    ) -> Iterator[ModelVersionInfo]:
        """New versions of a group of models in one query (`oneof:`), lowest number first: those
        above each model's own cursor, read in full. Judged ones read on the way go to `seen`."""
        pages = self._pages(
            self._client.list_model_versions,
            model=_one_of(list(group.names)),
            number=f"gt:{group.above}",
            sort_by="asc:number",
            hydrate=False,
            **_leaving_out(seen.ids_above(group)),
        )
        for response in pages:
            name, number = response.model.name, response.number
            if not _unseen(name, str(response.id), number, cursors, seen):
                continue
            if (full := self.model_version(str(response.id))) is not None:
                yield full

    def model_versions_after(self, model: str, number: int) -> Iterator[ModelVersionInfo]:
        yield from self._model_pages(model=model, number=f"gt:{number}", sort_by="asc:number")

    def model_versions_created_before(
        self, model: str, moment: datetime
    ) -> Iterator[ModelVersionInfo]:
        created = f"lt:{moment:%Y-%m-%d %H:%M:%S}"
        yield from self._model_pages(model=model, created=created, sort_by="asc:number")

    def model_version(self, id: str, metric_artifact: str | None = None) -> ModelVersionInfo | None:
        """A model version by id; with the run metadata of its linked artifact of that name
        when a promotion policy reads its metric there."""
        try:
            response = self._client.get_model_version(
                model_version_name_or_number_or_id=UUID(id), hydrate=True
            )
        except KeyError:
            return None
        record = self._model_record(response)
        if metric_artifact is None:
            return record
        metadata = self._linked_artifact_metadata(response, metric_artifact)
        artifacts = {} if metadata is None else {metric_artifact: metadata}
        return replace(record, artifact_metadata=artifacts)

    def _linked_artifact_metadata(
        self, response: ModelVersionResponse, name: str
    ) -> dict[str, object] | None:
        """Run metadata of the newest version of the artifact `name` linked to a model version."""
        page = self._client.list_artifact_versions(
            model_version_id=response.id,
            artifact=name,
            sort_by="desc:created",
            size=1,
            hydrate=True,
        )
        return dict(page.items[0].run_metadata) if page.items else None

    def production_versions(self, model: str) -> list[ModelVersionInfo]:
        """Every version in `production` (normally zero or one, more after a race), in full."""
        pages = self._model_pages(
            model=model, stage="production", sort_by="asc:number", with_producer=False
        )
        return list(pages)

    def production_versions_of(self, models: list[str]) -> dict[str, list[ModelVersionInfo]]:
        """The production versions of several models in one query, by model name, without their
        metadata (enough to see a change; read a changed one in full with `model_version`)."""
        if not models:
            return {}
        found: dict[str, list[ModelVersionInfo]] = {}
        pages = self._pages(
            self._client.list_model_versions,
            model=_one_of(models),
            stage="production",
            sort_by="asc:number",
            hydrate=False,
        )
        for response in pages:
            record = self._model_record(response, with_producer=False, with_metadata=False)
            found.setdefault(record.model_name, []).append(record)
        return found

    def _pages(self, list_call: Any, **filters: Any) -> Iterator[Any]:
        """Every item of a ZenML list call, page after page."""
        page_number = 1
        while True:
            page = list_call(page=page_number, size=PAGE_SIZE, **filters)
            yield from page.items
            if page_number >= page.total_pages:
                return
            page_number += 1

    def run_outputs(self, run_id: str, beside: str | None = None) -> dict[str, str]:
        """Ids of the artifacts a run produced, by artifact name. Where a name was output by
        several steps, the one from the step that produced `beside` wins."""
        run = self._client.get_pipeline_run(UUID(run_id), hydrate=True)
        outputs: dict[str, str] = {}
        preferred: dict[str, str] = {}
        for step in run.steps.values():
            step_outputs = {
                name: str(versions[0].id) for name, versions in step.outputs.items() if versions
            }
            if beside is not None and beside in step_outputs.values():
                preferred.update(step_outputs)
            for name, artifact_id in step_outputs.items():
                outputs.setdefault(name, artifact_id)
        return {**outputs, **preferred}

    def set_stage(self, model: str, version_id: str, stage: str) -> None:
        """Move a version to a stage. `production` archives the previous one (force)."""
        self._client.update_model_version(
            model_name_or_id=model, version_name_or_id=UUID(version_id), stage=stage, force=True
        )

    def record_decision(self, version_id: str, decision: dict[str, object]) -> None:
        """Write the promotion decision onto the model version as run metadata."""
        from zenml.enums import MetadataResourceTypes
        from zenml.models import RunMetadataResource

        resource = RunMetadataResource(
            id=UUID(version_id), type=MetadataResourceTypes.MODEL_VERSION
        )
        self._client.create_run_metadata(
            metadata={DECISION_METADATA_KEY: decision},
            resources=[resource],
        )

    def _model_pages(
        self, with_producer: bool = True, **filters: Any
    ) -> Iterator[ModelVersionInfo]:
        for response in self._pages(self._client.list_model_versions, hydrate=True, **filters):
            yield self._model_record(response, with_producer)

    def _model_record(
        self,
        response: ModelVersionResponse,
        with_producer: bool = True,
        with_metadata: bool = True,
    ) -> ModelVersionInfo:
        return ModelVersionInfo(
            id=str(response.id),
            model_name=response.model.name,
            number=response.number,
            name=str(response.name),
            stage=str(response.stage) if response.stage else None,
            created=response.created,
            updated=response.updated,
            metadata=dict(response.run_metadata) if with_metadata else {},
            producer=self._model_producer(response) if with_producer else None,
        )

    def _model_producer(self, response: ModelVersionResponse) -> RunInfo | None:
        """The run that created the version: the first run configured with it."""
        page = self._client.list_pipeline_runs(
            model_version_id=response.id, sort_by="asc:created", size=1
        )
        return self._run_record(page.items[0]) if page.items else None


def is_store_unavailable(error: BaseException) -> bool:
    """True for errors that mean the store did not answer (not that it answered "no")."""
    import requests
    from sqlalchemy.exc import OperationalError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(
            seen,
            requests.exceptions.ConnectionError
            | requests.exceptions.Timeout
            | OperationalError
            | ConnectionError
            | TimeoutError,
        ):
            return True
        if isinstance(seen, RuntimeError) and "Error connecting to URL" in str(seen):
            return True  # how ZenML's REST client reports a server it cannot reach
        seen = seen.__cause__ or seen.__context__
    return False


def _unseen(name: str, id: str, number: int, cursors: Mapping[str, int], seen: Seen) -> bool:
    """True for a version above its name's cursor; one at or below was judged: remembered in
    `seen`, so that the next query leaves it out."""
    if number > cursors[name]:
        return True
    seen.add(name, id, number)
    return False


def _leaving_out(ids: list[str]) -> dict[str, str]:
    """An `id` filter that leaves these versions out of a list query."""
    return {"id": f"notoneof:{json.dumps(ids)}"} if ids else {}


def _one_of(names: list[str]) -> str:
    """A filter value matching any of these names (ZenML's `oneof:` operator)."""
    return names[0] if len(names) == 1 else f"oneof:{json.dumps(sorted(set(names)))}"


def _version_number(response: ArtifactVersionResponse) -> int | None:
    """The integer version, or None for a version saved under a custom string name."""
    version = str(response.version)
    return int(version) if version.isdigit() else None


def _safe_url(url: str) -> str:
    """A store URL without any password it may embed (mysql://user:secret@host/db)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
