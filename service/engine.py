"""The engine: one tick = settle finished runs, observe the store, decide, record, dispatch.

It wires the pure core to the ledger, the store adapter and the executor. The poll loop never
waits for a pipeline: runs happen in worker processes and are settled on a later tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service import metrics
from service.core.actions import ActionKind, ActionState, action_key, run_tags
from service.core.promotion import (
    PRODUCTION,
    PromotionDecision,
    decide_promotion,
    repair_duplicate_production,
    wait_reason,
)
from service.core.records import DatasetVersion, ModelVersionInfo, RunInfo, RunStatus
from service.core.selection import DatasetDecision, SkipReason, Verdict, evaluate_dataset
from service.executor import Executor, WorkerResult
from service.faults import crashpoint
from service.ledger import Action, Ledger, epoch
from service.logs import get_logger
from service.settings import Settings
from service.store import DECISION_METADATA_KEY, StoreAdapter
from service.worker import Job

DATASET, MODEL = "dataset", "model"
LAST_POLL_KEY = "last_successful_poll"
BATCH_SIZE = 100  # decisions committed per ledger transaction
LAUNCHERS = {
    ActionKind.TRAIN: "pipelines.training:launch_training",
    ActionKind.INFER: "pipelines.inference:launch_inference",
}
EVENT_PREFIX = {ActionKind.TRAIN: "training", ActionKind.INFER: "inference"}


def make_executor(settings: Settings, environment: dict[str, str] | None = None) -> Executor:
    """The executor for these settings, its spare workers warmed for the daemon's launchers."""
    run_logs = settings.state_dir / "runs"
    run_logs.mkdir(parents=True, exist_ok=True)
    return Executor(
        settings.max_concurrent_runs,
        settings.run_timeout_seconds,
        environment=environment,
        launchers=tuple(LAUNCHERS.values()),
        warmup_log=str(run_logs / "worker-warmup.log"),
        spares=settings.max_concurrent_runs,
    )


@dataclass
class TickReport:
    launched: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0


