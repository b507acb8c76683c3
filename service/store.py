"""The store adapter: the only code that reads or writes the ZenML store in the daemon's loop
(README.md, "Who touches ZenML", lists every module that imports zenml).

It turns ZenML responses into the core's plain records and performs the few writes the daemon
makes (stage changes, decision metadata, marking an orphaned run failed). Every read is a
filtered query: versions created since a floor in the store's own clock (`core/polling.py`);
between sweeps, also numbered from a bound, which ZenML's `(artifact_id, version_number)` index
answers, so that an idle poll of an artifact does not grow with its versions.
"""

from __future__ import annotations

import contextlib
import heapq
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from service.core import polling
from service.core.names import NameMap
from service.core.polling import PollGroup, Seen
from service.core.records import DatasetVersion, ModelVersionInfo, RunInfo, RunStatus
from service.redact import redact_url

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import ArtifactVersionResponse, ModelVersionResponse, PipelineRunResponse

PAGE_SIZE = 100
FINISHED_RUNS_KEPT = 1000
DECISION_METADATA_KEY = "autopilot_decision"
SUCCESSFUL = ["completed", "cached"]  # ZenML's successful run statuses (`is_successful`)
# ZenML's statuses of a run that may still complete: not finished, and not being stopped.
GOING = ["initializing", "provisioning", "queued", "running", "retrying", "paused", "resuming"]


