"""The training gate (issue 20). An automation with trigger policies (`TRAINING_SCHEDULE`,
`TRAINING_DEBOUNCE_SECONDS`, `TRAINING_MIN_INTERVAL_SECONDS`, `TRAINING_LATEST_ONLY`) queues each
selected dataset version here (`queue_training`, from the dataset watch) instead of claiming its
training at once. Each tick, `core/triggers.decide` releases the newest queued version once
every policy lets it: its `train:` key is claimed, and the older queued versions' keys are
claimed `superseded` (by it), in one ledger transaction with the fire it answered, if any.

Waiting is ledger state (the queue, the gate's last release in the store's clock), and what it
is measured against is the store's (`created`, `StoreAdapter.store_now`): a restart in the
middle of a wait comes to the same decision.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from service import metrics
from service.core.actions import ActionKind, ActionState, action_key
from service.core.automation import Automation
from service.core.records import DatasetVersion
from service.core.schedule import FirePlan
from service.core.triggers import Candidate, GateDecision, GateView, Wait, decide
from service.faults import crashpoint
from service.ledger import Ledger
from service.stages import gate_ledger
from service.stages.context import Context
from service.stages.gate_ledger import GateState, QueuedVersion, fire_text
from service.stages.schedules import (
    FIRED,
    OPEN_STATES,
    SKIPPED,
    TRAINING,
    FireClock,
    fire_qualifier,
)

SUPERSEDED_BY = "superseded_by"  # in a superseded training's details: the version that trained


def queue_training(context: Context, automation: Automation, version: DatasetVersion) -> None:
    """A selected version of a gated automation: queued at its gate (in the dataset watch's
    transaction), unless its training key exists already (an operator skipped it)."""
    key = action_key(ActionKind.TRAIN, version.id, automation.name)
    ids = {
        "dataset_version_id": version.id,
        "artifact": version.artifact_name,
        "version": version.version,
    }
    if context.ledger.action(key) is not None:
        return
    details = {**ids, "producer_run_id": version.producer.id if version.producer else None}
    if gate_ledger.queue(context.ledger, automation.name, version.id, version.created, details):
        policy = automation.training_policy.describe()
        gate = {name: value for name, value in policy.items() if value}
        context.log(automation).info("dataset.selected", key=key, queued=True, gate=gate, **ids)


class _StoreClock:
    """The store's time, read at most once per tick, when a decision needs it."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._now: datetime | None = None

    def now(self) -> datetime:
        if self._now is None:
            self._now = self.context.store.store_now()
        return self._now


