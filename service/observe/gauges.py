"""Gauges read from the ledger when `/metrics` is scraped, on the HTTP thread: the queue's depth
and when each kind of action last succeeded. Computed from the ledger rather than kept by the
tick, so they cost the tick nothing and are right from the first scrape after a restart."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.core.actions import ActionKind, ActionState
from service.errors import describe_error
from service.ledger import Ledger
from service.logs import get_logger

OPEN_STATES = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)
KINDS = tuple(kind.value for kind in ActionKind)


class LedgerGauges(Collector):
    """`autopilot_queue_depth` and `autopilot_last_success_timestamp_seconds`."""

    def __init__(
        self,
        open_ledger: Callable[[], AbstractContextManager[Ledger | None]],
        automations: Sequence[str],
    ) -> None:
        self._open_ledger = open_ledger
        self._automations = automations
        self._failing = False

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        depth, last_success = self._families()
        try:
            with self._open_ledger() as ledger:
                if ledger is None:  # not created yet: nothing to say, rather than zeros
                    yield from (depth, last_success)
                    return
                counts = ledger.count_by_state(*OPEN_STATES)
                succeeded = self._last_successes(ledger)
        except sqlite3.Error as error:  # /metrics goes on without these (and says why, once)
            if not self._failing:
                get_logger().warning("metrics.ledger_unreadable", error=describe_error(error))
            self._failing = True
            yield from (depth, last_success)
            return
        self._failing = False
        # Every configured automation, kind and state, at 0 when empty: a rule can tell an
        # empty queue from one it never saw.
        automations = sorted({*self._automations, *(a for a, _, _ in counts)})
        for automation in automations:
            for kind in KINDS:
                for state in OPEN_STATES:
                    value = counts.get((automation, kind, state.value), 0)
                    depth.add_metric([automation, kind, state.value], value)
        for (automation, kind), at in sorted(succeeded.items()):
            try:
                last_success.add_metric([automation, kind], datetime.fromisoformat(at).timestamp())
            except ValueError:  # a time the ledger did not write itself
                continue
        yield depth
        yield last_success

    def _last_successes(self, ledger: Ledger) -> dict[tuple[str, str], str]:
        found = {}
        for automation in self._automations:
            for kind in ActionKind:
                at = ledger.last_succeeded(automation, kind)
                if at is not None:
                    found[automation, kind.value] = at
        return found

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "autopilot_queue_depth",
                "Actions waiting or running, by automation, kind (train, infer, promote) and "
                "state (pending: waiting for a run slot; running; retry_wait: waiting out a "
                "retry's backoff), read from the ledger at scrape time.",
                labels=["automation", "kind", "state"],
            ),
            GaugeMetricFamily(
                "autopilot_last_success_timestamp_seconds",
                "Unix time the latest action of each configured automation and kind (train, "
                "infer, promote) succeeded, read from the ledger at scrape time.",
                labels=["automation", "kind"],
            ),
        )
