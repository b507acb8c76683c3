"""The shell around the engine: the APScheduler tick, signals, and graceful shutdown."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing.connection
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler

from service import metrics
from service.errors import describe_error
from service.logs import get_logger
from service.store import is_store_unavailable

if TYPE_CHECKING:
    from service.engine import Autopilot
    from service.notify.outage import StoreOutage

T = TypeVar("T")
MAX_STORE_BACKOFF_SECONDS = 30.0
# How long a tick, or a start-up attempt to reach the store, may take before the loop counts
# as stuck: far above any tick measured (BENCHMARKS.md), below a probe's patience.
LIVENESS_MARGIN_SECONDS = 120.0


class Wakeup:
    """A flag the main loop can wait on together with the workers' report pipes.

    Set from the scheduler's thread or a signal handler; a socket pair rather than a
    `threading.Event` because `multiprocessing.connection.wait` can only wait on file
    descriptors.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def set(self) -> None:
        with contextlib.suppress(OSError):  # a full buffer means a wake-up is pending anyway
            self._writer.send(b"\0")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Daemon:
    """Runs `Autopilot.tick` every poll interval, and as soon as a worker reports, until
    SIGTERM or SIGINT.

    APScheduler keeps the schedule (coalescing missed ticks); the tick itself runs on the main
    thread, so a signal never lands inside scheduler internals and every worker is spawned by
    a thread that lives as long as the daemon (their parent-death signal depends on it).
    Waking on a worker's report means a finished training run is judged, and its inference
    launched, without waiting for the next poll.
    """

    def __init__(
        self, poll_interval: float, grace_seconds: float, store_url: str | None = None
    ) -> None:
        self._engine: Autopilot | None = None
        self.poll_interval = poll_interval
        self.grace_seconds = grace_seconds
        self.log = get_logger()
        self.consecutive_failures = 0
        self.last_successful_poll: float | None = None  # monotonic
        self._scheduler = BackgroundScheduler(daemon=True)
        self._tick_due = Wakeup()
        self._stopping = threading.Event()
        self._started = time.monotonic()
        # Liveness: when the loop last began a tick or an attempt to reach the store. The
        # schedule keeps it fresh while the loop waits out an outage, so a probe restarts a
        # stuck daemon, never one that is correctly waiting.
        self.last_loop_activity = self._started
        self.liveness_limit = (
            self.poll_interval + MAX_STORE_BACKOFF_SECONDS + LIVENESS_MARGIN_SECONDS
        )
        self._loop_started = False
        self._retry_at = 0.0
        self.store_error: str | None = "no poll yet"
        self.store_url = store_url  # redacted: which store a `store.unavailable` waits for
        self.outage: StoreOutage | None = None  # notifies a long outage (service/notify/)

    @property
    def engine(self) -> Autopilot:
        if self._engine is None:
            raise RuntimeError("the daemon has no engine yet")
        return self._engine

    @engine.setter
    def engine(self, engine: Autopilot) -> None:
        self._engine = engine

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def until_store_answers(self, operation: Callable[[], T], what: str) -> T | None:
        """Run `operation` until the store answers; None if asked to stop meanwhile.

        An unreachable store is waited for with capped exponential backoff and logged once
        (`store.unavailable`, then `store.available`). Bad credentials are not waited for: the
        AuthorizationException propagates, since no amount of waiting fixes them.
        """
        from zenml.exceptions import AuthorizationException

        delay, failures = 1.0, 0
        while not self._stopping.is_set():
            self._loop_active()
            try:
                result = operation()
            except AuthorizationException:
                raise
            except Exception as error:
                metrics.STORE_ERRORS.inc()
                metrics.STORE_UP.set(0)
                failures += 1
                self.store_error = describe_error(error)
                self._outage(error)
                log = self.log.warning if failures == 1 else self.log.debug
                log(
                    "store.unavailable",
                    during=what,
                    store_url=self.store_url,
                    error=self.store_error,
                    retry_in_seconds=delay,
                    attempt=failures,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, MAX_STORE_BACKOFF_SECONDS)
                continue
            if failures:
                self.log.info("store.available", during=what, after_attempts=failures + 1)
            self._outage(None)
            metrics.STORE_UP.set(1)
            return result
        return None

    def _loop_active(self) -> None:
        self.last_loop_activity = time.monotonic()
        metrics.LAST_TICK.set_to_current_time()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Alive (liveness): the loop began a tick, or an attempt to reach the store at
        start-up, within `liveness_limit` seconds, and once the loop runs so does its
        scheduler. A store outage does not make the daemon unhealthy: it is waiting, as it
        should (`readiness` says the store is away)."""
        now = time.monotonic()
        activity_age = now - self.last_loop_activity
        scheduler_ok = self._scheduler.running or not self._loop_started
        details: dict[str, object] = {
            "scheduler_running": self._scheduler.running,
            "seconds_since_loop_activity": round(activity_age, 3),
            "liveness_limit_seconds": self.liveness_limit,
            "seconds_since_last_successful_poll": round(
                now - (self.last_successful_poll or self._started), 3
            ),
            "consecutive_failures": self.consecutive_failures,
        }
        return scheduler_ok and activity_age <= self.liveness_limit, details

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready (readiness) while the store answered the last poll or start-up attempt."""
        return self.store_error is None, {"store_error": self.store_error}

    def safe_tick(self, observe: bool = True) -> list[str]:
        """One tick (`observe`: a poll, else settling a worker's report; see `Autopilot.tick`).
        A failure is logged once per outage, then retried with backoff; the daemon goes on (a
        store outage, or bad data the core did not foresee)."""
        self._loop_active()
        if self._backing_off():
            return []
        try:
            report = self.engine.tick(observe)
        except Exception as error:
            metrics.STORE_ERRORS.inc()
            self._tick_failed(error)
            return []
        finally:
            # ZenML's queries leave reference cycles behind (SQLAlchemy's loader adapters).
            # Collected here, young, they cost ~1 ms; left to age into the oldest generation,
            # which Python rarely collects, they lift the resident set by ~7 % for good.
            gc.collect(1)
            metrics.TEMPLATE_READY.set(self.engine.executor.template_ready())
        metrics.POLL_DURATION.observe(report.duration_seconds)
        self._outage(None)
        if self.consecutive_failures:
            self.log.info(
                "store.available", during="poll", after_failures=self.consecutive_failures
            )
        self.consecutive_failures = 0
        self._retry_at = 0.0
        self.store_error = None
        metrics.STORE_UP.set(1)
        self.last_successful_poll = time.monotonic()
        self.log.debug(
            "tick.completed",
            duration_seconds=round(report.duration_seconds, 4),
            observed=observe,
            stage_seconds=report.stage_seconds,
            launched=report.launched,
        )
        return report.launched

    def _tick_failed(self, error: Exception) -> None:
        self.consecutive_failures += 1
        self.store_error = describe_error(error)
        metrics.STORE_UP.set(0)
        backoff = min(
            self.poll_interval * 2 ** (self.consecutive_failures - 1), MAX_STORE_BACKOFF_SECONDS
        )
        self._retry_at = time.monotonic() + backoff
        event = "store.unavailable" if is_store_unavailable(error) else "tick.failed"
        self._outage(error)
        fields = {
            "during": "poll",
            "store_url": self.store_url,
            "error": self.store_error,
            "consecutive_failures": self.consecutive_failures,
            "retry_in_seconds": round(backoff, 3),
        }
        if self.consecutive_failures == 1:
            self.log.error(event, **fields)
        else:
            self.log.debug(event, **fields)

    def _outage(self, error: Exception | None) -> None:
        """Tell the outage watch whether the store answered (`error` None) or did not; an
        error that is not the store's absence changes nothing. It never stops the loop."""
        if self.outage is None or (error is not None and not is_store_unavailable(error)):
            return
        try:
            if error is None:
                self.outage.answered()
            else:
                self.outage.failed(describe_error(error))
        except Exception as problem:
            self.log.error("notify.outage_not_recorded", error=describe_error(problem))

    def run_forever(self) -> None:
        self._scheduler.add_job(
            self._tick_due.set,
            "interval",
            seconds=self.poll_interval,
            id="tick",
            coalesce=True,
            misfire_grace_time=None,
        )
        for job_id, trigger in self.engine.fires.triggers():
            # A schedule's fire (issue 20) wakes the loop for a tick at once, which decides
            # and records it: the tick keeps its single thread.
            self._scheduler.add_job(
                self._tick_due.set, trigger, id=job_id, coalesce=True, misfire_grace_time=None
            )
        self._scheduler.start()
        self._loop_started = True
        self.log.info("daemon.started", poll_interval_seconds=self.poll_interval)
        self._tick_due.set()  # the first tick at once
        while not self._stopping.is_set():
            work = self._wait_for_work(timeout=1.0)
            if work is not None and not self._stopping.is_set():
                if work == "poll":
                    self._tick_due.clear()
                self.safe_tick(observe=work == "poll")
        self._scheduler.shutdown(wait=False)
        self._tick_due.close()
        self.log.info(
            "daemon.stopping",
            grace_seconds=self.grace_seconds,
            running=self.engine.executor.running_keys(),
        )
        self.engine.shutdown(self.grace_seconds)
        self.log.info("daemon.stopped")

    def _wait_for_work(self, timeout: float) -> str | None:
        """Wait for the schedule (`"poll"`) or a worker's report (`"report"`); None if neither
        came.

        While backing off after a failed tick only the schedule counts: a report the
        failed tick could not settle would otherwise wake the loop again at once.
        """
        executor = self.engine.executor
        reports = [] if self._backing_off() else executor.report_channels()
        ready = multiprocessing.connection.wait([self._tick_due.fileno(), *reports], timeout)
        if self._tick_due.fileno() in ready:
            return "poll"
        # The template also says when a worker started: only an ended one is worth a tick.
        return "report" if reports and executor.has_results() else None

    def _backing_off(self) -> bool:
        return time.monotonic() < self._retry_at

    def run_once(self, settle_interval: float = 0.5, wait: bool = True) -> int:
        """One tick, then wait for what it launched: with its retries, and with what it
        launches in the slots they free (the rest of what the tick claimed), so that nothing
        it started is left running at exit. A stop (SIGTERM) and any exit go through the
        graceful shutdown, as `run`'s do. 0 when every launched action succeeded."""
        launched = self.safe_tick()
        if self.consecutive_failures:
            return 1
        if not wait:  # a dry run launched nothing to wait for
            self.log.info("once.finished", launched=launched, failed=[])
            return 0
        try:
            while not self._stopping.is_set() and self.engine.busy(launched):
                if self._backing_off():
                    self._stopping.wait(settle_interval)
                    continue
                self.engine.executor.wait_for_report(settle_interval)
                launched += self._settle_and_dispatch()
        finally:
            self.engine.shutdown(self.grace_seconds)
        launched = list(dict.fromkeys(launched))  # a retry is launched under the same key
        failed = [key for key in launched if not self.engine.succeeded(key)]
        self.log.info("once.finished", launched=launched, failed=failed, stopped=self.stopping)
        return 1 if failed else 0

    def _settle_and_dispatch(self) -> list[str]:
        """Settle ended runs and launch what waits (`run --once`); a store that does not
        answer is waited for with the same backoff as a failed tick."""
        try:
            self.engine.settle()
            launched = self.engine.dispatch()
        except Exception as error:
            metrics.STORE_ERRORS.inc()
            self._tick_failed(error)
            return []
        if self.consecutive_failures:
            self.log.info(
                "store.available", during="poll", after_failures=self.consecutive_failures
            )
        self.consecutive_failures, self._retry_at, self.store_error = 0, 0.0, None
        return launched

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if not self._stopping.is_set():
            self.log.info("daemon.signal", signal=signal.Signals(signum).name)
        self._stopping.set()
        self._tick_due.set()