class TrainingGate:
    def __init__(self, context: Context, fires: FireClock) -> None:
        self.context = context
        self.ledger = context.ledger
        self.fires = fires

    def start(self) -> None:
        """Versions queued by an automation whose policies were since removed train now, each
        once, as a selected version of an ungated automation does."""
        queue = gate_ledger.queued(self.ledger)
        for name, waiting in queue.items():
            automation = self.context.automations.get(name)
            if automation is None or automation.training_policy.gated:
                continue  # not configured (it waits), or still gated
            with self.ledger.transaction():
                keys = [
                    self._claim(automation, version, None, {"gate_removed": True})
                    for version in waiting
                ]
                gate_ledger.dequeue(self.ledger, name, [version.id for version in waiting])
            for key, version in zip(keys, waiting, strict=True):
                self.context.log(automation).info(
                    "training.released", key=key, dataset_version_id=version.id, gate_removed=True
                )

    def tick(self) -> None:
        gated = [a for a in self.context.automations.values() if a.training_policy.gated]
        if not gated:
            return
        queue = gate_ledger.queued(self.ledger)
        clock = _StoreClock(self.context)
        in_flight: set[str] | None = None
        for automation in gated:
            policy = automation.training_policy
            plan = self.fires.due(automation, TRAINING) if policy.schedule else None
            waiting = self._still_queued(automation, queue.get(automation.name, []))
            state = gate_ledger.gate_state(self.ledger, automation.name)
            if not waiting and plan is None:
                if state.waiting_for:  # the queue emptied (an operator's skip)
                    self._show(automation, state, GateDecision())
                continue
            if policy.latest_only and in_flight is None:
                in_flight = self._in_flight()
            view = GateView(
                queued=[q.candidate for q in waiting],
                store_now=clock.now() if policy.timed else None,
                last_release=state.last_release,
                in_flight=automation.name in (in_flight or ()),
                fire=plan.fire if plan else None,
                fire_overlaps=plan is not None and self.fires.previous_open(automation, TRAINING),
                newest_trained=state.newest_trained.candidate if state.newest_trained else None,
            )
            decision = decide(policy, view)
            self._apply(automation, waiting, state, decision, plan, clock)

    def _still_queued(
        self, automation: Automation, queued: list[QueuedVersion]
    ) -> list[QueuedVersion]:
        """The queued versions whose training key does not exist yet: one an operator skipped
        (or replayed) meanwhile leaves the queue as it is."""
        waiting = []
        for version in queued:
            if self.ledger.action(action_key(ActionKind.TRAIN, version.id, automation.name)):
                gate_ledger.dequeue(self.ledger, automation.name, [version.id])
            else:
                waiting.append(version)
        return waiting

    def _in_flight(self) -> set[str]:
        """The automations with a training pending, running or waiting to retry."""
        return {
            action.automation
            for action in self.ledger.actions_in(*OPEN_STATES, kind=ActionKind.TRAIN)
        }

    def _apply(
        self,
        automation: Automation,
        waiting: list[QueuedVersion],
        state: GateState,
        decision: GateDecision,
        plan: FirePlan | None,
        clock: _StoreClock,
    ) -> None:
        by_id = {version.id: version for version in waiting}
        extra = {"fire": fire_text(plan.fire)} if plan and plan.fire else {}
        trained: str | None = None
        superseded: list[tuple[str, Candidate]] = []
        shown = self._shown(automation, decision)
        changed = shown != state.shown()
        acts = plan is not None or decision.release is not None or decision.retrain is not None
        if not acts and not changed:
            return  # still waiting, as the ledger says already
        if decision.release is not None or decision.retrain is not None:
            # The store's clock at the release: MIN_INTERVAL counts from it.
            extra["released_at"] = clock.now().isoformat()
        with self.ledger.transaction():
            if decision.release is not None:
                released = by_id[decision.release.id]
                trained = self._claim(automation, released, None, extra)
                for old in decision.superseded:
                    superseded.append((self._supersede(automation, by_id[old.id], released), old))
                gate_ledger.dequeue(self.ledger, automation.name, [v.id for v in waiting])
                newest = state.newest_trained
                if newest is None or (released.created, released.id) > (newest.created, newest.id):
                    state.newest_trained = released
            elif decision.retrain is not None and plan is not None and plan.fire is not None:
                assert state.newest_trained is not None
                qualifier = fire_qualifier(plan.fire)
                trained = self._claim(automation, state.newest_trained, qualifier, extra)
            if trained is not None:
                state.last_release = clock.now()
            state = replace(state, **shown)
            gate_ledger.set_gate_state(self.ledger, automation.name, state)
            if plan is not None:
                outcome = FIRED if trained else SKIPPED
                self.fires.record(
                    automation, TRAINING, plan, outcome, decision.fire_skipped, trained
                )
        if plan is not None:
            crashpoint("after_fire_recorded")
        self._log(automation, decision, trained, superseded, state, changed, plan)

    def _claim(
        self,
        automation: Automation,
        version: QueuedVersion,
        qualifier: str | None,
        extra: dict[str, Any],
    ) -> str:
        """Claim a queued version's training; `extra`: the fire, the release's store time."""
        key = action_key(ActionKind.TRAIN, version.id, automation.name, qualifier)
        policy = automation.training_policy
        details = {**version.details, **extra}
        if policy.gated:
            details["released_by_gate"] = policy.describe()
        self.ledger.claim(key, ActionKind.TRAIN, version.id, details, automation.name)
        return key

    def _supersede(self, automation: Automation, old: QueuedVersion, by: QueuedVersion) -> str:
        """Claim an older queued version's training as superseded by the one released: final,
        `explain` says by which version, an operator may still replay it."""
        key = action_key(ActionKind.TRAIN, old.id, automation.name)
        details = {**old.details, SUPERSEDED_BY: by.id}
        if self.ledger.claim(key, ActionKind.TRAIN, old.id, details, automation.name):
            self.ledger.transition(key, ActionState.SUPERSEDED)
            metrics.ACTIONS.labels(automation.name, ActionKind.TRAIN.value, "superseded").inc()
        return key

    def _shown(self, automation: Automation, decision: GateDecision) -> dict[str, Any]:
        """What the queue waits for, as `status` and `explain` show it."""
        next_fire = None
        if Wait.SCHEDULE in decision.waiting_for:
            upcoming = self.fires.next_fire(automation, TRAINING)
            next_fire = fire_text(upcoming) if upcoming else None
        return {
            "waiting_for": [wait.value for wait in decision.waiting_for],
            "until": decision.until.isoformat() if decision.until else None,
            "next_fire": next_fire,
        }

    def _show(self, automation: Automation, state: GateState, decision: GateDecision) -> None:
        state = replace(state, **self._shown(automation, decision))
        gate_ledger.set_gate_state(self.ledger, automation.name, state)

    def _log(
        self,
        automation: Automation,
        decision: GateDecision,
        trained: str | None,
        superseded: list[tuple[str, Candidate]],
        state: GateState,
        changed: bool,
        plan: FirePlan | None,
    ) -> None:
        log = self.context.log(automation)
        if trained is not None:
            version = decision.release or decision.retrain
            assert version is not None
            log.info(
                "training.released",
                key=trained,
                dataset_version_id=version.id,
                superseded=len(superseded),
                retrain=decision.retrain is not None,
            )
        for key, old in superseded:
            log.info(
                "training.superseded",
                key=key,
                dataset_version_id=old.id,
                superseded_by=decision.release.id if decision.release else None,
            )
        if decision.waiting_for and changed:
            log.info("training.waiting", **state.shown())
        if plan is not None and plan.fire is not None:
            ids = {"key": trained} if trained else {}
            self.fires.log_fire(automation, TRAINING, plan, decision.fire_skipped, **ids)