class Autopilot:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: StoreAdapter,
        executor: Executor,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.executor = executor
        self.log = get_logger()
        self._runs_in_process = True
        self._next_reconcile = 0.0
        self._run_log_dir = settings.state_dir / "runs"
        self._model = settings.model_name

    # -- start-up -----------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise new streams per the start policy, then resolve what a crash left open."""
        self._run_log_dir.mkdir(parents=True, exist_ok=True)
        self._runs_in_process = self.store.orchestrator_runs_in_process(self.settings.stack)
        for name in self.settings.dataset_names:
            if not self.ledger.has_cursor(_dataset_stream(name)):
                self._init_dataset_stream(name)
        if not self.ledger.has_cursor(_model_stream(self._model)):
            self._init_model_streams()
        self._recover()
        self.executor.warm_up()

    def _init_dataset_stream(self, name: str) -> None:
        start = self.settings.start
        skipped = 0
        if start.mode != "beginning":
            before = start.since  # None for `now`: every selected version so far predates it
            for version in self.store.dataset_versions_with_tags(
                name, self.settings.dataset_required_tags, created_before=before
            ):
                self._note_dataset(version, "skipped", SkipReason.PREDATES_START, final=True)
                skipped += 1
        cursor = self.store.latest_dataset_number(name) if start.mode == "now" else 0
        self.ledger.set_cursor(_dataset_stream(name), str(cursor))
        self.log.info(
            "startup.stream_initialised",
            stream=_dataset_stream(name),
            start_from=str(start),
            cursor=cursor,
            skipped_existing=skipped,
        )

    def _init_model_streams(self) -> None:
        start = self.settings.start
        skipped = 0
        if start.since is not None:
            for version in self.store.model_versions_created_before(self._model, start.since):
                self._note_model(version, "skipped", SkipReason.PREDATES_START)
                skipped += 1
        cursor = self.store.latest_model_number(self._model) if start.mode == "now" else 0
        production = self._current_production()
        already_served = production is not None and start.skips(production.updated)
        with self.ledger.transaction():
            self.ledger.set_cursor(
                _production_stream(self._model),
                production.id if production and already_served else None,
            )
            self.ledger.set_cursor(_model_stream(self._model), str(cursor))
        self.log.info(
            "startup.stream_initialised",
            stream=_model_stream(self._model),
            start_from=str(start),
            cursor=cursor,
            skipped_existing=skipped + (1 if already_served else 0),
            production_version_id=production.id if production else None,
        )

    def _recover(self) -> None:
        """Resolve actions a previous process left `running`, by what the store says happened."""
        for action in self.ledger.actions_in(ActionState.RUNNING):
            self.log.info("recovery.action_found", key=action.key, attempt=action.attempts)
            self._settle_from_store(action, recovering=True)

    # -- the tick -----------------------------------------------------------------------------

    def tick(self) -> TickReport:
        started = time.monotonic()
        self.settle()
        for name in self.settings.dataset_names:
            self._watch_dataset(name)
        self._recheck_waiting_datasets()
        if self.settings.dataset_required_tags and time.monotonic() >= self._next_reconcile:
            self._reconcile_approvals()
            self._next_reconcile = time.monotonic() + self.settings.reconcile_interval_seconds
        self._watch_production()  # a person's change is seen before the daemon promotes
        if self._watch_models():
            self._watch_production()  # and the daemon's own promotion in the same tick
        launched = self.dispatch()
        self.ledger.set_meta(LAST_POLL_KEY, datetime.now(UTC).isoformat(timespec="seconds"))
        return TickReport(launched, time.monotonic() - started)

    def settle(self) -> None:
        """Record how finished workers' runs ended; watch runs that go on without a worker."""
        for result in self.executor.poll():
            crashpoint("after_run_finished")
            action = self.ledger.action(result.key)
            if action is not None and action.state is ActionState.RUNNING:
                self._settle_worker(action, result)
        for action in self.ledger.actions_in(ActionState.RUNNING):
            if not self.executor.is_running(action.key):
                self._settle_from_store(action, recovering=False)

    def busy(self, keys: Iterable[str]) -> bool:
        """True while any of these actions may still run (for `run --once`)."""
        open_states = {ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT}
        return any(
            (action := self.ledger.action(key)) is not None and action.state in open_states
            for key in keys
        )

    def succeeded(self, key: str) -> bool:
        action = self.ledger.action(key)
        return action is not None and action.state is ActionState.SUCCEEDED

    # -- datasets -----------------------------------------------------------------------------

    def _watch_dataset(self, name: str) -> None:
        stream = _dataset_stream(name)
        cursor = int(self.ledger.get_cursor(stream) or 0)
        crashpoint("after_cursor_read")
        batch: list[DatasetVersion] = []
        for version in self.store.dataset_versions_after(name, cursor):
            batch.append(version)
            if len(batch) >= BATCH_SIZE:
                self._judge_datasets(batch, stream)
                batch = []
        if batch:
            self._judge_datasets(batch, stream)

    def _judge_datasets(self, versions: list[DatasetVersion], stream: str | None) -> None:
        """Judge a batch and advance the cursor past it, in one ledger transaction."""
        with self.ledger.transaction():
            for version in versions:
                self._judge_dataset(version)
            numbers = [v.number for v in versions if v.number is not None]
            if stream is not None and numbers:
                self.ledger.set_cursor(stream, str(max(numbers)))
        crashpoint("after_dataset_claimed")

    def _judge_dataset(self, version: DatasetVersion) -> None:
        prior = self.ledger.subject(version.id)
        if prior is not None and prior.final:
            return
        if prior is None:
            lag = (_utc_now() - version.created).total_seconds()
            metrics.LAG.labels(_dataset_stream(version.artifact_name)).set(max(0.0, lag))
        decision = evaluate_dataset(version, self.settings.dataset_required_tags)
        ids = {
            "dataset_version_id": version.id,
            "artifact": version.artifact_name,
            "version": version.version,
        }
        if decision.verdict is Verdict.TRAIN:
            key = action_key(ActionKind.TRAIN, version.id)
            details = {**ids, "producer_run_id": version.producer.id if version.producer else None}
            if self.ledger.claim(key, ActionKind.TRAIN, version.id, details):
                self.log.info("dataset.selected", key=key, **ids)
            self._note_dataset(version, "selected", decision.reason, final=True)
            return
        status = "waiting" if decision.verdict is Verdict.WAIT else "skipped"
        changed = prior is None or (prior.status, prior.reason) != (status, decision.reason)
        seen = {
            "tags": sorted(version.tags),
            "missing_tags": list(decision.missing_tags),
            "producer_run_id": version.producer.id if version.producer else None,
        }
        self._note_dataset(version, status, decision.reason, final=decision.final, details=seen)
        if changed:
            self._log_dataset_decision(decision, ids)

    def _log_dataset_decision(self, decision: DatasetDecision, ids: dict[str, Any]) -> None:
        if decision.verdict is Verdict.WAIT:
            self.log.info("dataset.waiting", reason=decision.reason, **ids)
        else:
            extra = {"missing_tags": list(decision.missing_tags)} if decision.missing_tags else {}
            self.log.info("dataset.skipped", reason=decision.reason, **extra, **ids)

    def _note_dataset(
        self,
        version: DatasetVersion,
        status: str,
        reason: str,
        final: bool,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.ledger.note_subject(
            version.id,
            DATASET,
            version.artifact_name,
            version.version,
            status,
            reason,
            final,
            details,
        )

    def _recheck_waiting_datasets(self) -> None:
        waiting = self.ledger.subjects_with_status(DATASET, "waiting")
        found = [v for s in waiting if (v := self.store.dataset_version(s.id)) is not None]
        if found:
            self._judge_datasets(found, stream=None)

    def _reconcile_approvals(self) -> None:
        """Find old versions that gained the required tags since they were first judged.

        Tagging does not change a version's `updated`, so no cursor can see it: list the versions
        that carry every required tag and judge those the ledger has not settled for good.
        """
        for name in self.settings.dataset_names:
            fresh = []
            for version in self.store.dataset_versions_with_tags(
                name, self.settings.dataset_required_tags
            ):
                prior = self.ledger.subject(version.id)
                if prior is None or not prior.final:
                    fresh.append(version)
            if fresh:
                self.log.info("reconcile.approved_found", artifact=name, count=len(fresh))
                self._judge_datasets(fresh, stream=None)

    # -- models -------------------------------------------------------------------------------

    def _watch_models(self) -> bool:
        """Judge new and waiting model versions; True if the daemon changed production."""
        promoted = False
        for action in self.ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE):
            promoted |= self._apply_promotion(action)  # left by a crash mid-promotion
        stream = _model_stream(self._model)
        cursor = int(self.ledger.get_cursor(stream) or 0)
        for version in self.store.model_versions_after(self._model, cursor):
            promoted |= self._judge_model(version)
            self.ledger.set_cursor(stream, str(version.number))
        for subject in self.ledger.subjects_with_status(MODEL, "waiting"):
            if (waiting := self.store.model_version(subject.id)) is not None:
                promoted |= self._judge_model(waiting)
        return promoted

    def _judge_model(self, version: ModelVersionInfo) -> bool:
        """Decide on a version and carry the decision out; True if it was promoted now."""
        prior = self.ledger.subject(version.id)
        if prior is not None and prior.final:
            return False
        waiting = wait_reason(version, _utc_now())
        if waiting is not None:
            if prior is None or prior.reason != waiting:
                self.log.info("model.waiting", reason=waiting, **_model_ids(version))
            self._note_model(version, "waiting", waiting, final=False)
            return False
        # Its metadata was read before its run was seen finished, and the run may have logged
        # the metric in between: read it again, now that all the run logged is in the store.
        version = self.store.model_version(version.id) or version
        key = action_key(ActionKind.PROMOTE, version.id)
        decision = decide_promotion(
            version, self._current_production(), self.settings.promotion_policy
        )
        with self.ledger.transaction():
            self.ledger.claim(key, ActionKind.PROMOTE, version.id, _decision_details(decision))
            self._note_model(version, "decided", decision.reason.value)
        crashpoint("after_promotion_decided")
        action = self.ledger.action(key)
        if action is not None and action.state is ActionState.PENDING:
            return self._apply_promotion(action, version)
        return False

    def _apply_promotion(self, action: Action, seen: ModelVersionInfo | None = None) -> bool:
        """Carry out a recorded decision; True if it changed the stage. Every step is
        idempotent, so a crash just repeats it."""
        version = seen or self.store.model_version(action.subject_id)
        if version is None:
            self.ledger.transition(action.key, ActionState.FAILED, error="model version deleted")
            return False
        decision = action.details["decision"]
        if decision["outcome"] == "promoted":
            production = self._current_production()
            if production is not None and production.id not in (
                version.id,
                decision["production_version_id"],
            ):  # production changed since the decision (a person, or a crash): decide again
                fresh = decide_promotion(version, production, self.settings.promotion_policy)
                decision = _decision_details(fresh)["decision"]
                self.ledger.update_details(action.key, {"decision": decision})
        stage_changed = decision["outcome"] == "promoted" and version.stage != PRODUCTION
        if stage_changed:
            self.store.set_stage(self._model, version.id, PRODUCTION)
            crashpoint("after_stage_changed")
        if DECISION_METADATA_KEY not in version.metadata:
            self.store.record_decision(version.id, decision)
        self.ledger.transition(action.key, ActionState.SUCCEEDED)
        metrics.ACTIONS.labels("promote", decision["outcome"]).inc()
        event = "model.promoted" if decision["outcome"] == "promoted" else "model.rejected"
        self.log.info(
            event,
            key=action.key,
            reason=decision["reason"],
            detail=decision["detail"],
            metric=decision["metric"],
            value=decision["value"],
            threshold=decision["threshold"],
            production_version_id=decision["production_version_id"],
            production_value=decision["production_value"],
            **_model_ids(version),
        )
        return stage_changed

    def _note_model(
        self, version: ModelVersionInfo, status: str, reason: str, final: bool = True
    ) -> None:
        self.ledger.note_subject(
            version.id, MODEL, version.model_name, str(version.number), status, reason, final
        )

    def _current_production(self) -> ModelVersionInfo | None:
        """The production version; repairs the store first if a race left more than one."""
        versions = self.store.production_versions(self._model)
        repair = repair_duplicate_production(versions)
        if repair is None:
            return versions[0] if versions else None
        for extra in repair.archive:
            self.store.set_stage(self._model, extra.id, "archived")
        self.log.warning(
            "model.production_repaired",
            kept_model_version_id=repair.keep.id,
            kept_number=repair.keep.number,
            archived=[{"model_version_id": v.id, "number": v.number} for v in repair.archive],
            rule="kept the most recently promoted version (latest updated, then highest number)",
        )
        return repair.keep

    def _watch_production(self) -> None:
        stream = _production_stream(self._model)
        previous = self.ledger.get_cursor(stream)
        current = self._current_production()
        current_id = current.id if current else None
        if current_id == previous:
            return
        with self.ledger.transaction():
            self.ledger.set_cursor(stream, current_id)
            claimed = current is not None and self.ledger.claim(
                action_key(ActionKind.INFER, current.id),
                ActionKind.INFER,
                current.id,
                {"model_version_number": current.number, **_model_ids(current)},
            )
        crashpoint("after_production_seen")
        promotion = self.ledger.action(action_key(ActionKind.PROMOTE, current_id or ""))
        by_autopilot = (
            promotion is not None and promotion.details["decision"]["outcome"] == "promoted"
        )
        self.log.info(
            "model.production_changed",
            previous_model_version_id=previous,
            changed_by="autopilot" if by_autopilot else "external",
            **(_model_ids(current) if current else {"model_version_id": None}),
        )
        if current is not None and not claimed:
            self.log.info("inference.already_done", key=action_key(ActionKind.INFER, current.id))

    # -- dispatch and settle ------------------------------------------------------------------

    def dispatch(self) -> list[str]:
        """Launch pending runs while worker slots are free; due retries become pending first."""
        now = epoch()
        for action in self.ledger.actions_in(ActionState.RETRY_WAIT):
            if action.not_before <= now:
                self.ledger.transition(action.key, ActionState.PENDING)
        launched = []
        for action in self.ledger.actions_in(ActionState.PENDING):
            if action.kind is ActionKind.PROMOTE:
                continue
            if self.executor.free_slots() <= 0:
                break
            self._launch(action)
            launched.append(action.key)
        return launched

    def _launch(self, action: Action) -> None:
        attempt = action.attempts + 1
        self.ledger.transition(
            action.key, ActionState.RUNNING, attempts=attempt, started_at=epoch(), run_id=None
        )
        crashpoint("after_marked_running")
        job = Job(
            key=action.key,
            launcher=LAUNCHERS[action.kind],
            kwargs=self._launch_arguments(action),
            log_path=str(self._run_log_dir / f"{action.key.replace(':', '_')}.log"),
        )
        pid = self.executor.launch(job)
        crashpoint("after_launch")
        metrics.ACTIONS.labels(action.kind.value, "launched").inc()
        self.log.info(
            f"{EVENT_PREFIX[action.kind]}.launched",
            key=action.key,
            attempt=attempt,
            worker_pid=pid,
            run_log=job.log_path,
            **_subject_ids(action),
        )

    def _launch_arguments(self, action: Action) -> dict[str, Any]:
        tags = run_tags(action.key)
        if action.kind is ActionKind.TRAIN:
            return {
                "dataset_version_id": action.subject_id,
                "model_name": self._model,
                "tags": tags,
            }
        return {
            "model_name": self._model,
            "model_version_number": int(action.details["model_version_number"]),
            "inference_dataset_name": self.settings.inference_dataset_name,
            "tags": tags,
        }

    def _settle_worker(self, action: Action, result: WorkerResult) -> None:
        # The run a worker reports is read by its id (a primary key); without one (the worker
        # failed or was killed) it is found by its tag, which ZenML does not index.
        reported = self.store.run(result.run_id) if result.run_id else None
        run = reported or self._attempt_run(action)
        if result.timed_out:
            if run is not None and run.status is RunStatus.IN_PROGRESS:
                self.store.mark_run_failed(run.id, result.error or "timed out")
            self._attempt_failed(action, result.error or "timed out", run)
        elif run is not None and run.status is RunStatus.SUCCEEDED:
            self._succeeded(action, run, worker_seconds=result.duration_seconds)
        elif run is not None and run.status is RunStatus.IN_PROGRESS and result.ok:
            self.ledger.update_details(action.key, {"run_id": run.id})  # runs on elsewhere
        else:
            error = (
                result.error or f"run {run.id if run else '?'} ended {run.status if run else ''}"
            )
            self._attempt_failed(action, error, run)

    def _settle_from_store(self, action: Action, recovering: bool) -> None:
        """Settle a `running` action that has no live worker in this process."""
        run = self._attempt_run(action)
        if run is None:
            if recovering:  # the launch never reached the store: it is safe to launch it again
                self.ledger.transition(
                    action.key, ActionState.PENDING, attempts=action.attempts - 1
                )
                self.log.info("recovery.relaunch", key=action.key, reason="no run in the store")
            return
        if run.status is RunStatus.SUCCEEDED:
            self._succeeded(action, run)
        elif run.status is RunStatus.FAILED:
            self._attempt_failed(action, f"run {run.id} failed", run)
        elif self._runs_in_process:  # its worker died with the previous daemon process
            reason = "orphaned: its worker process died with the daemon"
            self.store.mark_run_failed(run.id, reason)
            self._attempt_failed(action, reason, run)
        elif action.started_at and epoch() - action.started_at > self.settings.run_timeout_seconds:
            self._attempt_failed(action, "timed out while running on the orchestrator", run)

    def _attempt_run(self, action: Action) -> RunInfo | None:
        """The run of the current attempt: the newest tagged run created since its launch."""
        runs = self.store.runs_for_key(action.key)
        if action.started_at is not None:
            since = datetime.fromtimestamp(action.started_at, UTC).replace(tzinfo=None)
            runs = [
                r for r in runs if r.created is None or r.created >= since - timedelta(seconds=5)
            ]
        return runs[-1] if runs else None

    def _succeeded(self, action: Action, run: RunInfo, worker_seconds: float | None = None) -> None:
        """`duration_seconds` is the run's own (from the store); `worker_seconds` runs from
        the job handed to its worker to the report read, ZenML's preparation included."""
        self.ledger.transition(action.key, ActionState.SUCCEEDED, run_id=run.id, error=None)
        _count_run(action, "succeeded", run)
        self.log.info(
            f"{EVENT_PREFIX[action.kind]}.succeeded",
            key=action.key,
            run_id=run.id,
            run_name=run.name,
            attempt=action.attempts,
            duration_seconds=_duration(run),
            worker_seconds=None if worker_seconds is None else round(worker_seconds, 3),
            **_subject_ids(action),
        )

    def _attempt_failed(self, action: Action, error: str, run: RunInfo | None) -> None:
        if run is not None and run.status is RunStatus.FAILED:
            error = self.store.run_failure(run.id) or error
        delay = self.settings.retry_policy.delay_after(action.attempts)
        _count_run(action, "failed" if delay is None else "attempt_failed", run)
        prefix = EVENT_PREFIX[action.kind]
        ids = {
            "key": action.key,
            "attempt": action.attempts,
            "run_id": run.id if run else None,
            "error": error,
            **_subject_ids(action),
        }
        if delay is None:
            self.ledger.transition(
                action.key, ActionState.FAILED, error=error, run_id=run.id if run else None
            )
            self.log.error(f"{prefix}.failed", attempts_exhausted=True, **ids)
        else:
            self.ledger.transition(
                action.key,
                ActionState.RETRY_WAIT,
                error=error,
                not_before=epoch() + delay,
                run_id=run.id if run else None,
            )
            self.log.warning(f"{prefix}.attempt_failed", retry_in_seconds=delay, **ids)

    def shutdown(self, grace_seconds: float) -> None:
        """Let running workers finish for up to the grace period, then record how they ended."""
        for result in self.executor.wait(grace_seconds):
            action = self.ledger.action(result.key)
            if action is not None and action.state is ActionState.RUNNING:
                self._settle_worker(action, result)


