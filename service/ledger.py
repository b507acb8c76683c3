"""The durable ledger: cursors, what was seen, and one row per action key.

SQLite in WAL mode with synchronous=FULL: a committed claim survives a crash or power loss.
Writes that belong together (a batch of decisions and the cursor behind them) share one
transaction, so a crash replays the batch instead of losing or doubling it; every write is
idempotent by key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.core.actions import ActionKind, ActionState, check_transition
from service.files import create_private_file, private_dir

SCHEMA_VERSION = 2  # 1: one automation (no automation columns); 2: automations
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    stream TEXT PRIMARY KEY,          -- <automation>/dataset:<name>, /model:<m>, /production:<m>
    value TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subjects (  -- dataset and model versions the daemon has judged
    automation TEXT NOT NULL,         -- one dataset version is judged once per automation
    id TEXT NOT NULL,
    kind TEXT NOT NULL,               -- dataset | model
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,             -- waiting | skipped | selected | decided
    reason TEXT NOT NULL,
    final INTEGER NOT NULL,           -- 1: never judged again
    details TEXT NOT NULL DEFAULT '{}', -- what the judgement saw (missing tags, run ids)
    updated_at TEXT NOT NULL,
    PRIMARY KEY (automation, id)
);
CREATE INDEX IF NOT EXISTS subjects_by_status ON subjects (kind, status, automation);
CREATE INDEX IF NOT EXISTS subjects_by_id ON subjects (id);
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY,             -- train[:<automation>]:<dataset version id>, promote:<mv>..
    automation TEXT NOT NULL,         -- '' when an operator skipped a key the daemon never saw
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, -- epoch seconds: retry backoff
    run_id TEXT,
    started_at REAL,                  -- epoch seconds of the current attempt's launch
    error TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_state ON actions (state);
"""

# Version 1 -> 2, in one transaction: every row of a single-automation ledger belongs to the
# `default` automation; action keys are unchanged (runs in the store carry them as tags).
UPGRADE_FROM_1 = """
ALTER TABLE subjects RENAME TO subjects_v1;
DROP INDEX IF EXISTS subjects_waiting;
{schema}
INSERT INTO subjects (automation, id, kind, name, version, status, reason, final, details,
    updated_at)
    SELECT 'default', id, kind, name, version, status, reason, final, details, updated_at
    FROM subjects_v1;
DROP TABLE subjects_v1;
ALTER TABLE actions ADD COLUMN automation TEXT NOT NULL DEFAULT 'default';
UPDATE cursors SET stream = 'default/' || stream;
"""


