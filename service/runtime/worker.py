"""The entry point of a spawned worker process: run one pipeline and report how it went.

Runs in a fresh interpreter (multiprocessing `spawn`), never a fork of the daemon: forking after a
ZenML client exists can deadlock, and in-process pipeline runs are not thread-safe.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from service.errors import describe_error
from service.files import open_private
from service.runtime.warmup import warm_up

PR_SET_PDEATHSIG = 1
READY = ("ready", None, None)  # sent once the warm-up is done, before the job is read


@dataclass(frozen=True)
class Job:
    """One attempt of one action: which launcher to call, with what."""

    key: str
    launcher: str  # "module:function"; the function returns the run id
    kwargs: dict[str, Any]
    log_path: str


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel kill this worker when the daemon dies, so no orphan keeps running a
    pipeline that a restarted daemon would not know about (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the daemon died before prctl took effect
        os._exit(1)


def _redirect_output(log_path: str) -> None:
    """Send the run's own output to its log file, out of the daemon's structured log."""
    log = open_private(log_path)  # 0600: a run's output may hold what its steps print
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def serve(
    conn: Connection,
    parent_pid: int,
    environment: dict[str, str],
    warmup_log: str,
    warm_imports: tuple[tuple[str, str], ...],
) -> None:
    """A warm worker: import and connect, wait for one job, run it, report, exit.

    One job per process keeps runs from sharing state; the executor keeps a spare warm so
    the next job does not wait for imports.
    """
    die_with_parent(parent_pid)
    _redirect_output(warmup_log)
    os.environ.update(environment)
    warm_error: BaseException | None = None
    try:
        warm_up(warm_imports)
    except BaseException as error:  # reported with the job, which then fails visibly
        warm_error = error
        traceback.print_exc()
    try:
        conn.send(READY)
        job: Job = conn.recv()
    except (EOFError, OSError):  # the daemon is shutting down and no longer needs this spare
        return
    _redirect_output(job.log_path)
    try:
        if warm_error is not None:
            raise warm_error
        module_name, _, function_name = job.launcher.partition(":")
        launcher = getattr(importlib.import_module(module_name), function_name)
        run_id = launcher(**job.kwargs)
        conn.send(("ok", str(run_id), None))
    except BaseException as error:  # everything, even SystemExit, is reported to the daemon
        traceback.print_exc()
        run_id = getattr(error, "run_id", None)
        conn.send(("error", None if run_id is None else str(run_id), describe_error(error)))
    finally:
        sys.stdout.flush()
        conn.close()
