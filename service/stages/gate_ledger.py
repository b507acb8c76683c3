"""The training gate's and the schedules' records in the ledger (issue 20): the training queue
and the handled fires (additive tables, `service/ledger.py`), and each automation's gate state
and each schedule's spec (meta rows). Writes join the caller's transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.core.triggers import Candidate
from service.ledger import Ledger

GATE_PREFIX = "training_gate/"  # meta, per automation: its gate state
SCHEDULE_PREFIX = "schedule/"  # meta, per automation and schedule: its spec, and since when
FIRES_KEPT = 100  # handled fires kept per automation and schedule (the newest decide)
FIRE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # fires fall on whole seconds (core/schedule.py)


def fire_text(fire: datetime) -> str:
    return fire.astimezone(UTC).strftime(FIRE_FORMAT)


def parse_fire(text: str) -> datetime:
    return datetime.strptime(text, FIRE_FORMAT).replace(tzinfo=UTC)


# -- the training queue ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedVersion:
    """A selected dataset version waiting at an automation's gate."""

    automation: str
    id: str
    created: datetime  # the store's `created`, naive UTC
    details: dict[str, Any]  # what its training's action details will hold
    queued_at: str

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.id, self.created)


def queue(
    ledger: Ledger, automation: str, version_id: str, created: datetime, details: dict[str, Any]
) -> bool:
    """Queue a version at an automation's gate; False if it was queued before."""
    cursor = ledger.execute(
        "INSERT OR IGNORE INTO training_queue (automation, dataset_version_id, created, details, "
        "queued_at) VALUES (?, ?, ?, ?, ?)",
        (automation, version_id, created.isoformat(), json.dumps(details), _now()),
    )
    return cursor.rowcount == 1


def queued(ledger: Ledger) -> dict[str, list[QueuedVersion]]:
    """Every queued version, by automation."""
    rows = ledger.execute("SELECT * FROM training_queue ORDER BY automation, created").fetchall()
    found: dict[str, list[QueuedVersion]] = {}
    for row in rows:
        found.setdefault(row["automation"], []).append(_queued(row))
    return found


def queued_as(ledger: Ledger, version_id: str) -> list[QueuedVersion]:
    """One version, as queued by each automation that waits with it."""
    rows = ledger.execute(
        "SELECT * FROM training_queue WHERE dataset_version_id = ? ORDER BY automation",
        (version_id,),
    ).fetchall()
    return [_queued(row) for row in rows]


def dequeue(ledger: Ledger, automation: str, version_ids: list[str]) -> None:
    for version_id in version_ids:
        ledger.execute(
            "DELETE FROM training_queue WHERE automation = ? AND dataset_version_id = ?",
            (automation, version_id),
        )


def _queued(row: sqlite3.Row) -> QueuedVersion:
    return QueuedVersion(
        automation=row["automation"],
        id=row["dataset_version_id"],
        created=datetime.fromisoformat(row["created"]),
        details=json.loads(row["details"]),
        queued_at=row["queued_at"],
    )


# -- an automation's gate state --------------------------------------------------------------


@dataclass
class GateState:
    """What the gate remembers of an automation between ticks and restarts."""

    last_release: datetime | None = None  # the store's clock when it last released a training
    newest_trained: QueuedVersion | None = None  # the newest version it released
    # What the queue waits for (shown by `status` and `explain`): the gate's latest decision.
    waiting_for: list[str] = field(default_factory=list)
    until: str | None = None  # the store's clock: when the timed waits end
    next_fire: str | None = None  # the schedule's next fire, when the queue waits for it

    def shown(self) -> dict[str, Any]:
        return {"waiting_for": self.waiting_for, "until": self.until, "next_fire": self.next_fire}


def gate_state(ledger: Ledger, automation: str) -> GateState:
    stored = ledger.get_meta(f"{GATE_PREFIX}{automation}")
    if stored is None:
        return GateState()
    values = json.loads(stored)
    newest = values.get("newest_trained")
    return GateState(
        last_release=_moment(values.get("last_release")),
        newest_trained=None
        if newest is None
        else QueuedVersion(
            automation,
            newest["id"],
            datetime.fromisoformat(newest["created"]),
            newest["details"],
            newest.get("queued_at", ""),
        ),
        waiting_for=list(values.get("waiting_for", [])),
        until=values.get("until"),
        next_fire=values.get("next_fire"),
    )


