"""When a schedule fires, and which fires a tick acts on. Pure: no clock is read here.

A schedule is a five-field crontab (`0 6 * * 1-5`) or `every <N>s|m|h`, always in UTC.
APScheduler's triggers compute the fire times (CronTrigger, IntervalTrigger); nothing here
runs a job: the daemon's tick asks `plan_fires` which fire is due, and records it in the
ledger, so that each fire time is acted on exactly once across restarts.

Two things a reader of a crontab expects that APScheduler 3 does not do by itself:
- Day-of-week numbers are crontab's (0 and 7 are Sunday, 1 is Monday). APScheduler 3 counts
  from Monday = 0, so numbers are translated to day names before they reach it.
- An interval is anchored at the Unix epoch, not at the daemon's start: `every 20s` fires at
  :00, :20 and :40 whenever the daemon (re)started, so a fire time names the same moment in
  every process and can be part of an action's key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVERY = re.compile(r"every\s+(\d+)\s*([smh])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Fires a plan steps through at most (a week of a one-minute crontab): beyond that, the
# oldest missed fires are only counted as "more than this".
MAX_FIRES_STEPPED = 20_000
# Spans searched backwards from the present for the last of too many fires to step through.
_WINDOWS = (timedelta(hours=6), timedelta(days=14), timedelta(days=400), timedelta(days=3000))


class Catchup(StrEnum):
    """What to do with fires that fell while the daemon was down."""

    LATEST = "latest"  # act on the last one
    NONE = "none"  # act on none of them


@dataclass(frozen=True)
class Schedule:
    spec: str
    # Computed from the spec; left out of comparisons (APScheduler's triggers compare by
    # identity), so two automations built from the same settings are equal.
    trigger: BaseTrigger = field(compare=False)
    interval: timedelta | None = None  # set for `every ...`: fires are epoch + k * interval

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware UTC)."""
        if self.interval is not None:
            steps = (after - EPOCH) // self.interval + 1
            return EPOCH + steps * self.interval
        fire: datetime | None = self.trigger.get_next_fire_time(None, after)
        if fire is not None and fire <= after:  # a cron trigger may return `after` itself
            fire = self.trigger.get_next_fire_time(fire, after + timedelta(microseconds=1))
        return fire

    def last_fire(self, at_or_before: datetime, after: datetime) -> tuple[datetime | None, int]:
        """The last fire time in (`after`, `at_or_before`] and how many fell in that span
        (counted up to MAX_FIRES_STEPPED for a crontab)."""
        if self.interval is not None:
            first = self.next_fire(after)
            assert first is not None
            if first > at_or_before:
                return None, 0
            count = (at_or_before - first) // self.interval + 1
            return first + (count - 1) * self.interval, count
        last, count = self._step(after, at_or_before, MAX_FIRES_STEPPED)
        if count < MAX_FIRES_STEPPED:
            return last, count
        for window in _WINDOWS:  # too many to step through: find the last one near the end
            start = max(after, at_or_before - window)
            near_end, _ = self._step(start, at_or_before, MAX_FIRES_STEPPED)
            if near_end is not None:
                return near_end, count
        return last, count

    def _step(self, after: datetime, until: datetime, limit: int) -> tuple[datetime | None, int]:
        last, count, moment = None, 0, after
        while count < limit:
            fire = self.next_fire(moment)
            if fire is None or fire > until:
                break
            last, count, moment = fire, count + 1, fire
        return last, count


def parse_schedule(text: str) -> Schedule:
    """A five-field crontab or `every <N>s|m|h`; ValueError saying what is wrong."""
    spec = " ".join(text.split())
    every = _EVERY.fullmatch(spec)
    if every is not None:
        seconds = int(every.group(1)) * _UNIT_SECONDS[every.group(2).lower()]
        if seconds <= 0:
            raise ValueError(f"{text!r}: an interval must be at least 1s")
        interval = timedelta(seconds=seconds)
        trigger = IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)
        return Schedule(spec, trigger, interval)
    fields = spec.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{text!r}: expected a crontab with five fields (minute hour day month weekday, "
            "in UTC, e.g. '0 6 * * 1-5') or 'every <N>s|m|h' (e.g. 'every 20s')"
        )
    try:
        fields[4] = _crontab_weekdays(fields[4])
        trigger = CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None
    return Schedule(spec, trigger)


def _crontab_weekdays(field: str) -> str:
    """Crontab's day-of-week field (0 or 7 = Sunday) as day names APScheduler 3 reads the
    same way (it counts numbers from Monday)."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"day-of-week step {step_text!r} must be positive")
        if span == "*":
            low, high = 0, 6
        else:
            low_text, _, high_text = span.partition("-")
            low = _weekday(low_text)
            high = _weekday(high_text) if high_text else (6 if step_text else low)
            if high < low:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _weekday(text: str) -> int:
    name = text.strip().lower()[:3]
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    if not text.isdigit() or not 0 <= int(text) <= 7:
        raise ValueError(f"day of week {text!r} is not 0-7 (0 and 7: Sunday) or a day name")
    return int(text)


@dataclass(frozen=True)
class FirePlan:
    """What a tick does with a schedule: act on `fire` (None: nothing due), and how many
    earlier due fires it passes over (`coalesced`: due while it ran, a tick behind;
    `missed`: fell while the daemon was down)."""

    fire: datetime | None
    coalesced: int = 0
    missed: int = 0
    handled_through: datetime | None = None  # the latest due fire: record it as handled


def plan_fires(
    schedule: Schedule,
    last_handled: datetime,
    process_started: datetime,
    now: datetime,
    catchup: Catchup,
) -> FirePlan:
    """The fire to act on now. `last_handled`: the last fire time the ledger has handled (or,
    for a new schedule, the moment it was first seen: nothing before it is due).

    Fires after `process_started` are due in any case; if several are, only the latest is
    acted on (the others are counted as coalesced). Fires between `last_handled` and
    `process_started` fell while the daemon was down: with `Catchup.LATEST` the latest of them
    is acted on when no later fire is due, with `Catchup.NONE` none is.
    """
    since = max(last_handled, process_started)
    live, live_count = schedule.last_fire(now, since)
    down, down_count = (None, 0)
    if last_handled < process_started:
        down, down_count = schedule.last_fire(min(now, process_started), last_handled)
    if live is not None:
        return FirePlan(live, live_count - 1, down_count, live)
    if down is not None and catchup is Catchup.LATEST:
        return FirePlan(down, missed=down_count - 1, handled_through=down)
    return FirePlan(None, missed=down_count, handled_through=down)