class StoreAdapter:
    """Reads observations from a ZenML store and applies the daemon's decisions to it."""

    def __init__(self, client: Client | None = None) -> None:
        from zenml.client import Client

        self._client = client or Client()
        # Finished runs never change: the latest ones read are kept (producers of a backlog).
        # Only the launcher's `autopilot:rejected` tag comes after a run's end; whatever depends
        # on it (`completed_run_for_key`, a model version's producer) reads the run afresh.
        self._finished_runs: OrderedDict[str, RunInfo] = OrderedDict()
        # Every record carries the configured name its store name answers to (core/names).
        self._artifact_names = NameMap()
        self._model_names = NameMap()

    def watch_names(self, artifacts: Iterable[str], models: Iterable[str]) -> None:
        """The configured names: on a store that compares names as MySQL does (any but SQLite),
        a record of a version whose store name differs from one only in case carries the
        configured name, which the stages know."""
        database = str(self._client.zen_store.get_store_info().database_type)
        folds = database != "sqlite"
        self._artifact_names = NameMap(artifacts, folds)
        self._model_names = NameMap(models, folds)

    def artifact_names(self) -> set[str]:
        """The name of every artifact in the store (for the start-up check of watched names)."""
        pages = self._pages(self._client.list_artifacts, hydrate=False)
        return {str(response.name) for response in pages}

    def model_names(self) -> set[str]:
        """The name of every model in the store."""
        pages = self._pages(self._client.list_models, hydrate=False)
        return {str(response.name) for response in pages}

    # -- connection and stack -----------------------------------------------------------------

    def describe(self) -> dict[str, str]:
        """Where the store is (never its credentials)."""
        config = self._client.zen_store.config
        return {"store_type": str(config.type.value), "store_url": redact_url(config.url)}

    def ping(self) -> None:
        """One cheap round trip; raises when the store is unreachable."""
        self._client.zen_store.get_store_info()

    def use_wal_journal(self) -> tuple[str, str] | None:
        """Switch a local SQLite store to write-ahead logging; (mode before, mode after), or
        None for any other store. In SQLite's default journal a reader blocks writers: the
        daemon's polls, its workers' runs and the producers' saves then wait on one another
        (a burst trained 1.6x slower, BENCHMARKS.md section 7). The mode is kept in the
        database file, so every process using the store gets it."""
        from zenml.zen_stores.sql_zen_store import SqlZenStore

        store = self._client.zen_store
        if not isinstance(store, SqlZenStore) or store.engine.dialect.name != "sqlite":
            return None
        with store.engine.connect() as connection:
            before = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())
            if before.lower() == "wal":
                return before, before
            after = connection.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
        return before, str(after)

    def store_now(self) -> datetime:
        """The store's current time, naive UTC like its `created` times: what the training
        gate measures its waits against, never the daemon's clock. Over REST, the ZenML
        server's (the HTTP `Date` of its `/info`, to the second, never ahead): the server
        stamps `created` on everything written through it. On a SQL store, the database's
        (MySQL's `UTC_TIMESTAMP(6)`; SQLite runs in this process, on this host's clock, which
        is the clock of every process that writes to a local SQLite file)."""
        from zenml.constants import API, INFO, VERSION_1
        from zenml.zen_stores.rest_zen_store import RestZenStore
        from zenml.zen_stores.sql_zen_store import SqlZenStore

        store = self._client.zen_store
        if isinstance(store, RestZenStore):
            response = store.session.get(
                store.url + API + VERSION_1 + INFO,
                verify=store.config.verify_ssl,
                timeout=store.config.http_timeout,
            )
            if response.status_code >= 500 or "Date" not in response.headers:
                raise RuntimeError(
                    f"the ZenML server gave no time (HTTP {response.status_code} from {INFO})"
                )
            return (
                parsedate_to_datetime(response.headers["Date"]).astimezone(UTC).replace(tzinfo=None)
            )
        assert isinstance(store, SqlZenStore)
        query = (
            "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
            if store.engine.dialect.name == "sqlite"
            else "SELECT UTC_TIMESTAMP(6)"
        )
        with store.engine.connect() as connection:
            value = connection.exec_driver_sql(query).scalar()
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    def stack_id(self, name_or_id: str) -> str:
        """The id of a stack, to run pipelines on it; KeyError when there is no such stack."""
        return str(self._client.get_stack(name_or_id, allow_name_prefix_match=False).id)

    def orchestrator_runs_in_process(self, stack: str | None) -> bool:
        """True when runs execute inside the launching process: only the `local` orchestrator.

        Such a run cannot outlive its worker, so a run still `running` after the daemon crashed
        is an orphan. Runs on every other orchestrator go on by themselves once submitted (even
        `local_docker`'s containers outlive a killed worker), so they are watched, and stopped
        on the orchestrator when they time out (`stop_run`).
        """
        from zenml.enums import StackComponentType

        model = self._client.get_stack(stack) if stack else self._client.active_stack_model
        orchestrator = model.components[StackComponentType.ORCHESTRATOR][0]
        return str(orchestrator.flavor_name) == "local"

    def dashboard_links(self) -> dict[str, str]:
        """URL templates (with `{id}`) of ZenML's dashboard pages for a run and a model
        version, as ZenML's own `dashboard_utils` builds them (0.98): for a ZenML server only
        (a local store has no dashboard). The open-source dashboard shows runs but no model
        version (its model pages are ZenML Pro's), so it gets no model version template."""
        from zenml.enums import StoreType
        from zenml.models.v2.misc.server_models import ServerDeploymentType

        zen_store = self._client.zen_store
        if zen_store.type is not StoreType.REST:
            return {}
        info = zen_store.get_store_info()
        project = self._client.active_project
        if info.deployment_type == ServerDeploymentType.CLOUD and info.dashboard_url:
            base = f"{info.dashboard_url.rstrip('/')}/projects/{project.id}"
            return {"run": f"{base}/runs/{{id}}", "model_version": f"{base}/model-versions/{{id}}"}
        # Where a person's browser reaches the dashboard, when the server says so (behind a
        # proxy, or in Compose where the daemon's URL is the container network's).
        server = redact_url((info.dashboard_url or info.server_url or zen_store.url).rstrip("/"))
        return {"run": f"{server}/projects/{project.name}/runs/{{id}}"}

    # -- datasets -----------------------------------------------------------------------------

    def newest_dataset_created(self, name: str) -> datetime | None:
        """When the newest version of `name` was created, in the store's clock."""
        page = self._client.list_artifact_versions(
            artifact=name, sort_by="desc:created", size=1, hydrate=False
        )
        return page.items[0].created if page.items else None

    def dataset_created_at_number(self, name: str, number: int) -> datetime | None:
        """When the version of `name` with the highest number up to `number` was created."""
        page = self._client.list_artifact_versions(
            artifact=name,
            version_number=f"lte:{number}",
            sort_by="desc:version_number",
            size=1,
            hydrate=False,
        )
        return page.items[0].created if page.items else None

    def dataset_versions_since(
        self, group: PollGroup, seen: Seen, judged: Callable[[str, str], bool]
    ) -> Iterator[DatasetVersion]:
        """Versions of a group of artifacts created at or after its floor, oldest first, in one
        query (`oneof:`), except those judged already (`seen`, else `judged(name, id)`). Every
        `created` and number read goes to `seen`. A fast read (`group.min_number`) is two
        indexed queries, numbered from `min_number` and unnumbered (`core/polling`), merged;
        each first asks for its count and newest version only, and lists nothing when those
        show it would list only versions read before (`_lists_only_known`)."""
        reads = []
        for numbers in _number_filters("version_number", group.min_number, nullable=True):
            filters: dict[str, Any] = {
                "artifact": _one_of(list(group.names)),
                "hydrate": False,
                **_created_since(group.since),
                **numbers,
            }
            known: dict[str, str] = {}
            if group.min_number is not None:  # a fast read
                lowest = None if numbers["version_number"] == "isnull:" else group.min_number
                known = seen.known(group.names, _whole_second(group.since), lowest)
                if self._lists_only_known(filters, known):
                    continue
            pages = self._pages(
                self._client.list_artifact_versions,
                sort_by="asc:created",
                tie_break=_dataset_order,
                **filters,
            )
            reads.append(_forgetting_unlisted(pages, known, seen))
        for response in heapq.merge(*reads, key=_dataset_order):
            name = self._artifact_names.resolve(response.artifact.name, group.names)
            if _unseen(name, _version_number(response), response, group, seen, judged):
                yield self._dataset_record(response, name)

    def _lists_only_known(self, filters: dict[str, Any], known: dict[str, str]) -> bool:
        """True when a read would list only the `known` versions (read before): as many, and
        its newest one of them. One page of one version, not every version of an idle window
        again (each a producer query in ZenML). A version committed late (created before the
        newest) in the same moment as a known one was deleted would wait for the next sweep."""
        page = self._client.list_artifact_versions(sort_by="desc:created", size=1, **filters)
        return page.total == len(known) and all(str(r.id) in known for r in page.items)

    def top_dataset_number(self, name: str) -> int | None:
        """The highest version number of an artifact (None: it has no numbered version). ZenML
        counts and sorts every version of it for this: asked once per name (`core/polling`)."""
        page = self._client.list_artifact_versions(
            artifact=name, sort_by="desc:version_number", size=1, hydrate=False
        )
        return _version_number(page.items[0]) if page.items else None

    def version_ids_since(self, kind: str, name: str, since: datetime | None) -> list[str]:
        """Ids of the versions of an artifact (`dataset`) or model created at or after a floor."""
        list_call = (
            self._client.list_artifact_versions
            if kind == "dataset"
            else self._client.list_model_versions
        )
        name_filter: dict[str, Any] = {"artifact": name} if kind == "dataset" else {"model": name}
        pages = self._pages(list_call, hydrate=False, **name_filter, **_created_since(since))
        return [str(r.id) for r in pages if since is None or r.created >= since]

    def dataset_versions_with_tags(
        self, name: str, tags: list[str], created_before: datetime | None = None
    ) -> Iterator[DatasetVersion]:
        """Versions of `name` carrying every tag (for approvals that come after creation)."""
        filters: dict[str, Any] = {"artifact": name, "tags": [f"equals:{t}" for t in tags]}
        if created_before is not None:
            filters["created"] = f"lt:{created_before:%Y-%m-%d %H:%M:%S}"
        yield from self._dataset_pages(sort_by="asc:created", **filters)

    def dataset_id_pages_with_tags(self, name: str, tags: list[str]) -> Iterator[list[str]]:
        """Ids of the versions of `name` carrying every tag, a page (100) at a time, oldest
        first, unhydrated and without producer look-ups: the caller reads in full only those it
        has not settled."""
        pages = self._page_lists(
            self._client.list_artifact_versions,
            artifact=name,
            tags=[f"equals:{t}" for t in tags],
            sort_by="asc:created",
            hydrate=False,
        )
        for items in pages:
            yield [str(response.id) for response in items]

    def dataset_ids_with_tags(
        self, name: str, tags: list[str]
    ) -> Iterator[tuple[str, str, datetime]]:
        """(id, version, created) of every version of `name` carrying every tag (with no tags:
        every version), oldest first, unhydrated and without producer look-ups."""
        filters: dict[str, Any] = {"tags": [f"equals:{t}" for t in tags]} if tags else {}
        pages = self._pages(
            self._client.list_artifact_versions,
            artifact=name,
            sort_by="asc:created",
            hydrate=False,
            **filters,
        )
        for response in pages:
            yield str(response.id), str(response.version), response.created

    def newest_datasets_with_tags(
        self, name: str, tags: list[str], size: int = 10
    ) -> list[DatasetVersion]:
        """The newest versions of `name` carrying every tag (with no tags: any), newest first,
        one page: the evaluation dataset a candidate is scored on (`core/evaluation`)."""
        filters: dict[str, Any] = {"tags": [f"equals:{t}" for t in tags]} if tags else {}
        page = self._client.list_artifact_versions(
            artifact=name, sort_by="desc:created", size=size, hydrate=False, **filters
        )
        return [self._dataset_record(response) for response in page.items]

    def dataset_version(self, id: str) -> DatasetVersion | None:
        try:
            response = self._client.get_artifact_version(UUID(id), hydrate=False)
        except KeyError:
            return None
        return self._dataset_record(response)

    def _dataset_pages(self, **filters: Any) -> Iterator[DatasetVersion]:
        for response in self._pages(self._client.list_artifact_versions, hydrate=False, **filters):
            yield self._dataset_record(response)

    def _dataset_record(
        self, response: ArtifactVersionResponse, name: str | None = None
    ) -> DatasetVersion:
        run_id = response.producer_pipeline_run_id
        return DatasetVersion(
            id=str(response.id),
            artifact_name=name or self._artifact_names.resolve(response.artifact.name),
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
            self._finished_runs.move_to_end(run_id)
            return cached
        try:
            response = self._client.get_pipeline_run(UUID(run_id), hydrate=True)
        except KeyError:
            return None
        return self._run_record(response)

    def run_metadata(self, run_id: str) -> dict[str, object]:
        """A run's metadata, its steps' included, the latest value per key: what the run
        logged on itself under its key, what a step logged under `<step>::<key>` (ZenML's
        `include_full_metadata`)."""
        response = self._client.get_pipeline_run(
            UUID(run_id), hydrate=True, include_full_metadata=True
        )
        return dict(response.run_metadata)

    def runs_for_key(self, key: str) -> list[RunInfo]:
        """Every run launched for an action key, oldest first (one per attempt), every page."""
        pages = self._pages(
            self._client.list_pipeline_runs,
            tags=f"equals:{key}",
            sort_by="asc:created",
            hydrate=True,
        )
        return [self._run_record(r) for r in pages]

    def attempt_run(self, token: str) -> RunInfo | None:
        """The run of one attempt, by the attempt's token that ends its name (the launcher puts
        it there; a token is random, one per attempt). Not by its key's tag: a run killed as
        ZenML created it exists, `initializing`, before its tags do (seen in `make soak`), and
        must still be found and closed, or its model version waits on it for ever. A name
        suffix is no index's prefix: the database reads every run of the project for it (so
        does a tag filter on SQLite, where ZenML's `EXISTS` is checked run by run), so this is
        asked once per attempt at most, never per tick; a known run is read by its id."""
        return self._newest_run(name=f"endswith:-{token}")

    def newest_run_for_key(self, key: str) -> RunInfo | None:
        """The newest run tagged with a key (an attempt launched before runs carried tokens)."""
        return self._newest_run(tags=f"equals:{key}")

    def completed_run_for_key(
        self, key: str, model_version_id: str | None = None
    ) -> RunInfo | None:
        """A run of this key that completed, if any: the action is done, whatever the ledger
        says (a ledger lost or restored from a backup). With `model_version_id`, only a run on
        that model version counts (an inference that ran on another one was rejected). A run
        the launcher rejected (tagged `autopilot:rejected`) never counts."""
        filters: dict[str, Any] = {"status": f"oneof:{json.dumps(SUCCESSFUL)}"}
        if model_version_id is not None:
            filters["model_version_id"] = UUID(model_version_id)
        for items in self._page_lists(
            self._client.list_pipeline_runs,
            tags=f"equals:{key}",
            sort_by="desc:created",
            hydrate=True,
            **filters,
        ):
            for response in items:
                run = self._run_record(response)
                if not run.rejected:
                    return run
        return None

    def completed_or_going_run_for_key(
        self, key: str, model_version_id: str | None = None
    ) -> RunInfo | None:
        """A run of this key that completed, else the newest one that may still complete (a
        lost ledger while a run goes on on a remote orchestrator), else None. With
        `model_version_id`, only runs on that model version (`completed_run_for_key`). One
        query when there is neither, the usual case before a launch. A completed run the
        launcher rejected is neither: its retry must run (`completed_run_for_key`)."""
        filters: dict[str, Any] = {"status": f"oneof:{json.dumps(SUCCESSFUL + GOING)}"}
        if model_version_id is not None:
            filters["model_version_id"] = UUID(model_version_id)
        newest = self._newest_run(tags=f"equals:{key}", **filters)
        if newest is None or (newest.status is RunStatus.SUCCEEDED and not newest.rejected):
            return newest
        going = newest if newest.status is RunStatus.IN_PROGRESS else None
        return self.completed_run_for_key(key, model_version_id) or going

    def completed_run_tagged(
        self, tag: str, model: str | None = None, model_version_id: str | None = None
    ) -> RunInfo | None:
        """A completed run carrying `tag`, on a version of `model` or on one model version
        (the store's record that something was done whatever the key, e.g. a scoring dataset
        version scored)."""
        filters: dict[str, Any] = {"status": f"oneof:{json.dumps(SUCCESSFUL)}"}
        if model is not None:
            filters["model"] = model
        if model_version_id is not None:
            filters["model_version_id"] = UUID(model_version_id)
        return self._newest_run(tags=f"equals:{tag}", **filters)

    def _newest_run(self, **filters: Any) -> RunInfo | None:
        page = self._client.list_pipeline_runs(
            sort_by="desc:created", size=1, hydrate=True, **filters
        )
        return self._run_record(page.items[0]) if page.items else None

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

    def stop_run(self, run_id: str, reason: str) -> tuple[RunInfo | None, str | None]:
        """Stop a run that goes on by itself, so that it never completes after this returns.

        First on its orchestrator, the way `zenml pipeline runs stop --force` does (ZenML marks
        it `stopping`, the orchestrator ends it); then, whatever the orchestrator could do, a
        run not finished yet is closed as failed in the store (a failed run never becomes
        completed, even if a step of it still finishes). Returns the run as it ended (it may
        have completed just before) and, when the orchestrator could not stop it, why.
        """
        from zenml.exceptions import IllegalOperationError
        from zenml.utils import run_utils

        response = self._client.get_pipeline_run(UUID(run_id), hydrate=True)
        not_stopped: str | None = None
        if not response.status.is_finished:
            try:
                run_utils.stop_run(response, graceful=False)
            except Exception as error:  # not supported, flavor not importable, already stopping
                if is_store_unavailable(error):
                    raise
                not_stopped = f"{type(error).__name__}: {error}"[:500]
        run = self.run(run_id)
        if run is not None and run.status is RunStatus.IN_PROGRESS:
            with contextlib.suppress(IllegalOperationError):  # it finished since it was read
                self.mark_run_failed(run_id, reason)
            run = self.run(run_id)
        return run, not_stopped

    def _run_record(self, response: PipelineRunResponse) -> RunInfo:
        """A run as the daemon needs it. Its start and end times are ZenML metadata: a run read
        unhydrated would be fetched again for them, so every run read here is hydrated."""
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
            model_version_id=_run_model_version_id(response),
        )
        if folded is not RunStatus.IN_PROGRESS:
            self._finished_runs[record.id] = record
            if len(self._finished_runs) > FINISHED_RUNS_KEPT:
                self._finished_runs.popitem(last=False)
        return record

    # -- models -------------------------------------------------------------------------------

    def newest_model_created(self, model: str) -> datetime | None:
        page = self._client.list_model_versions(
            model=model, sort_by="desc:created", size=1, hydrate=False
        )
        return page.items[0].created if page.items else None

    def model_created_at_number(self, model: str, number: int) -> datetime | None:
        page = self._client.list_model_versions(
            model=model, number=f"lte:{number}", sort_by="desc:number", size=1, hydrate=False
        )
        return page.items[0].created if page.items else None

    def model_versions_since(
        self, group: PollGroup, seen: Seen, judged: Callable[[str, str], bool]
    ) -> Iterator[ModelVersionInfo]:
        """Versions of a group of models created at or after its floor, oldest first, in one
        query, read in full; those judged already are left out as in `dataset_versions_since`
        (a model version always has a number: a fast read is one query, or, by numbers alone,
        one per `NUMBER_AHEAD` new numbers, `core/polling`)."""
        for response in self._model_responses_since(group):
            name = self._model_names.resolve(response.model.name, group.names)
            if not _unseen(name, response.number, response, group, seen, judged):
                continue
            if (full := self.model_version(str(response.id))) is not None:
                yield replace(full, model_name=name)

    def _model_responses_since(self, group: PollGroup) -> Iterator[ModelVersionResponse]:
        """The unhydrated versions of a group's models a read lists (`core/polling`)."""
        read: dict[str, Any] = {
            "sort_by": "asc:created",
            "hydrate": False,
            "tie_break": lambda response: (response.created, response.number),
            **_created_since(group.since),
        }
        if group.max_number is None or group.min_number is None:
            (numbers,) = _number_filters("number", group.min_number, nullable=False)
            model = _one_of(list(group.names))
            yield from self._pages(self._client.list_model_versions, model=model, **read, **numbers)
            return
        # By numbers alone: SQLite walks the `(number, model_id)` index (a model filter would
        # make it read every version of the model); other models' versions are dropped here.
        names, lowest, highest = set(group.names), group.min_number, group.max_number
        while True:
            at_highest = False
            window = [f"gte:{lowest}", f"lte:{highest}"]
            for response in self._pages(self._client.list_model_versions, number=window, **read):
                if self._model_names.resolve(response.model.name) in names:
                    at_highest = at_highest or response.number == highest
                    yield response
            if not at_highest:  # numbers are consecutive above the top: none above `highest`
                return
            lowest, highest = highest + 1, highest + polling.NUMBER_AHEAD

    def top_model_number(self, model: str) -> int | None:
        """The highest version number of a model (None: no version), as `top_dataset_number`."""
        page = self._client.list_model_versions(
            model=model, sort_by="desc:number", size=1, hydrate=False
        )
        return int(page.items[0].number) if page.items else None

    def model_versions_after(self, model: str, number: int) -> Iterator[ModelVersionInfo]:
        yield from self._model_pages(model=model, number=f"gt:{number}", sort_by="asc:number")

    def model_versions_created_before(
        self, model: str, moment: datetime
    ) -> Iterator[ModelVersionInfo]:
        created = f"lt:{moment:%Y-%m-%d %H:%M:%S}"
        yield from self._model_pages(model=model, created=created, sort_by="asc:number")

    def model_versions_created_since(
        self, model: str, moment: datetime
    ) -> Iterator[ModelVersionInfo]:
        """The versions of a model created at or after `moment` (to the microsecond)."""
        created = f"gte:{moment:%Y-%m-%d %H:%M:%S}"
        for version in self._model_pages(model=model, created=created, sort_by="asc:number"):
            if version.created >= moment:
                yield version

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

    def _pages(
        self, list_call: Any, tie_break: Callable[[Any], Any] | None = None, **filters: Any
    ) -> Iterator[Any]:
        """Every item of a ZenML list call, page after page; `tie_break` orders each page
        (ZenML sorts by one field: versions created in the same instant come in any order)."""
        for items in self._page_lists(list_call, **filters):
            yield from sorted(items, key=tie_break) if tie_break else items

    def _page_lists(self, list_call: Any, **filters: Any) -> Iterator[list[Any]]:
        """The pages of a ZenML list call, one list of items at a time."""
        page_number = 1
        while True:
            page = list_call(page=page_number, size=PAGE_SIZE, **filters)
            yield list(page.items)
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
        self.record_version_metadata(version_id, {DECISION_METADATA_KEY: decision})

    def record_version_metadata(self, version_id: str, metadata: dict[str, Any]) -> None:
        """Write run metadata onto a model version: what the daemon and the operator commands
        record there (production records, approvals, rollbacks: `core/production_history`,
        `core/approval`). ZenML shows the latest value of a key, merging dict values."""
        from zenml.enums import MetadataResourceTypes
        from zenml.models import RunMetadataResource

        resource = RunMetadataResource(
            id=UUID(version_id), type=MetadataResourceTypes.MODEL_VERSION
        )
        self._client.create_run_metadata(metadata=metadata, resources=[resource])

    def model_version_named(self, model: str, reference: str) -> ModelVersionInfo | None:
        """A version of `model` as a person names it: its id, its name, its number, or a stage
        (`staging`, `production`); None if there is no such version."""
        from zenml.utils.uuid_utils import is_valid_uuid

        if is_valid_uuid(reference):
            found = self.model_version(reference)
            return found if found is not None and found.model_name == model else None
        attempts: list[str | int] = [reference]
        if reference.isdigit():
            attempts.append(int(reference))  # a version renamed: its number still names it
        for attempt in attempts:
            try:
                response = self._client.get_model_version(
                    model_name_or_id=model,
                    model_version_name_or_number_or_id=attempt,
                    hydrate=True,
                )
            except KeyError:
                continue
            return self._model_record(response)
        return None

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
            model_name=self._model_names.resolve(response.model.name),
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
            model_version_id=response.id, sort_by="asc:created", size=1, hydrate=True
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