def set_gate_state(ledger: Ledger, automation: str, state: GateState) -> None:
    newest = state.newest_trained
    values = {
        "last_release": state.last_release.isoformat() if state.last_release else None,
        "newest_trained": None
        if newest is None
        else {
            "id": newest.id,
            "created": newest.created.isoformat(),
            "details": newest.details,
            "queued_at": newest.queued_at,
        },
        **state.shown(),
    }
    ledger.set_meta(f"{GATE_PREFIX}{automation}", json.dumps(values))


def gate_states(ledger: Ledger) -> dict[str, GateState]:
    return {
        key.removeprefix(GATE_PREFIX): gate_state(ledger, key.removeprefix(GATE_PREFIX))
        for key in ledger.meta_with_prefix(GATE_PREFIX)
    }


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# -- schedules and their fires ---------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleRecord:
    spec: str
    since: datetime  # when the daemon first ran it: no fire before it is due


def schedule_record(ledger: Ledger, automation: str, which: str) -> ScheduleRecord | None:
    stored = ledger.get_meta(f"{SCHEDULE_PREFIX}{automation}/{which}")
    if stored is None:
        return None
    values = json.loads(stored)
    return ScheduleRecord(values["spec"], parse_fire(values["since"]))


def set_schedule_record(
    ledger: Ledger, automation: str, which: str, record: ScheduleRecord
) -> None:
    ledger.set_meta(
        f"{SCHEDULE_PREFIX}{automation}/{which}",
        json.dumps({"spec": record.spec, "since": fire_text(record.since)}),
    )


def schedule_records(ledger: Ledger) -> dict[tuple[str, str], ScheduleRecord]:
    records = {}
    for key in ledger.meta_with_prefix(SCHEDULE_PREFIX):
        automation, _, which = key.removeprefix(SCHEDULE_PREFIX).rpartition("/")
        record = schedule_record(ledger, automation, which)
        if record is not None:
            records[(automation, which)] = record
    return records


@dataclass(frozen=True)
class Fire:
    """A fire time handled: acted on (`fired`), skipped with a reason, or passed over while
    the daemon was down (`missed`, with `Catchup.NONE`)."""

    automation: str
    schedule: str
    fire: datetime
    outcome: str
    reason: str | None = None
    key: str | None = None
    missed: int = 0
    handled_at: str = ""

    def shown(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"fire": fire_text(self.fire), "outcome": self.outcome}
        for name in ("reason", "key", "missed"):
            if getattr(self, name):
                shown[name] = getattr(self, name)
        return shown


def record_fire(ledger: Ledger, fire: Fire) -> bool:
    """Record a handled fire; False if that fire time was handled before. Keeps the newest
    FIRES_KEPT of its schedule."""
    cursor = ledger.execute(
        "INSERT OR IGNORE INTO schedule_fires (automation, schedule, fire, outcome, reason, key, "
        "missed, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            fire.automation,
            fire.schedule,
            fire_text(fire.fire),
            fire.outcome,
            fire.reason,
            fire.key,
            fire.missed,
            _now(),
        ),
    )
    # The newest fire that claimed an action is kept beyond them: a fire overlaps it while it
    # runs, however many fires were skipped meanwhile.
    ledger.execute(
        "DELETE FROM schedule_fires WHERE automation = ?1 AND schedule = ?2 AND fire NOT IN "
        "(SELECT fire FROM schedule_fires WHERE automation = ?1 AND schedule = ?2 "
        "ORDER BY fire DESC LIMIT ?3) AND fire IS NOT (SELECT MAX(fire) FROM schedule_fires "
        "WHERE automation = ?1 AND schedule = ?2 AND key IS NOT NULL)",
        (fire.automation, fire.schedule, FIRES_KEPT),
    )
    return cursor.rowcount == 1


def last_claimed(ledger: Ledger, automation: str, schedule: str) -> str | None:
    """The key the schedule's newest fire that claimed an action claimed."""
    row = ledger.execute(
        "SELECT key FROM schedule_fires WHERE automation = ? AND schedule = ? "
        "AND key IS NOT NULL ORDER BY fire DESC LIMIT 1",
        (automation, schedule),
    ).fetchone()
    return None if row is None else str(row["key"])


def fires(ledger: Ledger, automation: str, schedule: str, limit: int = FIRES_KEPT) -> list[Fire]:
    """The handled fires of a schedule, newest first."""
    rows = ledger.execute(
        "SELECT * FROM schedule_fires WHERE automation = ? AND schedule = ? "
        "ORDER BY fire DESC LIMIT ?",
        (automation, schedule, limit),
    ).fetchall()
    return [
        Fire(
            row["automation"],
            row["schedule"],
            parse_fire(row["fire"]),
            row["outcome"],
            row["reason"],
            row["key"],
            row["missed"],
            row["handled_at"],
        )
        for row in rows
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