def explain_queue(ledger: Ledger, version_id: str) -> list[dict[str, Any]]:
    """A version as each automation's gate holds it (for `explain`)."""
    found = []
    for queued in gate_ledger.queued_as(ledger, version_id):
        state = gate_ledger.gate_state(ledger, queued.automation)
        waiting = gate_ledger.queued(ledger).get(queued.automation, [])
        newest = max(waiting, key=lambda v: (v.created, v.id)).id if waiting else None
        found.append(
            {
                "automation": queued.automation,
                "state": "queued",
                "queued_at": queued.queued_at,
                "created": queued.created.isoformat(),
                "newest_queued": newest,
                **state.shown(),
            }
        )
    return found


def describe_gates(ledger: Ledger) -> dict[str, Any]:
    """Every gated automation's queue and what it waits for, and every schedule's last fires
    (for `status`)."""
    queue = gate_ledger.queued(ledger)
    states = gate_ledger.gate_states(ledger)
    gates = {}
    for automation in sorted(set(states) | set(queue)):
        state = states.get(automation, GateState())
        waiting = queue.get(automation, [])
        gates[automation] = {
            "queued": len(waiting),
            "newest_queued": max(waiting, key=lambda v: (v.created, v.id)).id if waiting else None,
            "last_release": state.last_release.isoformat() if state.last_release else None,
            **(state.shown() if waiting else {}),
        }
    schedules = []
    for (automation, which), record in gate_ledger.schedule_records(ledger).items():
        handled = gate_ledger.fires(ledger, automation, which, limit=3)
        schedules.append(
            {
                "automation": automation,
                "schedule": which,
                "spec": record.spec,
                "since": fire_text(record.since),
                "last_fires": [fire.shown() for fire in handled],
            }
        )
    return {"training_gates": gates, "schedules": schedules}
