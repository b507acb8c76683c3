"""Schedules (issue 20): `TRAINING_SCHEDULE` and `INFERENCE_SCHEDULE`, each a five-field crontab
or `every <N>s|m|h`, in UTC (`core/schedule.py`).

`FireClock` says which fire of a schedule a tick acts on (`plan_fires`), and records each fire
time it handled in the ledger, in the same transaction as the action the fire claims: a fire
time is acted on once, across restarts and kill -9. Fires that fell while the daemon was down
follow the automation's `SCHEDULE_CATCHUP` (`latest`: one run for the last of them; `none`:
none). The daemon's tick keeps its single thread: APScheduler only wakes the loop at the fire
times (`triggers`), and the tick decides and records. Fire times are on the daemon's clock, as
any cron's.

`InferenceSchedule` acts on the inference schedule's fires: an inference pinned to the
production version the daemon knows, its key qualified by the fire time
(`infer:<model version id>@fire:<time>`), on the newest selected scoring version when the
automation has scoring datasets (`stages/scoring.py`). The training schedule's fires are the
training gate's (`stages/training_gate.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from service.core.actions import ActionKind, ActionState, action_key
from service.core.automation import Automation
from service.core.schedule import FirePlan, Schedule, plan_fires
from service.core.scoring import SCORING_ID
from service.faults import crashpoint
from service.stages import gate_ledger, scoring
from service.stages.context import Context, after_latest_deployment
from service.stages.gate_ledger import Fire, ScheduleRecord, fire_text

TRAINING, INFERENCE = "training", "inference"
FIRED, SKIPPED, MISSED = "fired", "skipped", "missed"
OVERLAP = "overlap"
NO_PRODUCTION = "no_production_version"
NOTHING_TO_SCORE = "nothing_to_score"
OPEN_STATES = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)


def fire_qualifier(fire: datetime) -> str:
    """The key qualifier of an action a fire claims: `fire:2026-12-07T06:00:00Z`."""
    return f"fire:{fire_text(fire)}"


def schedule_of(automation: Automation, which: str) -> Schedule | None:
    if which == TRAINING:
        return automation.training_policy.schedule
    return automation.inference_schedule


class FireClock:
    """Which fire of each schedule a tick acts on; each fire time handled once."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.started = self.now()
        self._last_handled: dict[tuple[str, str], datetime] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.context.clock(), UTC)

    def schedules(self) -> list[tuple[Automation, str, Schedule]]:
        found = []
        for automation in self.context.automations.values():
            for which in (TRAINING, INFERENCE):
                schedule = schedule_of(automation, which)
                if schedule is not None:
                    found.append((automation, which, schedule))
        return found

    def start(self) -> None:
        """A schedule seen for the first time, or whose spec changed, counts from now: no fire
        before it is due. Otherwise from the last fire the ledger handled."""
        self.started = self.now()
        for automation, which, schedule in self.schedules():
            record = gate_ledger.schedule_record(self.ledger, automation.name, which)
            if record is None or record.spec != schedule.spec:
                gate_ledger.set_schedule_record(
                    self.ledger, automation.name, which, ScheduleRecord(schedule.spec, self.started)
                )
                self.context.log(automation).info(
                    "schedule.started",
                    schedule=which,
                    spec=schedule.spec,
                    replaced=record.spec if record else None,
                    next_fire=_shown(schedule.next_fire(self.started)),
                )
                last = self.started
            else:
                handled = gate_ledger.fires(self.ledger, automation.name, which, limit=1)
                last = max(record.since, handled[0].fire) if handled else record.since
            self._last_handled[(automation.name, which)] = last

    def triggers(self) -> list[tuple[str, BaseTrigger]]:
        """One APScheduler trigger per schedule, to wake the daemon's loop at its fires."""
        return [
            (f"schedule:{automation.name}:{which}", schedule.trigger)
            for automation, which, schedule in self.schedules()
        ]

    def due(self, automation: Automation, which: str) -> FirePlan | None:
        """The fire to act on now, or None. Fires passed over with `SCHEDULE_CATCHUP=none` are
        recorded here (`missed`)."""
        schedule = schedule_of(automation, which)
        if schedule is None:
            return None
        last = self._last_handled.get((automation.name, which), self.started)
        plan = plan_fires(schedule, last, self.started, self.now(), automation.schedule_catchup)
        if plan.handled_through is None:
            return None
        if plan.fire is None:  # fell while the daemon was down, and catch-up is `none`
            self.record(automation, which, plan, MISSED)
            self.context.log(automation).info(
                "schedule.missed",
                schedule=which,
                missed=plan.missed,
                last_missed=_shown(plan.handled_through),
                catchup=automation.schedule_catchup.value,
            )
            return None
        return plan

    def record(
        self,
        automation: Automation,
        which: str,
        plan: FirePlan,
        outcome: str,
        reason: str | None = None,
        key: str | None = None,
    ) -> None:
        """Record a fire as handled (in the caller's transaction, with what it claimed)."""
        handled = plan.fire or plan.handled_through
        assert handled is not None
        fire = Fire(automation.name, which, handled, outcome, reason, key, plan.missed)
        gate_ledger.record_fire(self.ledger, fire)
        self._last_handled[(automation.name, which)] = plan.handled_through or handled

    def previous_open(self, automation: Automation, which: str) -> bool:
        """Whether the action the schedule's last fire claimed is still pending or running."""
        key = gate_ledger.last_claimed(self.ledger, automation.name, which)
        action = self.ledger.action(key) if key else None
        return action is not None and action.state in OPEN_STATES

    def log_fire(
        self,
        automation: Automation,
        which: str,
        plan: FirePlan,
        reason: str | None = None,
        **fields: Any,
    ) -> None:
        """`schedule.fired` or `schedule.skipped` (with its reason), and `schedule.missed`
        when earlier fires were passed over."""
        log = self.context.log(automation)
        assert plan.fire is not None
        schedule = schedule_of(automation, which)
        ids = {"schedule": which, "fire": fire_text(plan.fire)}
        if plan.missed or plan.coalesced:
            log.info(
                "schedule.missed",
                missed=plan.missed,
                coalesced=plan.coalesced,
                catchup=automation.schedule_catchup.value,
                **ids,
            )
        upcoming = schedule.next_fire(plan.fire) if schedule else None
        if reason is None:
            log.info("schedule.fired", next_fire=_shown(upcoming), **ids, **fields)
        else:
            log.info("schedule.skipped", reason=reason, next_fire=_shown(upcoming), **ids, **fields)

    def next_fire(self, automation: Automation, which: str) -> datetime | None:
        schedule = schedule_of(automation, which)
        return None if schedule is None else schedule.next_fire(self.now())