def _unseen(
    name: str,
    number: int | None,
    response: Any,
    group: PollGroup,
    seen: Seen,
    judged: Callable[[str, str], bool],
) -> bool:
    """True for a version to judge: at or above the floor and judged by nobody yet."""
    created, id = response.created, str(response.id)
    seen.observe(created, name, number)
    if group.since is not None and created < group.since:
        seen.add(name, id, created, number)  # so that a fast read knows it lists it
        return False  # in the floor's second, which the filter cannot split
    if seen.knows(name, id):
        return False
    if judged(name, id):
        seen.add(name, id, created, number)
        return False
    return True


def _number_filters(field: str, lowest: int | None, nullable: bool) -> list[dict[str, Any]]:
    """The number conditions of a read, one query each: none for a sweep; for a fast read the
    numbers from `lowest` up (an index range), and, where a version may have no number (an
    artifact's custom name), those without (`isnull`, also answered from the index)."""
    if lowest is None:
        return [{}]
    numbered = {field: f"gte:{lowest}"}
    return [numbered, {field: "isnull:"}] if nullable else [numbered]


def _forgetting_unlisted(pages: Iterator[Any], known: dict[str, str], seen: Seen) -> Iterator[Any]:
    """The responses of a complete read; then the `known` versions it did not list (deleted
    since) are forgotten, so that they do not make every later fast read list in full."""
    listed: set[str] = set()
    for response in pages:
        listed.add(str(response.id))
        yield response
    for id, name in known.items():
        if id not in listed:
            seen.forget(name, id)


