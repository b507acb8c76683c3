"""Running actions: launch pending training, evaluation, deployment and inference runs on
free workers, with their parameters filled from the event; settle runs that finished; after a
crash, resolve what the store says happened. Promotions are carried out by `models`, not here.

An action may run only after another one (`details.after`: a production change's inference
after its deployment): it waits while that one is open, runs once it succeeded (or an operator
skipped it), and is failed with it (`blocked_by`) when it failed for good; replaying the
failed one brings it back (`operations.replay`)."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.core import templates
from service.core.actions import ActionKind, ActionState, run_tags
from service.core.automation import Automation, PipelineSpec
from service.core.pinning import Unpinnable, pin_reference
from service.core.records import RunInfo, RunStatus
from service.core.scoring import SCORING_ID, ScoringVersion, scored_tags
from service.errors import describe_error
from service.faults import crashpoint
from service.ledger import Action, epoch
from service.notify import notices
from service.runtime.executor import Executor, WorkerResult
from service.runtime.launch import LAUNCHER
from service.runtime.worker import Job
from service.stages import evaluation
from service.stages.context import AFTER, ATTEMPT_TOKEN, Context
from service.stages.pipeline_holds import PipelineHolds
from service.stages.production import trained_on

EVENT_PREFIX = {
    ActionKind.TRAIN: "training",
    ActionKind.INFER: "inference",
    ActionKind.DEPLOY: "deployment",
    ActionKind.EVALUATE: "evaluation",
}
BLOCKED_BY = "blocked_by"  # in an action's details (see the module docstring), beside AFTER
INTERRUPTED = "interrupted: the daemon was shutting down"
# How long a `running` action may have neither a worker in this process nor a known run before
# it is launched again. Not at once: a run its worker asked the store for just before it died
# may still be on its way (a request the server is still handling).
UNTRACKED_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class EndedRun:
    """An action whose worker ended, and its run as settled (None if none was found)."""

    kind: ActionKind
    run: RunInfo | None


class ActionRunner:
    def __init__(
        self,
        context: Context,
        executor: Executor,
        runs_in_process: bool,
        holds: PipelineHolds,
    ) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self.executor = executor
        self.runs_in_process = runs_in_process
        self.holds = holds  # automations whose pipelines are being checked, or are broken
        self.run_log_dir = context.settings.state_dir / "runs"
        self._unconfigured_seen: set[str] = set()
        # How ended workers' runs ended, until it is recorded: a result the store could not
        # take (an outage) is recorded first at the next settle, never dropped.
        self._unrecorded: dict[str, WorkerResult] = {}
        # `running` actions seen with neither a worker nor a known run: since when (monotonic).
        self._untracked_since: dict[str, float] = {}

    # -- start-up -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Resolve actions a previous process left `running`, by what the store says happened."""
        for action in self.ledger.actions_in(ActionState.RUNNING):
            self._log(action).info("recovery.action_found", key=action.key, attempt=action.attempts)
            self._settle_from_store(action, recovering=True)

    # -- dispatch -----------------------------------------------------------------------------

    def dispatch(self) -> list[str]:
        """Launch pending runs while worker slots are free; due retries become pending first.
        The actions of an automation whose pipelines are held (`pipeline_holds`) wait."""
        self.holds.tick()
        now = epoch()
        for action in self.ledger.actions_in(ActionState.RETRY_WAIT):
            if action.not_before <= now and not self.holds.blocks(action.automation):
                self.ledger.transition(action.key, ActionState.PENDING)
        launched = []
        for action in self.ledger.actions_in(ActionState.PENDING):
            if action.kind is ActionKind.PROMOTE or self.holds.blocks(action.automation):
                continue
            if self._waits_for_another(action):
                continue
            automation = self.context.automations.get(action.automation)
            if automation is None:
                self._not_configured(action)
                continue
            if self.executor.free_slots() <= 0:
                break
            if self._launch(automation, action):
                launched.append(action.key)
        return launched

    def _waits_for_another(self, action: Action) -> bool:
        """True while the action it runs after is open; an action whose one before failed for
        good is failed with it (blocked), never launched."""
        after = action.details.get(AFTER)
        before = self.ledger.action(str(after)) if after else None
        if before is None or before.state in (ActionState.SUCCEEDED, ActionState.SKIPPED):
            return False
        if before.state is ActionState.FAILED:
            with self.ledger.transaction():
                self._block(action, before)
        return True

    def _block_after(self, failed: Action) -> None:
        """In the transaction that fails `failed` for good: the pending actions that were to run
        after it are failed too, naming it (their queue must drain; `replay` of it replays
        them)."""
        for action in self.ledger.actions_in(ActionState.PENDING):
            if action.details.get(AFTER) == failed.key:
                self._block(action, failed)

    def _block(self, action: Action, failed: Action) -> None:
        error = f"not run: {failed.key}, which it runs after, failed for good"
        self.ledger.transition(
            action.key, ActionState.FAILED, error=error, details={BLOCKED_BY: failed.key}
        )
        self._log(action).error(
            f"{EVENT_PREFIX[action.kind]}.blocked",
            key=action.key,
            blocked_by=failed.key,
            error=error,
            **subject_ids(action),
        )

    def _not_configured(self, action: Action) -> None:
        """An action of an automation no longer configured waits, said once per process."""
        if action.key not in self._unconfigured_seen:
            self._unconfigured_seen.add(action.key)
            self._log(action).warning(
                "action.automation_not_configured",
                key=action.key,
                configured=sorted(self.context.automations),
            )

    def _launch(self, automation: Automation, action: Action) -> bool:
        if self._found_in_store(action):
            return False
        spec = _pipeline(automation, action.kind)
        if spec is None:
            setting = "EVALUATION" if action.kind is ActionKind.EVALUATE else "DEPLOYMENT"
            self._cannot_launch(action, f"its automation has no {setting}_PIPELINE any more")
            return False
        try:
            arguments = self._launch_arguments(automation, action, spec)
        except (templates.PlaceholderMissing, Unpinnable) as error:
            self._cannot_launch(action, str(error))
            return False
        attempt = action.attempts + 1
        # The attempt's id, in the ledger with its `running` state and at the end of its run's
        # name: recovery finds this attempt's run by it, never by comparing clocks.
        token = secrets.token_hex(6)
        self.ledger.transition(
            action.key,
            ActionState.RUNNING,
            attempts=attempt,
            started_at=epoch(),
            run_id=None,
            details={ATTEMPT_TOKEN: token},
        )
        crashpoint("after_marked_running")
        file_stem = str(self.run_log_dir / action.key.replace(":", "_"))
        arguments["run_config_path"] = f"{file_stem}.run-config.yaml"
        arguments["run_token"] = token
        job = Job(key=action.key, launcher=LAUNCHER, kwargs=arguments, log_path=f"{file_stem}.log")
        try:
            pid = self.executor.launch(job)
        except Exception as error:  # no worker took the job: no run can exist for it
            self._launch_failed(action, attempt, describe_error(error))
            return False
        crashpoint("after_launch")
        metrics.ACTIONS.labels(automation.name, action.kind.value, "launched").inc()
        self._log(action).info(
            f"{EVENT_PREFIX[action.kind]}.launched",
            key=action.key,
            attempt=attempt,
            worker_pid=pid,
            pipeline=spec.reference,
            parameters=arguments["parameters"],
            run_log=job.log_path,
            **subject_ids(action),
        )
        return True

    def _launch_failed(self, action: Action, attempt: int, error: str) -> None:
        """No worker took the job, so no run exists for it: back to pending, uncounted."""
        self.ledger.transition(
            action.key, ActionState.PENDING, attempts=attempt - 1, started_at=None
        )
        self._log(action).error(
            f"{EVENT_PREFIX[action.kind]}.launch_failed",
            key=action.key,
            attempt=attempt,
            attempt_counted=False,
            error=error,
            **subject_ids(action),
        )

    def _found_in_store(self, action: Action) -> bool:
        """A run of this key completed already, or still goes on (the ledger was lost, or
        restored from an older backup): a completed one is recorded as done, one still going
        is adopted as this action's run and watched; nothing is launched. An inference counts
        only if it ran on its model version (the launcher rejects one that did not, and ZenML
        cannot mark a completed run failed)."""
        pinned = action.subject_id if action.kind is not ActionKind.TRAIN else None
        run = self.store.completed_or_going_run_for_key(action.key, pinned)
        if run is None:
            return False
        if run.status is RunStatus.SUCCEEDED:
            self._succeeded(action, run, outcome="found_in_store")
        else:
            self._adopt(action, run)
        return True

    def _adopt(self, action: Action, run: RunInfo) -> None:
        """Make a run of this key that still goes on this action's current attempt: watched
        from the store (`_settle_from_store`), timed out from now, never launched again."""
        attempt = action.attempts + 1
        self.ledger.transition(
            action.key,
            ActionState.RUNNING,
            attempts=attempt,
            started_at=epoch(),
            run_id=run.id,
            details={ATTEMPT_TOKEN: None},  # its run is known by id, not by a token
        )
        self._log(action).info(
            f"{EVENT_PREFIX[action.kind]}.adopted",
            key=action.key,
            run_id=run.id,
            run_name=run.name,
            attempt=attempt,
            **subject_ids(action),
        )

    def _launch_arguments(
        self, automation: Automation, action: Action, spec: PipelineSpec
    ) -> dict[str, Any]:
        """Everything the worker needs: the pipeline, its filled parameters, the model."""
        pinned: dict[str, str | None] = {"model_version": None, "model_version_id": None}
        if action.kind is ActionKind.TRAIN:
            values = self._training_values(automation, action, spec)
        elif action.kind is ActionKind.EVALUATE:
            values, pinned = evaluation.launch_values(self.context, automation, action)
        else:
            values, pinned = self._inference_values(automation, action, spec)
        return {
            "pipeline": spec.reference,
            "source_root": spec.source_root,
            "config_path": spec.config_path,
            "parameters": templates.render(spec.parameters, values),
            "model_name": automation.model_name,
            "tags": [*run_tags(action.key), *scored_tags(action.details)],
            **pinned,
        }

    def _training_values(
        self, automation: Automation, action: Action, spec: PipelineSpec
    ) -> dict[str, Any]:
        details = action.details
        values = {"model.name": automation.model_name}
        values.update(
            self._dataset_values(
                templates.placeholders(spec.parameters),
                action.subject_id,
                details.get("artifact"),
                details.get("version"),
                details.get("producer_run_id"),
            )
        )
        return values

    def _inference_values(
        self, automation: Automation, action: Action, spec: PipelineSpec
    ) -> tuple[dict[str, Any], dict[str, str | None]]:
        version = self.store.model_version(action.subject_id)
        if version is None:
            raise templates.PlaceholderMissing("model_version.id", "the model version was deleted")
        values: dict[str, Any] = {
            "model.name": automation.model_name,
            "model_version.id": version.id,
            "model_version.number": version.number,
            "model_version.name": version.name,
        }
        for key, value in version.metadata.items():
            values[f"model_version.metadata.{key}"] = value
        needed = templates.placeholders(spec.parameters)
        if any(name.startswith("dataset.") for name in needed):
            dataset_id = trained_on(version)
            dataset = self.store.dataset_version(dataset_id) if dataset_id else None
            if dataset is None:
                why = f"model version {version.label} was not trained on a known dataset"
                values.update(
                    {
                        name: templates.PlaceholderMissing(name, why)
                        for name in needed
                        if name.startswith("dataset.")
                    }
                )
            else:
                producer = dataset.producer.id if dataset.producer else None
                values.update(
                    self._dataset_values(
                        needed, dataset.id, dataset.artifact_name, dataset.version, producer
                    )
                )
        values.update(self._scoring_values(action, needed))
        pin = pin_reference(automation.model_name, version.name, version.number)
        return values, {"model_version": pin, "model_version_id": version.id}

    def _scoring_values(self, action: Action, needed: set[str]) -> dict[str, Any]:
        """`scoring_dataset.*`: the scoring dataset version the inference was claimed for."""
        asked = [name for name in needed if name.startswith(f"{templates.SCORING}.")]
        if not asked:
            return {}
        scored = ScoringVersion.from_details(action.details)
        if scored is None:
            why = "this inference scores no scoring dataset version (none was selected)"
            return {name: templates.PlaceholderMissing(name, why) for name in asked}
        return self._dataset_values(
            asked,
            scored.id,
            scored.artifact,
            scored.version,
            scored.producer_run_id,
            prefix=templates.SCORING,
        )

    def _dataset_values(
        self,
        needed: Iterable[str],
        dataset_id: str,
        name: str | None,
        version: str | None,
        run_id: str | None,
        prefix: str = "dataset",
    ) -> dict[str, Any]:
        """`<prefix>.*` placeholders of one dataset version: `dataset` (trained on) or
        `scoring_dataset` (scored)."""
        values: dict[str, Any] = {
            f"{prefix}.id": dataset_id,
            f"{prefix}.name": name,
            f"{prefix}.version": version,
            f"{prefix}.run_id": run_id
            or templates.PlaceholderMissing(
                f"{prefix}.run_id", "the dataset was not produced by a pipeline run"
            ),
        }
        outputs_prefix = f"{prefix}.run_outputs."
        siblings = [n for n in needed if n.startswith(outputs_prefix)]
        outputs = self.store.run_outputs(run_id, dataset_id) if siblings and run_id else {}
        for placeholder in siblings:
            artifact = placeholder.removeprefix(outputs_prefix)
            values[placeholder] = outputs.get(artifact) or templates.PlaceholderMissing(
                placeholder,
                f"the run that produced dataset {dataset_id} has no output named {artifact!r}"
                if run_id
                else f"dataset {dataset_id} was not produced by a pipeline run",
            )
        return values

    def _cannot_launch(self, action: Action, error: str) -> None:
        """A run that cannot be launched for this event: failed at once, never retried."""
        with self.ledger.transaction():
            self.ledger.transition(action.key, ActionState.FAILED, error=error)
            self._notify(action, "failed", None, "cannot_launch", error=error)
            self._block_after(action)
        metrics.ACTIONS.labels(action.automation, action.kind.value, "failed").inc()
        self._log(action).error(
            f"{EVENT_PREFIX[action.kind]}.failed",
            key=action.key,
            attempt=action.attempts,
            error=error,
            attempts_exhausted=False,
            retried=False,
            **subject_ids(action),
        )

    # -- settle -------------------------------------------------------------------------------

    def settle(self) -> list[EndedRun]:
        """Record how finished workers' runs ended; watch runs that go on without a worker.
        Which actions' workers ended, with the run each was found to have (if any).

        A worker's result is forgotten only once it is recorded: if the store fails meanwhile
        (an outage), the tick fails and the result is recorded first at the next settle."""
        for result in self.executor.poll():
            crashpoint("after_run_finished")
            self._unrecorded[result.key] = result
        ended = []
        for key, result in list(self._unrecorded.items()):
            action = self.ledger.action(key)
            if action is not None and action.state is ActionState.RUNNING:
                ended.append(EndedRun(action.kind, self.settle_worker(action, result)))
            del self._unrecorded[key]
        for action in self.ledger.actions_in(ActionState.RUNNING):
            if not self.executor.is_running(action.key):
                self._settle_from_store(action, recovering=False)
        return ended

    def settle_worker(self, action: Action, result: WorkerResult) -> RunInfo | None:
        # The run a worker reports is read by its id (a primary key); without one (the worker
        # failed or was killed) it is found by its attempt's token (`_attempt_run`). A job no
        # worker was ever forked for (its template died warming up) has no run: it goes back
        # to pending, uncounted, like a launch that raised. The run is returned, so that a
        # report can judge the model version it was linked to.
        if not result.started and not result.timed_out:
            self._launch_failed(action, action.attempts, result.error or "no worker started")
            return None
        reported = self.store.run(result.run_id) if result.run_id else None
        run = reported or self._attempt_run(action)
        if result.timed_out:
            error = result.error or "timed out"
            if run is not None and run.status is RunStatus.IN_PROGRESS:
                run = self._stop(action, run, error)
            if run is not None and run.status is RunStatus.SUCCEEDED:  # ended before the kill
                self._succeeded(action, run, worker=result)
            else:
                self._attempt_failed(action, error, run)
        elif run is not None and run.status is RunStatus.SUCCEEDED and not result.rejected_run:
            self._succeeded(action, run, worker=result)
        elif run is not None and run.status is RunStatus.IN_PROGRESS and result.ok:
            self.ledger.set_run_id(action.key, run.id)  # runs on elsewhere: watched by its id
            self._log(action).info(
                f"{EVENT_PREFIX[action.kind]}.submitted",
                key=action.key,
                run_id=run.id,
                attempt=action.attempts,
                **subject_ids(action),
            )
        elif run is not None and run.status is RunStatus.IN_PROGRESS and self.runs_in_process:
            # Its worker is gone (the OOM killer, say) and the run cannot go on without it:
            # closed as failed, so neither the run nor its model version waits forever.
            ended = _worker_death(result) if result.exit_code is not None else result.error
            run = self._stop(action, run, ended or "its worker process ended")
            if run.status is RunStatus.SUCCEEDED:  # it completed just before
                self._succeeded(action, run, worker=result)
            else:
                self._attempt_failed(action, ended or "its worker process ended", run)
        else:
            error = (
                result.error or f"run {run.id if run else '?'} ended {run.status if run else ''}"
            )
            self._attempt_failed(action, error, run)
            if run is None and not result.ok and result.exit_code is None:
                # Its launcher failed before ZenML created a run: the pipeline may be broken.
                self.holds.failed_before_run(action, error)
        return run

    def _settle_from_store(self, action: Action, recovering: bool) -> None:
        """Settle a `running` action that has no live worker in this process: at recovery, or
        each tick while its run goes on elsewhere (read by its id, once known). One with no
        known run while the daemon runs lost its worker's end somehow: after
        `UNTRACKED_GRACE_SECONDS` its run is looked for, and without one it is launched again,
        its attempt uncounted, as at recovery."""
        run = None
        if action.run_id or recovering or self._untracked_for_long(action):
            run = self._attempt_run(action)
        if run is None:
            if recovering:  # the launch never reached the store: safe to launch it again
                self._relaunch(action, "no run in the store")
            elif self._untracked_for_long(action):  # its worker's end was lost
                self._relaunch(action, "no worker in this process and no run", lost=True)
            return
        self._untracked_since.pop(action.key, None)
        if run.status is RunStatus.SUCCEEDED and run.rejected:  # its report was never read
            self._attempt_failed(action, f"run {run.id} was rejected by its launcher", run)
        elif run.status is RunStatus.SUCCEEDED:
            self._succeeded(action, run)
        elif run.status is RunStatus.FAILED:
            self._attempt_failed(action, f"run {run.id} failed", run)
        elif self.runs_in_process:  # its worker died with the previous daemon process
            reason = "orphaned: its worker process died with the daemon"
            self.store.mark_run_failed(run.id, reason)
            self._attempt_failed(action, reason, run)
        elif (
            action.started_at
            and epoch() - action.started_at > self.context.settings.run_timeout_seconds
        ):
            reason = "timed out while running on the orchestrator"
            run = self._stop(action, run, reason)
            if run.status is RunStatus.SUCCEEDED:  # it completed before the stop reached it
                self._succeeded(action, run)
            else:
                self._attempt_failed(action, reason, run)
        else:  # it goes on on the orchestrator: watched by its id, never launched again
            if run.id != action.run_id:
                self.ledger.set_run_id(action.key, run.id)
            if recovering:
                self._log(action).info(
                    "recovery.watching", key=action.key, run_id=run.id, attempt=action.attempts
                )

    def _relaunch(self, action: Action, reason: str, lost: bool = False) -> None:
        """No run exists for this attempt: back to pending, its attempt uncounted. `lost`: it
        happens while the daemon runs (a worker's end was lost), which deserves a warning."""
        self._untracked_since.pop(action.key, None)
        self.ledger.transition(action.key, ActionState.PENDING, attempts=action.attempts - 1)
        log = self._log(action)
        (log.warning if lost else log.info)("recovery.relaunch", key=action.key, reason=reason)

    def _untracked_for_long(self, action: Action) -> bool:
        """True once this `running` action has been seen without a worker or a run for
        `UNTRACKED_GRACE_SECONDS` (counted from the first time it is asked)."""
        since = self._untracked_since.setdefault(action.key, time.monotonic())
        return time.monotonic() - since >= UNTRACKED_GRACE_SECONDS

    def _stop(self, action: Action, run: RunInfo, reason: str) -> RunInfo:
        """Stop a run that is still going before its attempt counts as failed, so that the run
        and its retry never both complete. A run inside its (killed) worker is only closed in
        the store; a run on any other orchestrator goes on by itself, so it is stopped there
        too, where ZenML can. Returns the run as it ended: it may have completed just before."""
        if self.runs_in_process:
            self.store.mark_run_failed(run.id, reason)
            return self.store.run(run.id) or run
        stopped, not_stopped = self.store.stop_run(run.id, reason)
        self._log(action).warning(
            f"{EVENT_PREFIX[action.kind]}.run_stopped",
            key=action.key,
            run_id=run.id,
            reason=reason,
            status=stopped.status.value if stopped else None,
            on_orchestrator=not_stopped is None,
            orchestrator_error=not_stopped,
        )
        return stopped or run

    def _attempt_run(self, action: Action) -> RunInfo | None:
        """The run of the current attempt, never decided by a clock or a page of older runs.
        By its id once known (a primary key: what a tick reads for a run that goes on
        elsewhere). Otherwise by the attempt's token that ends its name: that finds a run
        killed while ZenML created it, which has no tags yet (seen in `make soak`), but makes
        the database read every run, so it is asked at most once per attempt, where such a run
        may be: a worker that ended without naming its run, recovery, a graceful stop. An
        attempt launched by a daemon from before tokens has none: the key's newest run
        stands for it."""
        if action.run_id:
            return self.store.run(action.run_id)
        token = action.details.get(ATTEMPT_TOKEN)
        if token:
            return self.store.attempt_run(str(token))
        return self.store.newest_run_for_key(action.key)

    def _succeeded(
        self,
        action: Action,
        run: RunInfo,
        worker: WorkerResult | None = None,
        outcome: str = "succeeded",
    ) -> None:
        """`duration_seconds` is the run's own (from the store); `worker_seconds` runs from
        the job handed to its worker to the report read, ZenML's preparation included;
        `run_cpu_seconds` is the CPU its worker spent in the launcher (the run itself).
        `found_in_store`: the run completed before this ledger knew of it (nothing launched)."""
        with self.ledger.transaction():
            self.ledger.transition(
                action.key,
                ActionState.SUCCEEDED,
                run_id=run.id,
                error=None,
                details={"duration_seconds": _duration(run)},  # the status page shows it
            )
            if outcome == "succeeded":  # not one found in the store: that one was notified
                self._notify(action, "succeeded", run.id, "completed")
        _count_run(action, outcome, run)
        self._log(action).info(
            f"{EVENT_PREFIX[action.kind]}.{outcome}",
            key=action.key,
            run_id=run.id,
            run_name=run.name,
            attempt=action.attempts,
            duration_seconds=_duration(run),
            worker_seconds=None if worker is None else round(worker.duration_seconds, 3),
            run_cpu_seconds=None if worker is None else _rounded(worker.run_cpu_seconds),
            **subject_ids(action),
        )

    def _attempt_failed(self, action: Action, error: str, run: RunInfo | None) -> None:
        if run is not None and run.status is RunStatus.FAILED:
            error = self.store.run_failure(run.id) or error
        delay = self.context.settings.retry_policy.delay_after(action.attempts)
        _count_run(action, "failed" if delay is None else "attempt_failed", run)
        prefix = EVENT_PREFIX[action.kind]
        ids = {
            "key": action.key,
            "attempt": action.attempts,
            "run_id": run.id if run else None,
            "error": error,
            **subject_ids(action),
        }
        log = self._log(action)
        if delay is None:
            with self.ledger.transaction():
                self.ledger.transition(
                    action.key, ActionState.FAILED, error=error, run_id=run.id if run else None
                )
                self._notify(action, "failed", ids["run_id"], "attempts_exhausted", error=error)
                self._block_after(action)
            log.error(f"{prefix}.failed", attempts_exhausted=True, **ids)
        else:
            self.ledger.transition(
                action.key,
                ActionState.RETRY_WAIT,
                error=error,
                not_before=epoch() + delay,
                run_id=run.id if run else None,
            )
            log.warning(f"{prefix}.attempt_failed", retry_in_seconds=delay, **ids)

    def shutdown(self, grace_seconds: float) -> None:
        """Let running workers finish for up to the grace period, then record how they ended.
        A run the daemon had to stop was interrupted, not failed: it is launched again at the
        next start without using up an attempt (deploys must not fail a long training)."""
        results = [*self._unrecorded.values(), *self.executor.wait(grace_seconds)]
        self._unrecorded.clear()
        for result in results:
            action = self.ledger.action(result.key)
            if action is None or action.state is not ActionState.RUNNING:
                continue
            if result.interrupted:
                self._interrupted(action, result)
            else:
                self.settle_worker(action, result)

    def _interrupted(self, action: Action, result: WorkerResult) -> None:
        run = self._attempt_run(action)
        if run is not None and run.status is not RunStatus.IN_PROGRESS:
            self.settle_worker(action, result)  # it ended before the kill: as it ended
            return
        prefix = EVENT_PREFIX[action.kind]
        if run is not None and not self.runs_in_process:
            # It goes on on its orchestrator: still `running`, watched again at the next start.
            self._log(action).info(
                f"{prefix}.interrupted", key=action.key, run_id=run.id, still_running=True
            )
            return
        if run is not None:
            run = self._stop(action, run, INTERRUPTED)
            if run.status is RunStatus.SUCCEEDED:  # it completed just before
                self._succeeded(action, run, worker=result)
                return
        self.ledger.transition(
            action.key, ActionState.PENDING, attempts=action.attempts - 1, started_at=None
        )
        self._log(action).warning(
            f"{prefix}.interrupted",
            key=action.key,
            run_id=run.id if run else None,
            attempt=action.attempts,
            attempt_counted=False,
            reason=INTERRUPTED,
            **subject_ids(action),
        )

    def _log(self, action: Action) -> Any:
        return self.context.log(action.automation)

    def _notify(
        self, action: Action, outcome: str, run_id: str | None, reason: str, **values: Any
    ) -> None:
        """`training.<outcome>` / `inference.<outcome>`, in the caller's ledger transaction."""
        automation = self.context.automations.get(action.automation)
        self.context.notify(
            notices.action_ended(
                f"{EVENT_PREFIX[action.kind]}.{outcome}",
                action.automation,
                automation.model_name if automation else None,
                action.kind,
                action.key,
                action.subject_id,
                action.details,
                run_id,
                reason,
                {"attempts": action.attempts, **values},
            )
        )


