"""The store's outages as notifications: `store.unreachable` once the store has not answered
for AUTOPILOT_NOTIFY_OUTAGE_AFTER_SECONDS (since its last answer to this process; since the
first failure when it never answered), `store.recovered` when it answers again after one (never
without one).

The ledger is local, so the daemon records these while the store is down. The outage is kept
in the ledger's meta (its start, its last failure, whether it was notified), so a daemon
restarted in the middle of an outage counts from the outage's start, and sends the recovery of
an outage a previous process notified. An outage a previous process saw but did not notify yet
goes on only if its last failure is more recent than the outage setting; otherwise the daemon
was stopped for longer than that, the store may well have answered meanwhile, and a new outage
starts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from service.ledger import Ledger, epoch
from service.notify import notices
from service.notify.events import Notice
from service.notify.outbox import Outbox

META_KEY = "notify.store_outage"


class StoreOutage:
    def __init__(self, ledger: Ledger, outbox: Outbox, after_seconds: float, store_url: str):
        self.ledger = ledger
        self.outbox = outbox
        self.after_seconds = after_seconds
        self.store_url = store_url
        stored = ledger.get_meta(META_KEY)
        self._state: dict[str, Any] | None = json.loads(stored) if stored else None
        self._inherited = self._state is not None  # left by a previous process
        self._answered_at: float | None = None  # when the store last answered this process

    def failed(self, error: str) -> None:
        """The store did not answer a tick or a start-up attempt."""
        now = epoch()
        state = self._state
        if state is None or (
            self._inherited
            and not state["notified"]
            and now - state["last_failed"] > self.after_seconds
        ):
            # It has not answered since its last answer (a failed call can take ZenML's REST
            # client 30 s of retries, so its first failure comes late).
            state = {"since": self._answered_at or now, "notified": False}
        self._inherited = False
        state |= {"last_failed": now, "error": error}
        with self.ledger.transaction():
            if not state["notified"] and now - state["since"] >= self.after_seconds:
                state["notified"] = self.outbox.add(self._notice("store.unreachable", state, now))
            self.ledger.set_meta(META_KEY, json.dumps(state))
        self._state = state

    def answered(self) -> None:
        """The store answered: the outage, if any, is over."""
        self._answered_at = epoch()
        state = self._state
        if state is None:
            return
        with self.ledger.transaction():
            if state["notified"]:
                self.outbox.add(self._notice("store.recovered", state, epoch()))
            self.ledger.set_meta(META_KEY, "")
        self._state = None

    def _notice(self, event: str, state: dict[str, Any], now: float) -> Notice:
        since = datetime.fromtimestamp(state["since"], UTC)
        values = {
            "store_url": self.store_url,
            "since": since.isoformat(timespec="seconds"),
            "down_seconds": round(now - state["since"], 1),
            "error": state.get("error") if event == "store.unreachable" else None,
        }
        return notices.store_event(event, since, values)