class InferenceSchedule:
    """At each fire of an automation's `INFERENCE_SCHEDULE`: one inference pinned to the
    production version the daemon knows (on the newest selected scoring version when the
    automation has scoring datasets). Skipped, and recorded, without a production version, while
    the previous fire's inference still runs (`overlap`), or with nothing to score yet."""

    def __init__(self, context: Context, fires: FireClock) -> None:
        self.context = context
        self.ledger = context.ledger
        self.fires = fires

    def tick(self) -> None:
        for automation in self.context.automations.values():
            if automation.inference_schedule is None:
                continue
            plan = self.fires.due(automation, INFERENCE)
            if plan is not None:
                self._fire(automation, plan)

    def _fire(self, automation: Automation, plan: FirePlan) -> None:
        assert plan.fire is not None
        production = self.ledger.get_cursor(automation.production_stream)
        scores: dict[str, Any] | None = {}
        reason = None
        if self.fires.previous_open(automation, INFERENCE):
            reason = OVERLAP
        elif not production:
            reason = NO_PRODUCTION
        else:
            # The same answer a production change's inference uses: {} without scoring
            # datasets (the parameters say what to infer on), the newest selected scoring
            # version's entries, or None when none is selected yet.
            scores = scoring.production_change_details(self.ledger, automation)
            if scores is None:
                reason = NOTHING_TO_SCORE
        key = None
        with self.ledger.transaction():
            if reason is None and production:
                key = action_key(ActionKind.INFER, production, qualifier=fire_qualifier(plan.fire))
                details = {
                    "model_version_id": production,
                    "schedule": INFERENCE,
                    "fire": fire_text(plan.fire),
                    **(scores or {}),
                    **after_latest_deployment(self.ledger, automation, production),
                }
                self.ledger.claim(key, ActionKind.INFER, production, details, automation.name)
            self.fires.record(automation, INFERENCE, plan, FIRED if key else SKIPPED, reason, key)
        crashpoint("after_fire_recorded")
        ids = {"key": key, "model_version_id": production} if key else {}
        if key and scores:  # the scoring version it scores, to follow it
            ids[SCORING_ID] = scores[SCORING_ID]
        self.fires.log_fire(automation, INFERENCE, plan, reason, **ids)


def _shown(moment: datetime | None) -> str | None:
    return None if moment is None else fire_text(moment)