@dataclass(frozen=True)
class Action:
    key: str
    automation: str
    updated_at: str
    kind: ActionKind
    subject_id: str
    state: ActionState
    attempts: int
    not_before: float
    run_id: str | None
    started_at: float | None
    error: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Subject:
    automation: str
    id: str
    kind: str
    name: str
    version: str
    status: str
    reason: str
    final: bool
    details: dict[str, Any]
    updated_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    """The daemon's memory. One writer (the tick thread); readers may open their own."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        create_private_file(path)  # SQLite gives its -wal and -shm files the same mode
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._lock = threading.RLock()
        self._depth = 0
        self.upgraded_from = self._migrate()

    def _migrate(self) -> int | None:
        """Create or upgrade the schema in place; the version it was upgraded from, if any."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if version == 0 and "actions" in tables:
            version = 1  # written before the schema had a version
        if version == SCHEMA_VERSION:
            return None
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"ledger {self.path} has schema version {version}, newer than this daemon's "
                f"{SCHEMA_VERSION}: run the newer daemon, or restore a backup"
            )
        script = SCHEMA if version == 0 else UPGRADE_FROM_1.format(schema=SCHEMA)
        # executescript commits first; BEGIN/COMMIT inside it make the upgrade all or nothing.
        self._db.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )
        return None if version == 0 else version

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested use joins the outer transaction."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- cursors ------------------------------------------------------------------------------

    def get_cursor(self, stream: str) -> str | None:
        row = self._execute("SELECT value FROM cursors WHERE stream = ?", (stream,)).fetchone()
        return None if row is None else row["value"]

    def has_cursor(self, stream: str) -> bool:
        return (
            self._execute("SELECT 1 FROM cursors WHERE stream = ?", (stream,)).fetchone()
            is not None
        )

    def set_cursor(self, stream: str, value: str | None) -> None:
        self._execute(
            "INSERT INTO cursors (stream, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(stream) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (stream, value, _now()),
        )

    def cursors(self) -> dict[str, str | None]:
        rows = self._execute("SELECT stream, value FROM cursors ORDER BY stream").fetchall()
        return {row["stream"]: row["value"] for row in rows}

    # -- subjects -----------------------------------------------------------------------------

    def note_subject(
        self,
        automation: str,
        id: str,
        kind: str,
        name: str,
        version: str,
        status: str,
        reason: str,
        final: bool,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record the latest judgement of a dataset or model version. A final one never changes."""
        self._execute(
            "INSERT INTO subjects (automation, id, kind, name, version, status, reason, final, "
            "details, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(automation, id) DO UPDATE SET "
            "status = excluded.status, reason = excluded.reason, final = excluded.final, "
            "details = excluded.details, updated_at = excluded.updated_at "
            "WHERE subjects.final = 0",
            (
                automation,
                id,
                kind,
                name,
                version,
                status,
                reason,
                int(final),
                json.dumps(details or {}),
                _now(),
            ),
        )

    def subject(self, automation: str, id: str) -> Subject | None:
        row = self._execute(
            "SELECT * FROM subjects WHERE automation = ? AND id = ?", (automation, id)
        ).fetchone()
        return None if row is None else _subject(row)

    def subjects(self, id: str) -> list[Subject]:
        """Every automation's judgement of one dataset or model version."""
        rows = self._execute(
            "SELECT * FROM subjects WHERE id = ? ORDER BY automation", (id,)
        ).fetchall()
        return [_subject(row) for row in rows]

    def subjects_with_status(self, kind: str, status: str) -> list[Subject]:
        rows = self._execute(
            "SELECT * FROM subjects WHERE kind = ? AND status = ? ORDER BY updated_at",
            (kind, status),
        ).fetchall()
        return [_subject(row) for row in rows]

    # -- actions ------------------------------------------------------------------------------

    def claim(
        self,
        key: str,
        kind: ActionKind,
        subject_id: str,
        details: dict[str, Any],
        automation: str,
    ) -> bool:
        """Claim an action key. True only for the first claim of that key, ever."""
        now = _now()
        cursor = self._execute(
            "INSERT OR IGNORE INTO actions (key, automation, kind, subject_id, state, details, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                automation,
                kind.value,
                subject_id,
                ActionState.PENDING.value,
                json.dumps(details),
                now,
                now,
            ),
        )
        return cursor.rowcount == 1

    def action(self, key: str) -> Action | None:
        row = self._execute("SELECT * FROM actions WHERE key = ?", (key,)).fetchone()
        return None if row is None else _action(row)

    def actions_in(self, *states: ActionState, kind: ActionKind | None = None) -> list[Action]:
        marks = ",".join("?" for _ in states)
        sql = f"SELECT * FROM actions WHERE state IN ({marks})"
        params: tuple[Any, ...] = tuple(s.value for s in states)
        if kind is not None:
            sql += " AND kind = ?"
            params += (kind.value,)
        rows = self._execute(sql + " ORDER BY rowid", params).fetchall()
        return [_action(row) for row in rows]

    def recent_actions(self, state: ActionState, limit: int = 10) -> list[Action]:
        rows = self._execute(
            "SELECT * FROM actions WHERE state = ? ORDER BY updated_at DESC LIMIT ?",
            (state.value, limit),
        ).fetchall()
        return [_action(row) for row in rows]

    def actions_for_subject(self, subject_id: str) -> list[Action]:
        rows = self._execute(
            "SELECT * FROM actions WHERE subject_id = ? ORDER BY rowid", (subject_id,)
        ).fetchall()
        return [_action(row) for row in rows]

    def count_actions(self) -> dict[str, dict[str, int]]:
        """Actions by automation, then by state."""
        rows = self._execute(
            "SELECT automation, state, COUNT(*) AS n FROM actions GROUP BY automation, state"
        ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["automation"], {})[row["state"]] = int(row["n"])
        return counts

    def transition(self, key: str, new: ActionState, **fields: Any) -> Action:
        """Move an action to a new state, checking its life cycle; set any other columns given."""
        with self.transaction():
            current = self.action(key)
            if current is None:
                raise KeyError(f"no action {key!r} in the ledger")
            check_transition(current.state, new)
            if "details" in fields:
                fields["details"] = json.dumps({**current.details, **fields["details"]})
            columns = {"state": new.value, "updated_at": _now(), **fields}
            assignments = ", ".join(f"{name} = ?" for name in columns)
            self._execute(
                f"UPDATE actions SET {assignments} WHERE key = ?", (*columns.values(), key)
            )
            updated = self.action(key)
            assert updated is not None
            return updated

    def set_run_id(self, key: str, run_id: str) -> None:
        """Record the run of an action's current attempt without changing its state (a run
        that goes on elsewhere is then read by its id)."""
        self._execute(
            "UPDATE actions SET run_id = ?, updated_at = ? WHERE key = ?", (run_id, _now(), key)
        )

    def update_details(self, key: str, details: dict[str, Any]) -> None:
        """Merge facts into an action's details without changing its state."""
        with self.transaction():
            current = self.action(key)
            if current is None:
                raise KeyError(f"no action {key!r} in the ledger")
            merged = json.dumps({**current.details, **details})
            self._execute(
                "UPDATE actions SET details = ?, updated_at = ? WHERE key = ?",
                (merged, _now(), key),
            )


def _subject(row: sqlite3.Row) -> Subject:
    return Subject(
        automation=row["automation"],
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        version=row["version"],
        status=row["status"],
        reason=row["reason"],
        final=bool(row["final"]),
        details=json.loads(row["details"]),
        updated_at=row["updated_at"],
    )


def _action(row: sqlite3.Row) -> Action:
    return Action(
        key=row["key"],
        automation=row["automation"],
        updated_at=row["updated_at"],
        kind=ActionKind(row["kind"]),
        subject_id=row["subject_id"],
        state=ActionState(row["state"]),
        attempts=row["attempts"],
        not_before=row["not_before"],
        run_id=row["run_id"],
        started_at=row["started_at"],
        error=row["error"],
        details=json.loads(row["details"]),
    )


def epoch() -> float:
    """Wall-clock seconds, for backoff deadlines that must survive a restart."""
    return time.time()
