"""The training gate: when an automation's selected dataset versions train, under its trigger
policies (issue 20). Pure: the stage (`service/stages/training_gate.py`) gathers what the gate
looks at (the queue, the store's clock, the ledger) and carries out its decision.

An automation without any policy is not gated: a selected version claims its training at once,
as it always did. With one or more, a selected version is *queued*, and each tick the gate
releases at most one training of the automation: the newest queued version (by its `created` in
the store), once every policy lets it. The older queued versions are superseded by it (never
trained, unless an operator replays them). What each policy waits for:

- `debounce_seconds` D: no newer version arrived for D (the newest is at least D old);
- `min_interval_seconds` M: the automation's last release is at least M ago;
- `latest_only`: no training of the automation is in flight (pending, running or retrying);
- `schedule`: a fire is due. A due fire trains the newest queued version, or, with nothing
  queued, retrains the newest version ever released (`schedule_always`) or is skipped with a
  reason; a fire while the previous fire's training is still open is skipped (`overlap`).

Debounce and minimum interval are measured on the store's clock: a version arrives at its
`created`, and "now" is the store's (`StoreAdapter.store_now`), never the daemon's. A schedule's
fires are on the daemon's clock, as any cron's (`core/schedule.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from service.core.schedule import Schedule

OVERLAP = "overlap"  # the previous fire's training is still open
NOTHING_NEW = "nothing_new"  # nothing queued since the last fire
NOTHING_SELECTED_YET = "nothing_selected_yet"  # `schedule_always`, but nothing ever trained


class Wait(StrEnum):
    """What a queued version waits for."""

    DEBOUNCE = "debounce"
    MIN_INTERVAL = "min_interval"
    TRAINING_IN_FLIGHT = "training_in_flight"
    SCHEDULE = "schedule"  # the schedule's next fire


@dataclass(frozen=True)
class TrainingPolicy:
    """An automation's training trigger policies (`TRAINING_*` settings)."""

    schedule: Schedule | None = None
    schedule_always: bool = False
    debounce_seconds: float = 0.0
    min_interval_seconds: float = 0.0
    latest_only: bool = False

    @property
    def gated(self) -> bool:
        """Whether selected versions queue at the gate instead of training at once."""
        return (
            self.schedule is not None
            or self.debounce_seconds > 0
            or self.min_interval_seconds > 0
            or self.latest_only
        )

    @property
    def timed(self) -> bool:
        """Whether the gate needs the store's clock."""
        return self.debounce_seconds > 0 or self.min_interval_seconds > 0

    def describe(self) -> dict[str, object]:
        return {
            "schedule": self.schedule.spec if self.schedule else None,
            "schedule_always": self.schedule_always,
            "debounce_seconds": self.debounce_seconds,
            "min_interval_seconds": self.min_interval_seconds,
            "latest_only": self.latest_only,
        }


@dataclass(frozen=True)
class Candidate:
    """A dataset version the gate may train: its id and its `created` in the store."""

    id: str
    created: datetime


def newest_first(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Newest first, by `created` then id (a store that keeps `created` to the second may give
    two versions the same)."""
    return sorted(candidates, key=lambda c: (c.created, c.id), reverse=True)


@dataclass(frozen=True)
class GateView:
    """What the gate looks at for one automation in one tick."""

    queued: Sequence[Candidate]
    store_now: datetime | None = None  # needed when the policy is timed
    last_release: datetime | None = None  # the store's clock, at the last release
    in_flight: bool = False  # a training of the automation is pending, running or retrying
    fire: datetime | None = None  # the schedule's fire due now (core/schedule.plan_fires)
    fire_overlaps: bool = False  # the previous fire's training is still open
    newest_trained: Candidate | None = None  # what `schedule_always` retrains


@dataclass(frozen=True)
class GateDecision:
    release: Candidate | None = None  # the queued version that trains now
    superseded: tuple[Candidate, ...] = ()  # the older queued versions, never trained
    retrain: Candidate | None = None  # `schedule_always`: the newest trained version, again
    waiting_for: tuple[Wait, ...] = ()  # why the queue waits (empty: nothing queued)
    until: datetime | None = None  # the store's clock: when the timed waits end
    fire_skipped: str | None = None  # why a due fire trains nothing (a Wait, or a reason above)


def decide(policy: TrainingPolicy, view: GateView) -> GateDecision:
    """Release the newest queued version once every policy lets it, superseding the others."""
    queued = newest_first(view.queued)
    newest = queued[0] if queued else None
    waits, until = _waits(policy, view, newest)
    if policy.schedule is not None:
        if view.fire is None:
            waiting = (Wait.SCHEDULE, *waits) if queued else ()
            return GateDecision(waiting_for=waiting, until=until)
        if view.fire_overlaps:
            waiting = (Wait.SCHEDULE, *waits) if queued else ()
            return GateDecision(waiting_for=waiting, until=until, fire_skipped=OVERLAP)
    if newest is None:
        if view.fire is None:
            return GateDecision()
        return _fire_without_news(policy, view, waits)
    if waits:
        fire_skipped = waits[0].value if view.fire is not None else None
        if policy.schedule is not None:
            waits = (Wait.SCHEDULE, *waits)  # the next fire, once these are over
        return GateDecision(waiting_for=waits, until=until, fire_skipped=fire_skipped)
    return GateDecision(release=newest, superseded=tuple(queued[1:]))


def _fire_without_news(
    policy: TrainingPolicy, view: GateView, waits: tuple[Wait, ...]
) -> GateDecision:
    """A due fire with nothing queued: a retrain of the newest trained version with
    `schedule_always` (when the other policies let a training start), else skipped."""
    if not policy.schedule_always:
        return GateDecision(fire_skipped=NOTHING_NEW)
    if view.newest_trained is None:
        return GateDecision(fire_skipped=NOTHING_SELECTED_YET)
    if waits:  # a debounce has nothing to wait for here: only the start of a training counts
        return GateDecision(fire_skipped=waits[0].value)
    return GateDecision(retrain=view.newest_trained)


def _waits(
    policy: TrainingPolicy, view: GateView, newest: Candidate | None
) -> tuple[tuple[Wait, ...], datetime | None]:
    """The policies that hold a training back now, and when the timed ones end."""
    waits: list[Wait] = []
    ends: list[datetime] = []
    if policy.timed and (newest is not None or view.fire is not None):
        if view.store_now is None:
            raise ValueError("a timed policy needs the store's clock")
        now = view.store_now
        if policy.debounce_seconds > 0 and newest is not None:
            end = newest.created + timedelta(seconds=policy.debounce_seconds)
            if now < end:
                waits.append(Wait.DEBOUNCE)
                ends.append(end)
        if policy.min_interval_seconds > 0 and view.last_release is not None:
            end = view.last_release + timedelta(seconds=policy.min_interval_seconds)
            if now < end:
                waits.append(Wait.MIN_INTERVAL)
                ends.append(end)
    if policy.latest_only and view.in_flight:
        waits.append(Wait.TRAINING_IN_FLIGHT)
    return tuple(waits), max(ends) if ends else None
