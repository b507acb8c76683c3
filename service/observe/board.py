"""The status board: what the health server shows beside its probes (the status page, its JSON
twin, and the ledger's gauges on `/metrics`), built per request on the server's thread.

It reads the ledger through a read-only connection of its own, opened per build (in WAL mode
readers and the tick's writes never wait for each other), and the daemon's health snapshot
(the attributes `/healthz` reads); it never calls the store and never takes the tick's lock.
A build serves every request of the next second.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest

from service.core.automation import Automation
from service.engine import LAST_POLL_KEY
from service.ledger import Ledger
from service.observe import page, view
from service.observe.gauges import LedgerGauges

FRESH_SECONDS = 1.0


class HealthSource(Protocol):
    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


class StatusBoard:
    def __init__(
        self,
        automations: Sequence[Automation],
        ledger_path: Path,
        health: HealthSource,
        store: Mapping[str, str] | None = None,
    ) -> None:
        self.automations = list(automations)
        self.ledger_path = ledger_path
        self.health = health
        self.store = dict(store or {})  # store_type, store_url (redacted)
        # ZenML dashboard URL templates ("run", "model_version"), set once the store answered.
        self.links: dict[str, str] = {}
        self._lock = threading.Lock()  # the board's own: readers wait for one build
        self._built: tuple[float, dict[str, Any] | None, str | None] = (0.0, None, None)
        self.registry = CollectorRegistry()
        self.registry.register(LedgerGauges(self._reader, [a.name for a in self.automations]))

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._fresh()[0]

    def page(self) -> str:
        with self._lock:
            status, html = self._fresh()
            if html is None:
                html = page.render(status)
                self._built = (self._built[0], status, html)
            return html

    def _fresh(self) -> tuple[dict[str, Any], str | None]:
        """The status built less than `FRESH_SECONDS` ago, or a new one: however many people
        (or scripts) read the page, it is built at most once a second, one reader at a time,
        so readers cost the tick next to nothing (BENCHMARKS.md, section 8)."""
        built_at, status, html = self._built
        if status is not None and time.monotonic() - built_at < FRESH_SECONDS:
            return status, html
        status = self._build()
        self._built = (time.monotonic(), status, None)
        return status, None

    def _build(self) -> dict[str, Any]:
        alive, health = self.health.health()
        ready, readiness = self.health.readiness()
        with self._reader() as ledger:
            last_poll = ledger.get_meta(LAST_POLL_KEY) if ledger is not None else None
            daemon = view.daemon_health(alive, health, ready, readiness, last_poll, self.store)
            return view.build(ledger, self.automations, daemon, self.links)

    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    @contextmanager
    def _reader(self) -> Iterator[Ledger | None]:
        """The ledger, read-only; None until the daemon has created (or upgraded) it."""
        if not self.ledger_path.exists():
            yield None
            return
        try:
            ledger = Ledger.reader(self.ledger_path)
        except (sqlite3.Error, RuntimeError):  # not created, or not upgraded yet
            yield None
            return
        try:
            yield ledger
        finally:
            ledger.close()
