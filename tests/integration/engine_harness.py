"""Build a real engine (real store, real ledger, real worker processes) inside a test."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.core.records import RunInfo
from service.engine import Autopilot, make_executor
from service.ledger import Ledger
from service.logs import configure
from service.settings import Settings, load_settings
from service.store import StoreAdapter
from tests.support import wait_for

_STARTED: list[Autopilot] = []


def make_engine(
    state_dir: Path,
    store: StoreAdapter | None = None,
    environ: dict[str, str] | None = None,
    worker_environment: dict[str, str] | None = None,
    **overrides: Any,
) -> Autopilot:
    """An engine started on `state_dir`. `environ`: its settings' variables; `overrides`:
    settings by name (`max_attempts=1`); `worker_environment`: set in its workers (the
    stack to run on, as `autopilot run` sets it for `AUTOPILOT_STACK`)."""
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
    engine.start()
    _STARTED.append(engine)
    return engine


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