def _worker_death(result: WorkerResult) -> str:
    """How a worker ended without a report: `its worker process died (killed by SIGKILL)`."""
    code = result.exit_code
    how = f"exit code {code}"
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    return f"its worker process died ({how})"


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _count_run(action: Action, outcome: str, run: RunInfo | None) -> None:
    metrics.ACTIONS.labels(action.automation, action.kind.value, outcome).inc()
    duration = _duration(run) if run is not None else None
    if duration is not None:
        metrics.RUN_DURATION.labels(action.automation, action.kind.value, outcome).observe(duration)


def _pipeline(automation: Automation, kind: ActionKind) -> PipelineSpec | None:
    """The pipeline an action runs (None: an evaluation or deployment whose pipeline was
    unconfigured)."""
    if kind is ActionKind.TRAIN:
        return automation.training
    if kind is ActionKind.EVALUATE:
        return automation.evaluation.pipeline if automation.evaluation else None
    if kind is ActionKind.DEPLOY:
        return automation.deployment
    return automation.inference


def subject_ids(action: Action) -> dict[str, Any]:
    if action.kind is ActionKind.TRAIN:
        return {"dataset_version_id": action.subject_id}
    ids = {"model_version_id": action.subject_id}
    ids_in_details = ("model_version_number", "dataset_version_id", SCORING_ID, "stint")
    for name in (*ids_in_details, *evaluation.DATASET_DETAILS):
        if action.details.get(name) is not None:
            ids[name] = action.details[name]
    return ids


def _duration(run: RunInfo) -> float | None:
    if run.start_time and run.end_time:
        return round((run.end_time - run.start_time).total_seconds(), 3)
    return None
