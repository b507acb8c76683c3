"""The engine: one tick = settle finished runs, observe the store, decide, record, dispatch.

It wires the stages (`service/stages/`) to the ledger, the store adapter and the executor, for
every configured automation at once. The poll loop never waits for a pipeline: runs happen in
worker processes and are settled on a later tick (or as soon as a worker reports).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.core.actions import ActionKind, ActionState
from service.core.names import check_watched
from service.files import private_dir
from service.ledger import AutomationRows, Ledger
from service.logs import get_logger
from service.notify.build import make_outbox
from service.notify.outbox import Outbox
from service.runtime.executor import Executor
from service.runtime.template import WorkerTemplate
from service.settings import Settings
from service.stages.actions import ActionRunner
from service.stages.approval import Approvals
from service.stages.context import Context
from service.stages.datasets import DatasetWatch
from service.stages.models import ModelJudge
from service.stages.pipeline_holds import PipelineHolds
from service.stages.production import ProductionWatch
from service.stages.schedules import FireClock, InferenceSchedule
from service.stages.training_gate import TrainingGate
from service.store import StoreAdapter

LAST_POLL_KEY = "last_successful_poll"


def make_executor(
    settings: Settings,
    environment: dict[str, str] | None = None,
    template: WorkerTemplate | None = None,
) -> Executor:
    """The executor for these settings. Its worker template serves every automation: it is
    warmed with every automation's pipeline modules. `template`: one already started (forked
    by `autopilot run` before it connected); without one, the executor spawns its own."""
    run_logs = private_dir(settings.state_dir / "runs")
    imports = {
        (spec.source_root, spec.module)
        for automation in settings.automations
        for spec in automation.pipelines.values()
    }
    return Executor(
        settings.max_concurrent_runs,
        settings.run_timeout_seconds,
        environment=environment,
        warm_imports=tuple(sorted(imports)),
        warmup_log=str(run_logs / "worker-warmup.log"),
        template=template,
    )


class _StageClock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.laps[stage] = round(now - self._last, 4)
        self._last = now


@dataclass
class TickReport:
    launched: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # where the tick's time went


class Autopilot:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: StoreAdapter,
        executor: Executor,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.executor = executor
        self.log = get_logger()
        self.context = Context(
            settings, ledger, store, outbox=outbox or make_outbox(ledger, settings)
        )
        self.datasets = DatasetWatch(self.context)
        self.production = ProductionWatch(self.context)
        self.approvals = Approvals(self.context, self.production)
        self.models = ModelJudge(self.context, self.production, self.approvals)
        self.holds = PipelineHolds(self.context)
        self.fires = FireClock(self.context)
        self.gate = TrainingGate(self.context, self.fires)
        self.inference_schedule = InferenceSchedule(self.context, self.fires)
        self.actions = ActionRunner(self.context, executor, runs_in_process=True, holds=self.holds)

    def start(self) -> None:
        """Initialise new streams per the start policy, then resolve what a crash left open."""
        private_dir(self.settings.state_dir / "runs")
        self.actions.runs_in_process = self.store.orchestrator_runs_in_process(self.settings.stack)
        if self.ledger.upgraded_from is not None:
            self.log.info(
                "ledger.upgraded",
                from_version=self.ledger.upgraded_from,
                path=str(self.ledger.path),
            )
            self.ledger.upgraded_from = None
        self._say_what_is_stranded()  # before new streams are initialised
        automations = self.settings.automations
        self.store.watch_names(
            {n for a in automations for n in (*a.dataset_names, *a.scoring_dataset_names)},
            {a.model_name for a in automations},
        )
        self._check_watched_names()
        self.datasets.start()
        self.models.start()
        self.holds.start()
        self.fires.start()
        self.gate.start()
        self.actions.recover()
        self.executor.warm_up()

    def _check_watched_names(self) -> None:
        """Say which watched names the store does not hold as written: a warning when it holds
        one like it (a typo, or a case that only MySQL ignores), else a note (it may come)."""
        found = check_watched(
            self.settings.automations, self.store.artifact_names(), self.store.model_names()
        )
        for unknown in found:
            log = self.log.warning if unknown.likely_typo else self.log.info
            log(
                "config.name_not_in_store",
                kind=unknown.kind,
                name=unknown.name,
                variables=list(unknown.variables),
                store_spelling=unknown.store_spelling,
                close_matches=list(unknown.close),
                detail=unknown.message,
            )

    def _say_what_is_stranded(self) -> None:
        """Streams or open actions of an automation no longer configured wait for ever (a
        renamed automation, most often): say so once, with the command that carries them to
        a configured one, while nothing has been done under the new name yet."""
        rows = self.ledger.rows_by_automation()
        streams = list(self.ledger.cursors())
        configured = self.context.automations
        for name, held in sorted(rows.items()):
            if name in configured or not name or not (held.streams or held.open_actions):
                continue
            # Renamed, it still trains the same model (a model belongs to one automation).
            models = {s.partition("/model:")[2] for s in streams if s.startswith(f"{name}/model:")}
            renamed = [
                automation.name
                for automation in configured.values()
                if automation.model_name in models
                and not rows.get(automation.name, AutomationRows()).actions
            ]
            target = renamed[0] if len(renamed) == 1 else "<its new name>"
            self.log.warning(
                "startup.automation_not_configured",
                automation=name,
                streams=held.streams,
                open_actions=held.open_actions,
                configured=sorted(configured),
                carry_over=(
                    f"if it was renamed, stop the daemon and run `autopilot rename-automation "
                    f"{name} {target}` (possible until the new name has actions of its own)"
                ),
            )

    def tick(self, observe: bool = True) -> TickReport:
        """Settle, observe, decide, dispatch. `observe=False` is for a worker's report between
        two polls: settle it, judge the model version of a training that ended (now, not at
        the next poll), and dispatch, leaving the listing of the store to the schedule (in a
        burst, reports come several times a second)."""
        started = time.monotonic()
        clock = _StageClock()
        ended = self.actions.settle()
        clock.lap("settle")
        if observe:
            self.approvals.tick()  # a person's verdict, before production is read
            # A person's change is seen before the daemon promotes, and before scoring data
            # is selected: a new scoring version is scored by the production of this tick.
            self.production.tick()
            clock.lap("production")
            self.datasets.tick()
            clock.lap("datasets")
        trainings = [run.run for run in ended if run.kind is ActionKind.TRAIN]
        promoted = self.models.tick(observe, trainings)
        if promoted:
            self.production.tick(promoted)  # and the daemon's own promotion in the same tick
        clock.lap("models")
        self.gate.tick()  # after the datasets it queues, before the dispatch of what it releases
        self.inference_schedule.tick()  # after production, which its fires pin to
        clock.lap("gate")
        launched = self.actions.dispatch()
        self.ledger.set_meta(LAST_POLL_KEY, datetime.now(UTC).isoformat(timespec="seconds"))
        clock.lap("dispatch")
        return TickReport(launched, time.monotonic() - started, clock.laps)

    def settle(self) -> None:
        self.actions.settle()

    def dispatch(self) -> list[str]:
        return self.actions.dispatch()

    def shutdown(self, grace_seconds: float) -> None:
        self.holds.close()
        self.actions.shutdown(grace_seconds)

    def busy(self, keys: Iterable[str]) -> bool:
        """True while any of these actions may still run (for `run --once`). One whose
        pipeline is broken waits for a fix, which `run --once` does not wait for."""
        open_states = {ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT}
        return any(
            (action := self.ledger.action(key)) is not None
            and action.state in open_states
            and not self.holds.held(action.automation)
            for key in keys
        )

    def succeeded(self, key: str) -> bool:
        action = self.ledger.action(key)
        return action is not None and action.state is ActionState.SUCCEEDED
