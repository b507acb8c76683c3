"""The outbox: notifications recorded in the ledger, delivered from there.

`Outbox.add` is called by the code that records a decision or an outcome, *inside the same
ledger transaction*: the notification (its exact JSON body) and one delivery row per
destination commit together with what they report, or not at all. A crash can therefore
neither record a promotion and lose its notification, nor notify one that was never recorded.
An event's id is stable (`events.event_id`), and the id is the notification's primary key: an
event recorded twice is kept once.

`Deliveries` is the sender's side, on its own SQLite connection (one per sender thread): what
is still to be sent to one destination, oldest first, and how each attempt ended
(`service/notify/sender.py`). The tables are additive ones of the ledger (`ADDITIVE_SCHEMA`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.ledger import Ledger, epoch
from service.notify.events import DashboardLinks, Notice, payload

ALERTER = "alerter"  # the stack's alerter, a destination like a webhook
PENDING, DELIVERED, FAILED, DROPPED = "pending", "delivered", "failed", "dropped"


def webhook_destination(url: str) -> str:
    """A webhook's name in the ledger, logs, metrics and `status`: its host and a hash of the
    whole URL, never the URL (a Slack or Discord webhook URL is a credential)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"webhook:{urlsplit(url).hostname}:{digest}"


class Outbox:
    """Records notifications for the tick, in the caller's ledger transaction."""

    def __init__(
        self,
        ledger: Ledger,
        destinations: Sequence[str],
        events: frozenset[str],
        events_by_automation: Mapping[str, frozenset[str]] | None = None,
        links: DashboardLinks | None = None,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.ledger = ledger
        self.destinations = tuple(destinations)
        self.events = events
        self.events_by_automation = dict(events_by_automation or {})
        self.links = links  # set once the store answered (a store event needs none)
        self.scrub = scrub  # secrets out of every string of a body

    def wants(self, event: str, automation: str | None) -> bool:
        """Whether this event is sent: the automation's NOTIFY_EVENTS, else the daemon's."""
        chosen = self.events_by_automation.get(automation or "", self.events)
        return bool(self.destinations) and event in chosen

    def add(self, notice: Notice) -> bool:
        """Record a notification for every destination; False if it is not wanted. Call it in
        the transaction that records what it reports."""
        if not self.wants(notice.event, notice.automation):
            return False
        with self.ledger.transaction():
            known = "SELECT 1 FROM notifications WHERE id = ?"
            if self.ledger.execute(known, (notice.id,)).fetchone() is not None:
                return True  # recorded before: one notification per event, ever
            row = self.ledger.execute(
                "SELECT COALESCE(MAX(sequence), 0) + 1 FROM notifications"
            ).fetchone()
            sequence = int(row[0])
            body = json.dumps(
                _scrubbed(payload(notice, sequence, self.links), self.scrub),
                ensure_ascii=False,
                separators=(",", ":"),
                default=str,
            )
            self.ledger.execute(
                "INSERT INTO notifications (id, sequence, event, automation, order_key, created,"
                " body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    notice.id,
                    sequence,
                    notice.event,
                    notice.automation,
                    notice.order_key,
                    epoch(),
                    body,
                ),
            )
            for destination in self.destinations:
                self.ledger.execute(
                    "INSERT INTO deliveries (notification_id, destination, state, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (notice.id, destination, PENDING, _now()),
                )
        return True


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, scrub) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, scrub) for item in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- the sender's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """One notification still to be sent to one destination."""

    id: str
    event: str
    automation: str | None
    order_key: str
    sequence: int
    created: float
    body: str
    attempts: int
    not_before: float


class Deliveries:
    """A sender thread's own connection to the ledger's outbox."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        self._db.close()

    def pending(self, destination: str, limit: int = 500) -> list[Pending]:
        """What is still to be sent to `destination`, in the order it was recorded."""
        rows = self._db.execute(
            "SELECT n.id, n.event, n.automation, n.order_key, n.sequence, n.created, n.body, "
            "d.attempts, d.not_before FROM deliveries d JOIN notifications n "
            "ON n.id = d.notification_id WHERE d.destination = ? AND d.state = ? "
            "ORDER BY n.sequence LIMIT ?",
            (destination, PENDING, limit),
        ).fetchall()
        return [Pending(*row) for row in rows]

    def settle(
        self,
        destination: str,
        notification_id: str,
        state: str,
        attempts: int,
        not_before: float = 0.0,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record how an attempt ended (`pending` again: it will be retried)."""
        self._db.execute(
            "UPDATE deliveries SET state = ?, attempts = ?, not_before = ?, status = ?, "
            "error = ?, updated_at = ? WHERE notification_id = ? AND destination = ? "
            "AND state = ?",
            (
                state,
                attempts,
                not_before,
                status,
                error,
                _now(),
                notification_id,
                destination,
                PENDING,
            ),
        )

    def depth(self, destination: str) -> int:
        # fetchall: a statement left unfinished would pin a read snapshot of the WAL
        ((count,),) = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE destination = ? AND state = ?",
            (destination, PENDING),
        ).fetchall()
        return int(count)

    def pending_elsewhere(self, configured: Iterable[str]) -> list[tuple[str, str, str]]:
        """(notification id, event, destination) still pending for a destination that is no
        longer configured."""
        names = list(configured)
        marks = ",".join("?" for _ in names) or "''"
        rows = self._db.execute(
            "SELECT d.notification_id, n.event, d.destination FROM deliveries d "
            "JOIN notifications n ON n.id = d.notification_id "
            f"WHERE d.state = ? AND d.destination NOT IN ({marks})",
            (PENDING, *names),
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def summary(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Per destination: deliveries by state; for undelivered ones the oldest and the last
    error (`autopilot status`)."""
    found: dict[str, dict[str, Any]] = {}
    rows = ledger.execute(
        "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state"
    ).fetchall()
    for destination, state, count in rows:
        entry = found.setdefault(destination, {PENDING: 0, DELIVERED: 0, FAILED: 0, DROPPED: 0})
        entry[state] = int(count)
    for destination, entry in found.items():
        entry["undelivered"] = entry.pop(PENDING)
        oldest = ledger.execute(
            "SELECT n.event, n.created, d.attempts, d.status, d.error FROM deliveries d "
            "JOIN notifications n ON n.id = d.notification_id WHERE d.destination = ? "
            "AND d.state = ? ORDER BY n.sequence LIMIT 1",
            (destination, PENDING),
        ).fetchone()
        if oldest is not None:
            entry["oldest_undelivered"] = {
                "event": oldest[0],
                "age_seconds": round(epoch() - float(oldest[1]), 1),
                "attempts": oldest[2],
                "last_status": oldest[3],
                "last_error": oldest[4],
            }
    return found
