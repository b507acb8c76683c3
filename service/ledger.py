"""The durable ledger: cursors, what was seen, and one row per action key.

SQLite in WAL mode with synchronous=FULL: a committed claim survives a crash or power loss.
Writes that belong together (a batch of decisions and the cursor behind them) share one
transaction, so a crash replays the batch instead of losing or doubling it; every write is
idempotent by key.

Two kinds of schema change. One that changes existing rows bumps `SCHEMA_VERSION` and upgrades
in place (`_migrate`). A table no existing row depends on is *additive*: it is in
`ADDITIVE_SCHEMA`, created `IF NOT EXISTS` on every open, whatever the version, so a ledger of
any version gets it without a bump, and an older daemon opening the ledger ignores it.

Errors and details are stored redacted (`service.redact`), as the log shows them: a run's error
can quote a URL with its password or a registered secret, and `status` and `explain` print them.
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
from service.core.production_history import stint_of
from service.files import create_private_file, private_dir
from service.redact import redact, redact_all

# 1: one automation (no automation columns); 2: automations; 3: production changes
SCHEMA_VERSION = 3
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
-- Read by the status page and /metrics, never by the tick (service/observe/): an automation's
-- latest actions of a kind, and when each kind last succeeded.
CREATE INDEX IF NOT EXISTS actions_by_automation ON actions (automation, kind);
CREATE INDEX IF NOT EXISTS actions_last_change ON actions (automation, kind, state, updated_at);
CREATE TABLE IF NOT EXISTS production_changes (  -- every change of a model's production version
    seq INTEGER PRIMARY KEY,          -- in the order the daemon saw them
    automation TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version_id TEXT,            -- NULL: the model has no production version any more
    model_version_number INTEGER,
    previous_model_version_id TEXT,   -- production before this change (NULL: none, or unknown)
    changed_by TEXT NOT NULL,         -- autopilot | external | observed_at_start
    changed_at TEXT NOT NULL,         -- when the daemon recorded it
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS production_changes_by_automation
    ON production_changes (automation, seq);
"""

