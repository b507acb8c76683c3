"""Build a real engine (real store, real ledger, real worker processes) inside a test."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.core.records import RunInfo
from service.engine import Autopilot, make_executor
from service.ledger import Ledger
from service.logs import configure
from service.settings import Settings, load_settings
from service.stages.gate_ledger import fire_text
from service.store import StoreAdapter
from tests.support import wait_for

_STARTED: list[Autopilot] = []


def make_engine(
    state_dir: Path,
    store: StoreAdapter | None = None,
    environ: dict[str, str] | None = None,
    worker_environment: dict[str, str] | None = None,
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> Autopilot:
    """An engine started on `state_dir`. `environ`: its settings' variables; `overrides`:
    settings by name (`max_attempts=1`); `worker_environment`: set in its workers (the
    stack to run on, as `autopilot run` sets it for `AUTOPILOT_STACK`); `clock`: the daemon's
    own clock (epoch seconds) in place of the real one: schedules' fires and how long versions
    have waited (never the store's clock)."""
    environ = {
        "AUTOPILOT_STATE_DIR": str(state_dir),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_RETRY_BACKOFF_SECONDS": "0",
        "AUTOPILOT_RECONCILE_INTERVAL_SECONDS": "0.1",
        **{f"AUTOPILOT_{name.upper()}": str(value) for name, value in overrides.items()},
        **(environ or {}),
    }
    settings: Settings = load_settings(environ)
    configure("json", "INFO")
    store = store or StoreAdapter()
    # As `autopilot run` does: workers run on AUTOPILOT_STACK, by its id.
    stack = {"ZENML_ACTIVE_STACK_ID": store.stack_id(settings.stack)} if settings.stack else {}
    engine = Autopilot(
        settings,
        Ledger(settings.ledger_path),
        store,
        make_executor(settings, {**stack, **(worker_environment or {})}),
    )
    if clock is not None:
        engine.context.clock = clock
    engine.start()
    _STARTED.append(engine)
    return engine


def restarted(
    engine: Autopilot,
    clock: Callable[[], float] | None = None,
    environ: dict[str, str] | None = None,
) -> Autopilot:
    """The engine as a restart leaves it: the ledger reopened and every stage new (what they
    kept in memory is gone), on the same store and the same warm worker template, which keep
    no decision (a restart with no run going: a killed run is what test_recovery is about).
    `environ`: restarted on other settings (the same state dir)."""
    engine.ledger.close()
    settings = engine.settings
    if environ is not None:
        settings = load_settings({"AUTOPILOT_STATE_DIR": str(settings.state_dir), **environ})
    new = Autopilot(settings, Ledger(settings.ledger_path), engine.store, engine.executor)
    new.context.clock = clock or engine.context.clock
    new.start()
    return new


class ManualClock:
    """The daemon's clock standing still until a test moves it (`make_engine(clock=...)`): a
    schedule's fires come when the test says. The store's clock is not touched."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def to_next_fire(self, every: float) -> str:
        """Just past the next fire of `every <every>s` (fires are epoch-anchored); that fire as
        an action key's qualifier writes it."""
        fire = (self.now // every + 1) * every
        self.now = fire + 0.5
        return fire_text(datetime.fromtimestamp(fire, UTC))


def kill_worker(engine: Autopilot, key: str) -> None:
    """SIGKILL the worker running `key` and wait until it is gone, as a crash would leave it."""
    pid = wait_for(
        lambda: engine.executor.worker_pid(key), timeout=120, interval=0.05, what="its worker"
    )
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)


def wait_until_gone(pid: int) -> None:
    wait_for(lambda: _gone(pid), timeout=30, interval=0.05, what=f"worker {pid} gone")


def _gone(pid: int) -> bool:
    """Ended and reaped (by its template), or a zombie not reaped yet: either way, dead."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def stop_engines() -> None:
    """Test teardown: kill every engine's template and running workers."""
    while _STARTED:
        _STARTED.pop().executor.close()


def tick_until(
    engine: Autopilot, condition: Callable[[], Any], what: str, timeout: float = 180
) -> Any:
    return wait_for(condition, timeout=timeout, interval=0.3, between=engine.tick, what=what)


def runs_for(engine: Autopilot, key: str) -> list[RunInfo]:
    return engine.store.runs_for_key(key)