def _whole_second(moment: datetime | None) -> datetime | None:
    """A floor as ZenML's `created` filter applies it (`_created_since`)."""
    return None if moment is None else moment.replace(microsecond=0)


def _dataset_order(response: ArtifactVersionResponse) -> tuple[datetime, int]:
    """Oldest first; versions created in the same instant by number (ZenML sorts by one field)."""
    return response.created, _version_number(response) or 0


def _created_since(since: datetime | None) -> dict[str, Any]:
    """A `created` filter from a floor (ZenML filters take whole seconds: round down)."""
    return {} if since is None else {"created": f"gte:{since:%Y-%m-%d %H:%M:%S}"}


def _one_of(names: list[str]) -> str:
    """A filter value matching any of these names (ZenML's `oneof:` operator)."""
    return names[0] if len(names) == 1 else f"oneof:{json.dumps(sorted(set(names)))}"


def _version_number(response: ArtifactVersionResponse) -> int | None:
    """The integer version, or None for a version saved under a custom string name."""
    version = str(response.version)
    return int(version) if version.isdigit() else None


def _run_model_version_id(response: PipelineRunResponse) -> str | None:
    """The model version a run is linked to, if the response carries its resources (a run read
    by id does; a listed one may not, and is not fetched again for it)."""
    resources = response.resources
    model_version = resources.model_version if resources is not None else None
    return str(model_version.id) if model_version is not None else None
