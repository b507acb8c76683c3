"""What a worker does: run one job, forked from the warm template, and report how it went.

A worker is a fresh fork of the template (`service/runtime/template.py`), which imported and
connected once and never runs a pipeline itself. So each run starts from the same clean state,
whatever the run before it did (raised, leaked memory, changed the working directory, the
environment, logging or ZenML's active model): nothing of a run survives its process.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import os
import random
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from service.errors import describe_error
from service.files import open_private

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    """One attempt of one action: which launcher to call, with what."""

    key: str
    launcher: str  # "module:function"; the function returns the run id
    kwargs: dict[str, Any]
    log_path: str


@dataclass(frozen=True)
class Report:
    """How a job ended, as its worker saw it. `run_cpu_seconds` is the CPU the worker spent
    inside the launcher (the run itself), so what the automation adds can be told apart."""

    ok: bool
    run_id: str | None
    error: str | None
    run_cpu_seconds: float


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel kill this process when its parent dies, so no orphan keeps running a
    pipeline that a restarted daemon would not know about (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def redirect_output(log_path: str) -> None:
    """Send this process's own output to a log file, out of the daemon's structured log."""
    log = open_private(log_path)  # 0600: a run's output may hold what its steps print
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def run_job(conn: Connection, job: Job, template_pid: int) -> None:
    """The body of a freshly forked worker: run `job`, send its `Report`, then end the way an
    interpreter ends (exit handlers run: ZenML's log exporter flushes in one)."""
    die_with_parent(template_pid)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _reseed_random()
    redirect_output(job.log_path)
    started = time.process_time()
    try:
        module_name, _, function_name = job.launcher.partition(":")
        launcher = getattr(importlib.import_module(module_name), function_name)
        run_id = launcher(**job.kwargs)
        report = Report(True, str(run_id), None, time.process_time() - started)
    except BaseException as error:  # everything, even SystemExit, is reported to the daemon
        traceback.print_exc()
        failed_run = getattr(error, "run_id", None)
        run_id = None if failed_run is None else str(failed_run)
        report = Report(False, run_id, describe_error(error), time.process_time() - started)
    try:
        conn.send(report)
    finally:
        conn.close()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


def _reseed_random() -> None:
    """A fork inherits the template's random state: every run would draw the same numbers.
    Python reseeds `random` in a forked child itself; NumPy's global generator it does not."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