def _count_run(action: Action, outcome: str, run: RunInfo | None) -> None:
    metrics.ACTIONS.labels(action.kind.value, outcome).inc()
    duration = _duration(run) if run is not None else None
    if duration is not None:
        metrics.RUN_DURATION.labels(action.kind.value, outcome).observe(duration)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _decision_details(decision: PromotionDecision) -> dict[str, Any]:
    return {"decision": decision.as_metadata()}


def _dataset_stream(name: str) -> str:
    return f"dataset:{name}"


def _model_stream(model: str) -> str:
    return f"model:{model}"


def _production_stream(model: str) -> str:
    return f"production:{model}"


def _model_ids(version: ModelVersionInfo) -> dict[str, Any]:
    ids: dict[str, Any] = {"model_version_id": version.id, "model_version": version.label}
    dataset = version.metadata.get("dataset_version_id")
    if dataset is not None:
        ids["dataset_version_id"] = str(dataset)
    if version.producer is not None:
        ids["training_run_id"] = version.producer.id
    return ids


def _subject_ids(action: Action) -> dict[str, Any]:
    if action.kind is ActionKind.TRAIN:
        return {"dataset_version_id": action.subject_id}
    ids = {"model_version_id": action.subject_id}
    for name in ("model_version_number", "dataset_version_id"):
        if action.details.get(name) is not None:
            ids[name] = action.details[name]
    return ids


def _duration(run: RunInfo) -> float | None:
    if run.start_time and run.end_time:
        return round((run.end_time - run.start_time).total_seconds(), 3)
    return None