# Additive tables (see the module docstring), created on every open. The notification outbox
# (service/notify/outbox.py): one row per event, one per destination it goes to. The versions
# staged for approval (service/stages/approval.py).
ADDITIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,              -- the event's stable id (service/notify/events.py)
    sequence INTEGER NOT NULL UNIQUE, -- the order it was recorded in
    event TEXT NOT NULL,
    automation TEXT,
    order_key TEXT NOT NULL,          -- its model ('' for the store): delivered in order per key
    created REAL NOT NULL,            -- epoch seconds; its maximum age counts from here
    body TEXT NOT NULL                -- the exact JSON object sent
);
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id TEXT NOT NULL,
    destination TEXT NOT NULL,        -- webhook:<host>:<hash of the URL> | alerter
    state TEXT NOT NULL,              -- pending | delivered | failed | dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, -- epoch seconds: retry backoff
    status INTEGER,                   -- the receiver's last HTTP status
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (notification_id, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (destination, state);
CREATE TABLE IF NOT EXISTS approvals (  -- versions staged for a person's approval (core/approval)
    automation TEXT NOT NULL,
    model_version_id TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version_number INTEGER,
    state TEXT NOT NULL,              -- waiting | approved | rejected | expired | superseded...
    staged_at REAL NOT NULL,          -- epoch seconds (daemon's clock): the timeout's start
    resolved_at TEXT,
    by TEXT,                          -- who decided: a person's name; NULL: unknown, or the daemon
    details TEXT NOT NULL DEFAULT '{}', -- the decision's values, the note, the version after it
    PRIMARY KEY (automation, model_version_id)
);
CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, automation, staged_at);
-- The training gates' queue and the schedules' handled fires (service/stages/gate_ledger.py).
CREATE TABLE IF NOT EXISTS training_queue ( -- selected versions a gated automation waits with
    automation TEXT NOT NULL,
    dataset_version_id TEXT NOT NULL,
    created TEXT NOT NULL,            -- the version's `created` in the store (naive UTC, ISO)
    details TEXT NOT NULL,            -- artifact, version, producer_run_id: its training's
    queued_at TEXT NOT NULL,
    PRIMARY KEY (automation, dataset_version_id)
);
CREATE TABLE IF NOT EXISTS schedule_fires ( -- one row per fire time acted on, ever
    automation TEXT NOT NULL,
    schedule TEXT NOT NULL,           -- training | inference
    fire TEXT NOT NULL,               -- the fire time (UTC, ISO)
    outcome TEXT NOT NULL,            -- fired | skipped | missed
    reason TEXT,                      -- why skipped (overlap, nothing_new, ...)
    key TEXT,                         -- the action it claimed
    missed INTEGER NOT NULL DEFAULT 0, -- earlier fires passed over (down, or a tick behind)
    handled_at TEXT NOT NULL,
    PRIMARY KEY (automation, schedule, fire)
);
"""

# Version 1 -> 2, in one transaction: every row of a single-automation ledger belongs to the
# `default` automation; action keys are unchanged (runs in the store carry them as tags).
UPGRADE_FROM_1 = """
ALTER TABLE subjects RENAME TO subjects_v1;
DROP INDEX IF EXISTS subjects_waiting;
ALTER TABLE actions ADD COLUMN automation TEXT NOT NULL DEFAULT 'default';
{schema}
INSERT INTO subjects (automation, id, kind, name, version, status, reason, final, details,
    updated_at)
    SELECT 'default', id, kind, name, version, status, reason, final, details, updated_at
    FROM subjects_v1;
DROP TABLE subjects_v1;
UPDATE cursors SET stream = 'default/' || stream;
"""
# Version 2 -> 3 adds tables and indexes only: `SCHEMA` creates what is missing. Production
# changes before the upgrade were not recorded; the production cursor still says which is current.


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
    created_at: str = ""  # when the key was claimed


@dataclass(frozen=True)
class AutomationRows:
    """What the ledger holds for one automation."""

    streams: int = 0
    subjects: int = 0  # dataset and model versions it judged
    actions: int = 0
    open_actions: int = 0  # pending, running or waiting for a retry

    @property
    def empty(self) -> bool:
        return not (self.streams or self.subjects or self.actions)


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


@dataclass(frozen=True)
class Approval:
    """A version staged for a person's approval, and how its wait ended."""

    automation: str
    model_version_id: str
    model_name: str
    model_version_number: int | None
    state: str
    staged_at: float
    resolved_at: str | None
    by: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class ProductionChange:
    """One change of a model's production version, as the daemon saw it."""

    seq: int
    automation: str
    model_name: str
    model_version_id: str | None
    model_version_number: int | None
    previous_model_version_id: str | None
    changed_by: str
    changed_at: str
    details: dict[str, Any]


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
        self._db.executescript(ADDITIVE_SCHEMA)

    @classmethod
    def reader(cls, path: Path) -> Ledger:
        """A read-only view on its own connection, for readers beside the daemon (the status
        page, `/metrics`): in WAL mode they neither wait for the tick's writes nor hold them
        up, and they never take the writer's lock. The ledger must exist with this schema."""
        reader = cls.__new__(cls)
        reader.path = path
        reader._db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=5
        )
        reader._db.row_factory = sqlite3.Row
        reader._lock = threading.RLock()
        reader._depth = 0
        reader.upgraded_from = None
        version = int(reader._db.execute("PRAGMA user_version").fetchone()[0])
        if version != SCHEMA_VERSION:
            reader.close()
            raise RuntimeError(
                f"ledger {path} has schema version {version}, this reader reads {SCHEMA_VERSION}"
            )
        return reader

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
        script = UPGRADE_FROM_1.format(schema=SCHEMA) if version == 1 else SCHEMA
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

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One statement, in the current transaction if any: for the modules that own an
        additive table (service/notify/outbox.py, service/stages/gate_ledger.py)."""
        return self._execute(sql, params)

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

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        rows = self._execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        ).fetchall()
        return {str(row["key"]): str(row["value"]) for row in rows}

    def _meta_of_automation(self, automation: str) -> dict[str, str]:
        suffix = f"/{automation}"
        rows = self._execute(
            "SELECT key, value FROM meta WHERE substr(key, -?) = ?", (len(suffix), suffix)
        ).fetchall()
        return {str(row["key"]): str(row["value"]) for row in rows}

    def delete_meta(self, key: str) -> None:
        self._execute("DELETE FROM meta WHERE key = ?", (key,))

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
                _stored(details or {}),
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

    def subjects_named(self, kind: str, name: str, version: str) -> list[Subject]:
        """The versions of that name and version the daemon judged (`explain MODEL VERSION`)."""
        rows = self._execute(
            "SELECT * FROM subjects WHERE kind = ? AND name = ? AND version = ? "
            "ORDER BY automation",
            (kind, name, version),
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
        """Claim an action key. True only for the first claim of that key, ever.

        A key an operator skipped before the daemon saw it belongs to no automation (''): the
        daemon's claim adopts it, with the facts the daemon knows, so that once replayed it is
        dispatched (or, for a promotion, carried out) like any other."""
        with self.transaction():
            now = _now()
            cursor = self._execute(
                "INSERT OR IGNORE INTO actions (key, automation, kind, subject_id, state, "
                "details, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    automation,
                    kind.value,
                    subject_id,
                    ActionState.PENDING.value,
                    _stored(details),
                    now,
                    now,
                ),
            )
            if cursor.rowcount == 1:
                return True
            current = self.action(key)
            if current is not None and automation and not current.automation:
                self._execute(
                    "UPDATE actions SET automation = ?, details = ? WHERE key = ?",
                    (automation, _stored({**details, **current.details}), key),
                )
            return False

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

    def actions_scoring(self, dataset_version_id: str) -> list[Action]:
        """The inferences that score one scoring dataset version (their details name it)."""
        rows = self._execute(
            "SELECT * FROM actions WHERE kind = ? AND "
            "json_extract(details, '$.scoring_dataset_version_id') = ? ORDER BY rowid",
            (ActionKind.INFER.value, dataset_version_id),
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

    # -- automations --------------------------------------------------------------------------

    def rows_by_automation(self) -> dict[str, AutomationRows]:
        """Every automation the ledger holds anything of (streams, judgements, actions)."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._execute(
            "SELECT substr(stream, 1, instr(stream, '/') - 1) AS automation, COUNT(*) AS n "
            "FROM cursors GROUP BY 1"
        ).fetchall():
            counts.setdefault(row["automation"], {})["streams"] = int(row["n"])
        for row in self._execute(
            "SELECT automation, COUNT(*) AS n FROM subjects GROUP BY automation"
        ).fetchall():
            counts.setdefault(row["automation"], {})["subjects"] = int(row["n"])
        open_states = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)
        for row in self._execute(
            "SELECT automation, COUNT(*) AS n, SUM(state IN (?, ?, ?)) AS open FROM actions "
            "GROUP BY automation",
            tuple(state.value for state in open_states),
        ).fetchall():
            entry = counts.setdefault(row["automation"], {})
            entry["actions"], entry["open_actions"] = int(row["n"]), int(row["open"])
        return {name: AutomationRows(**entry) for name, entry in counts.items()}

    def rename_automation(self, old: str, new: str) -> None:
        """Carry everything of automation `old` over to `new`, in one transaction: its streams
        (`<old>/...` become `<new>/...`), its judgements and its actions. Action keys stay as
        they are: runs in the store carry them as tags. Streams and judgements `new` already
        has (a start under the new name before this) are replaced; the caller makes sure
        `new` has no action."""
        old_prefix, new_prefix = f"{old}/", f"{new}/"
        with self.transaction():
            self._execute(
                "DELETE FROM cursors WHERE substr(stream, 1, ?) = ?",
                (len(new_prefix), new_prefix),
            )
            self._execute("DELETE FROM subjects WHERE automation = ?", (new,))
            self._execute(
                "UPDATE cursors SET stream = ? || substr(stream, ?) WHERE substr(stream, 1, ?) = ?",
                (new_prefix, len(old_prefix) + 1, len(old_prefix), old_prefix),
            )
            self._execute("UPDATE subjects SET automation = ? WHERE automation = ?", (new, old))
            self._execute("UPDATE actions SET automation = ? WHERE automation = ?", (new, old))
            # Its history (production changes, notifications) and what it keeps in `meta` under
            # `<what>/<automation>` keys (the required tags it judged with).
            for table in ("production_changes", "notifications", "approvals"):
                self._execute(f"UPDATE {table} SET automation = ? WHERE automation = ?", (new, old))
            for key, value in self._meta_of_automation(old).items():
                renamed = f"{key[: -len(old)]}{new}"
                self._execute("DELETE FROM meta WHERE key IN (?, ?)", (key, renamed))
                self.set_meta(renamed, value)

    def transition(self, key: str, new: ActionState, **fields: Any) -> Action:
        """Move an action to a new state, checking its life cycle; set any other columns given."""
        with self.transaction():
            current = self.action(key)
            if current is None:
                raise KeyError(f"no action {key!r} in the ledger")
            check_transition(current.state, new)
            if "details" in fields:
                fields["details"] = _stored({**current.details, **fields["details"]})
            if isinstance(fields.get("error"), str):
                fields["error"] = redact(fields["error"])
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
            merged = _stored({**current.details, **details})
            self._execute(
                "UPDATE actions SET details = ?, updated_at = ? WHERE key = ?",
                (merged, _now(), key),
            )

    # -- production changes -------------------------------------------------------------------

    def record_production_change(
        self,
        automation: str,
        model_name: str,
        version_id: str | None,
        version_number: int | None,
        previous_id: str | None,
        changed_by: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record that a model's production version changed (written in the transaction that
        moves the production cursor, so each change is recorded exactly once)."""
        self._execute(
            "INSERT INTO production_changes (automation, model_name, model_version_id, "
            "model_version_number, previous_model_version_id, changed_by, changed_at, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                automation,
                model_name,
                version_id,
                version_number,
                previous_id,
                changed_by,
                _now(),
                _stored(details or {}),  # a person's note or reason, masked as errors are
            ),
        )

    def production_changes(self, automation: str, limit: int = 10) -> list[ProductionChange]:
        """An automation's latest production changes, newest first."""
        rows = self._execute(
            "SELECT * FROM production_changes WHERE automation = ? ORDER BY seq DESC LIMIT ?",
            (automation, limit),
        ).fetchall()
        return [_production_change(row) for row in rows]

    def production_changes_of(self, version_id: str) -> list[ProductionChange]:
        """Every production change a model version took part in (made production, or replaced),
        oldest first (for `explain`: the table holds one row per change, not per version)."""
        rows = self._execute(
            "SELECT * FROM production_changes WHERE model_version_id = ? "
            "OR previous_model_version_id = ? ORDER BY seq",
            (version_id, version_id),
        ).fetchall()
        return [_production_change(row) for row in rows]

    # -- approvals ----------------------------------------------------------------------------

    def stage_for_approval(
        self,
        automation: str,
        version_id: str,
        model_name: str,
        number: int | None,
        staged_at: float,
        details: dict[str, Any],
    ) -> bool:
        """Record a version as waiting for approval; False if it was recorded before."""
        cursor = self._execute(
            "INSERT OR IGNORE INTO approvals (automation, model_version_id, model_name, "
            "model_version_number, state, staged_at, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (automation, version_id, model_name, number, "waiting", staged_at, _stored(details)),
        )
        return cursor.rowcount == 1

    def approval(self, automation: str, version_id: str) -> Approval | None:
        row = self._execute(
            "SELECT * FROM approvals WHERE automation = ? AND model_version_id = ?",
            (automation, version_id),
        ).fetchone()
        return None if row is None else _approval(row)

    def approvals_of(self, version_id: str) -> list[Approval]:
        rows = self._execute(
            "SELECT * FROM approvals WHERE model_version_id = ? ORDER BY automation", (version_id,)
        ).fetchall()
        return [_approval(row) for row in rows]

    def approvals_in(
        self, state: str, automation: str | None = None, limit: int = 1000
    ) -> list[Approval]:
        """Approvals in one state (of one automation), the longest staged first."""
        sql = "SELECT * FROM approvals INDEXED BY approvals_by_state WHERE state = ?"
        params: tuple[Any, ...] = (state,)
        if automation is not None:
            sql += " AND automation = ?"
            params += (automation,)
        rows = self._execute(sql + " ORDER BY staged_at LIMIT ?", (*params, limit)).fetchall()
        return [_approval(row) for row in rows]

    def resolve_approval(
        self,
        automation: str,
        version_id: str,
        state: str,
        by: str | None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """End a version's wait; False if it had ended already (each wait ends once)."""
        with self.transaction():
            current = self.approval(automation, version_id)
            if current is None or current.state != "waiting":
                return False
            self._execute(
                "UPDATE approvals SET state = ?, by = ?, resolved_at = ?, details = ? "
                "WHERE automation = ? AND model_version_id = ?",
                (
                    state,
                    by,
                    _now(),
                    _stored({**current.details, **(details or {})}),
                    automation,
                    version_id,
                ),
            )
            return True

    # -- reads for the status page and `/metrics` --------------------------------------------
    # Bounded whatever the ledger's size: each names the index that answers it, since SQLite's
    # planner, without statistics, may pick another and read every action of an automation.

    def latest_actions(self, automation: str, kind: ActionKind, limit: int) -> list[Action]:
        """An automation's latest actions of one kind, newest claim first."""
        rows = self._execute(
            "SELECT * FROM actions INDEXED BY actions_by_automation "
            "WHERE automation = ? AND kind = ? ORDER BY rowid DESC LIMIT ?",
            (automation, kind.value, limit),
        ).fetchall()
        return [_action(row) for row in rows]

    def actions_by_key(self, keys: list[str]) -> dict[str, Action]:
        found: dict[str, Action] = {}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            for row in self._execute(
                f"SELECT * FROM actions WHERE key IN ({marks})", tuple(chunk)
            ).fetchall():
                found[row["key"]] = _action(row)
        return found

    def stint_actions(self, kind: ActionKind, subject_id: str) -> list[Action]:
        """A model version's actions of one kind in each of its stints in production
        (`infer:<id>`, `infer:<id>@2`, ...; `core/production_history`), in claim order: a
        range of the primary key, so read through its index."""
        base = f"{kind.value}:{subject_id}"
        rows = self._execute(
            "SELECT * FROM actions WHERE key = ? OR (key >= ? AND key < ?) ORDER BY rowid",
            (base, f"{base}@", f"{base}A"),  # `A` follows `@`: every `<base>@...`
        ).fetchall()
        # Not another qualifier's: an inference schedule's fire (`infer:<id>@fire:<time>`).
        return [a for a in map(_action, rows) if stint_of(a.key) is not None]

    def open_actions(self, automation: str, limit: int) -> list[Action]:
        """An automation's pending, running and retrying actions, in the order they were
        claimed (the queue's order)."""
        states = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)
        rows = self._execute(
            "SELECT * FROM actions INDEXED BY actions_state "
            "WHERE state IN (?, ?, ?) AND automation = ? ORDER BY rowid LIMIT ?",
            (*(s.value for s in states), automation, limit),
        ).fetchall()
        return [_action(row) for row in rows]

    def latest_in(self, state: ActionState, automation: str, limit: int) -> list[Action]:
        """An automation's actions in one state, latest changed first."""
        rows = self._execute(
            "SELECT * FROM actions INDEXED BY actions_state "
            "WHERE state = ? AND automation = ? ORDER BY updated_at DESC LIMIT ?",
            (state.value, automation, limit),
        ).fetchall()
        return [_action(row) for row in rows]

    def subjects_by_id(self, automation: str, ids: list[str]) -> dict[str, Subject]:
        marks = ",".join("?" for _ in ids)
        rows = self._execute(
            f"SELECT * FROM subjects WHERE automation = ? AND id IN ({marks})",
            (automation, *ids),
        ).fetchall()
        return {row["id"]: _subject(row) for row in rows}

    def count_by_state(self, *states: ActionState) -> dict[tuple[str, str, str], int]:
        """Actions in these states by (automation, kind, state)."""
        marks = ",".join("?" for _ in states)
        rows = self._execute(
            f"SELECT automation, kind, state, COUNT(*) AS n FROM actions INDEXED BY "
            f"actions_state WHERE state IN ({marks}) GROUP BY automation, kind, state",
            tuple(s.value for s in states),
        ).fetchall()
        return {(row["automation"], row["kind"], row["state"]): int(row["n"]) for row in rows}

    def last_succeeded(self, automation: str, kind: ActionKind) -> str | None:
        """When the latest action of this automation and kind succeeded (ISO time)."""
        row = self._execute(
            "SELECT MAX(updated_at) AS at FROM actions INDEXED BY actions_last_change "
            "WHERE automation = ? AND kind = ? AND state = ?",
            (automation, kind.value, ActionState.SUCCEEDED.value),
        ).fetchone()
        return None if row is None or row["at"] is None else str(row["at"])

    def has_table(self, name: str) -> bool:
        """Whether the ledger has this table (a feature's table, written by a newer daemon)."""
        row = self._execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None


def _stored(details: dict[str, Any]) -> str:
    """Details as a ledger column: JSON, secrets masked."""
    return json.dumps(redact_all(details))


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


def _approval(row: sqlite3.Row) -> Approval:
    return Approval(
        automation=row["automation"],
        model_version_id=row["model_version_id"],
        model_name=row["model_name"],
        model_version_number=row["model_version_number"],
        state=row["state"],
        staged_at=row["staged_at"],
        resolved_at=row["resolved_at"],
        by=row["by"],
        details=json.loads(row["details"]),
    )


def _production_change(row: sqlite3.Row) -> ProductionChange:
    return ProductionChange(
        seq=row["seq"],
        automation=row["automation"],
        model_name=row["model_name"],
        model_version_id=row["model_version_id"],
        model_version_number=row["model_version_number"],
        previous_model_version_id=row["previous_model_version_id"],
        changed_by=row["changed_by"],
        changed_at=row["changed_at"],
        details=json.loads(row["details"]),
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
        created_at=row["created_at"],
    )


def epoch() -> float:
    """Wall-clock seconds, for backoff deadlines that must survive a restart."""
    return time.time()
