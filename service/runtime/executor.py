"""The executor: runs pipelines in worker processes, never in the poll loop.

At most `max_concurrent` workers at a time; a worker that outlives the run timeout is killed.
Every worker is a fork of one warm template process (`template.py`), so a run starts in
milliseconds without a warm-up of its own, and starts from the same clean state as every other
run. The executor only reports how a worker ended; the engine reads the run's real outcome
from the store, so the same code works when the orchestrator runs pipelines elsewhere.

A run uses the code as it is on disk when it starts: before each launch the executor compares
a fingerprint of the code (`fingerprint.py`) with the one taken when its template began
warming; if the code changed, a new template is warmed for this run and the next ones, and
the old one is stopped once the runs it started have ended (they finish on the code they
started with).
"""

from __future__ import annotations

import itertools
import multiprocessing.connection
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from service.logs import get_logger
from service.runtime.fingerprint import CodeWatch, describe_changes
from service.runtime.template import WorkerTemplate
from service.runtime.worker import Job, Report

PID_WAIT_SECONDS = 2.0  # how long `launch` waits for a warm template to name the worker's pid
KILL_WAIT_SECONDS = 5.0
REWARM_AFTER_SECONDS = 60.0  # a template whose warm-up failed is replaced when idle, this often


@dataclass(frozen=True)
class WorkerResult:
    key: str
    ok: bool
    run_id: str | None
    error: str | None
    timed_out: bool
    duration_seconds: float
    interrupted: bool = False  # killed at the end of the shutdown grace period
    exit_code: int | None = None  # set when the worker ended without a report (it died)
    run_cpu_seconds: float | None = None  # CPU the worker spent in the run itself
    started: bool = True  # False: no worker was forked for it (its template died warming)

    @property
    def rejected_run(self) -> bool:
        """The launcher saw its run succeed and still failed it (it ran on the wrong model
        version); a worker that died after its run succeeded rejected nothing."""
        return not self.ok and self.run_id is not None


@dataclass
class _Worker:
    job: Job
    ticket: int
    started: float
    template: WorkerTemplate
    pid: int | None = None
    report: Report | None = None
    exited: bool = False
    exit_code: int | None = None
    exit_error: str | None = None

    @property
    def ended(self) -> bool:
        return self.report is not None or self.exited


class Executor:
    def __init__(
        self,
        max_concurrent: int,
        timeout_seconds: float,
        environment: dict[str, str] | None = None,
        warm_imports: tuple[tuple[str, str], ...] = (),
        warmup_log: str = os.devnull,
        template: WorkerTemplate | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.timeout_seconds = timeout_seconds
        self._environment = environment or {}
        self._warm_imports = warm_imports
        self._warmup_log = warmup_log
        self._template = template  # forked by `autopilot run` at start-up; else spawned here
        self._warmed = False  # the warm message has been sent to the current template
        self._retired: list[WorkerTemplate] = []  # replaced, until the runs they started end
        self._code = CodeWatch(root for root, _ in warm_imports)
        self._workers: dict[str, _Worker] = {}
        self._tickets = itertools.count(1)
        self._rewarm_at = 0.0
        self._closing = False
        self.log = get_logger()

    def warm_up(self) -> None:
        """Start warming the template now, so the first run does not wait for it."""
        self._current_template()

    def template_ready(self) -> bool:
        """The template's warm-up is done: a run handed to it starts at once."""
        self._pump()
        return self._template is not None and self._template.ready

    def free_slots(self) -> int:
        return self.max_concurrent - len(self._workers)

    def is_running(self, key: str) -> bool:
        return key in self._workers

    def running_keys(self) -> list[str]:
        return list(self._workers)

    def worker_pid(self, key: str) -> int | None:
        """The pid of the worker running `key`; None before the template has forked it."""
        self._pump()
        worker = self._workers.get(key)
        return None if worker is None else worker.pid

    def launch(self, job: Job) -> int | None:
        """Hand the job to the template, which forks its worker; returns the worker's pid, or
        None if the template is still warming (the worker starts once it is warm)."""
        if job.key in self._workers:
            raise RuntimeError(f"{job.key} already has a worker")
        self._replace_if_code_changed()
        template = self._current_template()
        worker = _Worker(job, next(self._tickets), time.monotonic(), template)
        if not template.send(("launch", worker.ticket, job)):
            raise RuntimeError("the worker template is gone; the next launch starts a new one")
        template.live.add(worker.ticket)
        self._workers[job.key] = worker
        if template.ready:
            deadline = time.monotonic() + PID_WAIT_SECONDS
            while worker.pid is None and not worker.ended and time.monotonic() < deadline:
                self._pump(timeout=deadline - time.monotonic())
        return worker.pid

    def report_channels(self) -> list[Connection]:
        """What a running worker's report (or its death) will arrive on: the daemon waits on
        it with its schedule, so a finished run is settled at once."""
        return [template.conn for template in self._templates() if template.live]

    def has_results(self) -> bool:
        """A worker has ended since the last `poll` (the template also says other things)."""
        self._pump()
        return any(worker.ended for worker in self._workers.values())

    def wait_for_report(self, timeout: float) -> None:
        """Block until some message arrives from the template, or `timeout` seconds pass."""
        channels = self.report_channels()
        if channels:
            multiprocessing.connection.wait(channels, timeout)
        else:
            time.sleep(timeout)

    def poll(self) -> list[WorkerResult]:
        """Results of workers that reported or ended since the last poll; kills those past the
        timeout. A worker's report counts at once: its process may take a moment to exit."""
        self._pump()
        self._replace_a_cold_template()
        self._stop_idle_retired()
        results = []
        for key, worker in list(self._workers.items()):
            if worker.ended:
                results.append(self._finish(key))
            elif time.monotonic() - worker.started > self.timeout_seconds:
                self._kill(worker)
                results.append(self._finish(key, timed_out=True))
        return results

    def wait(self, timeout: float) -> list[WorkerResult]:
        """Poll until every worker has ended or `timeout` seconds passed; then kill the rest.
        The executor starts no new template after this."""
        self._closing = True
        deadline = time.monotonic() + timeout
        results = self.poll()
        while self._workers and time.monotonic() < deadline:
            self._pump(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            results += self.poll()
        for worker in list(self._workers.values()):
            self._kill(worker)
            results.append(self._finish(worker.job.key, interrupted=True))
        return results

    def close(self) -> None:
        """Kill any worker still running and stop the templates (the daemon is exiting)."""
        self.wait(0)
        for template in self._templates():
            template.stop()
        self._template, self._retired = None, []

    def _templates(self) -> list[WorkerTemplate]:
        current = [] if self._template is None else [self._template]
        return current + self._retired

    def _current_template(self) -> WorkerTemplate:
        """The live template, warming; a new (spawned) one if there is none or it died."""
        if self._template is not None and not self._template.process.is_alive():
            self._pump()  # takes its last messages and its death into account
        if self._template is None:
            if self._closing:
                raise RuntimeError("the executor is shutting down")
            self._template = WorkerTemplate.start(fork=False)
            self._warmed = False
        if not self._warmed:
            # Taken before it imports anything: a change made while it warms is seen.
            self._template.code = self._code.take()
            self._warmed = self._template.send(
                ("warm", self._environment, self._warm_imports, self._warmup_log)
            )
            self.log.info(
                "executor.template_started",
                pid=self._template.pid,
                forked_from_daemon=self._template.forked,
            )
        return self._template

    def _pump(self, timeout: float = 0.0) -> None:
        """Take every message the templates have sent (waiting up to `timeout` for one)."""
        templates = self._templates()
        if timeout > 0 and templates:
            multiprocessing.connection.wait([t.conn for t in templates], timeout)
        for template in templates:
            try:
                while template.conn.poll():
                    self._take(template, template.conn.recv())
            except (EOFError, OSError):
                self._template_died(template)

    def _take(self, template: WorkerTemplate, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            template.ready, template.warm_error = True, message[1]
            if template.warm_error is not None:
                self.log.warning("executor.template_warm_up_failed", error=template.warm_error)
                self._rewarm_at = time.monotonic() + REWARM_AFTER_SECONDS
            return
        if kind == "exited":
            template.live.discard(message[1])
        worker = self._by_ticket(message[1])
        if worker is None:  # a worker already settled (killed for its timeout)
            return
        if kind == "started":
            worker.pid = message[2]
        elif kind == "report":
            worker.report = message[2]
        elif kind == "exited":
            worker.exited, worker.exit_code, worker.exit_error = True, message[2], message[3]

    def _by_ticket(self, ticket: int) -> _Worker | None:
        return next((w for w in self._workers.values() if w.ticket == ticket), None)

    def _template_died(self, template: WorkerTemplate) -> None:
        """Its workers died with it (parent-death signal): each ends without a report."""
        template.process.join(5)
        workers = [w for w in self._workers.values() if w.template is template]
        self.log.error(
            "executor.template_died",
            pid=template.pid,
            exit_code=template.process.exitcode,
            running=[w.job.key for w in workers if not w.ended],
        )
        for worker in workers:
            if not worker.ended:
                worker.exited, worker.exit_code = True, -signal.SIGKILL
                worker.exit_error = (
                    f"its worker template process died (exit code {template.process.exitcode})"
                    ", and the worker with it"
                )
        template.conn.close()
        if template is self._template:
            self._template = None
        else:
            self._retired.remove(template)

    def _replace_if_code_changed(self) -> None:
        """A template that warmed up on other code than is on disk now is replaced, so the run
        about to start sees the new code throughout (its libraries too)."""
        template = self._template
        if template is None or template.code is None or self._closing:
            return
        changed = template.code.changes(self._code.take())
        if not changed:
            return
        finishing = [w.job.key for w in self._workers.values() if w.template is template]
        self.log.info(
            "executor.code_changed",
            template_pid=template.pid,
            finishing_on_old_code=finishing,
            **describe_changes(changed),
        )
        self._template = None
        self._retired.append(template)
        self._stop_idle_retired()

    def _stop_idle_retired(self) -> None:
        """Stop each replaced template once no worker of its own is left."""
        for template in [t for t in self._retired if not t.live]:
            self._retired.remove(template)
            template.stop()

    def _replace_a_cold_template(self) -> None:
        """A template whose warm-up failed (say, the store blinked) makes every run pay for its
        own imports: replace it once nothing runs on it."""
        template = self._template
        if template is None or template.warm_error is None or template.live:
            return
        if time.monotonic() < self._rewarm_at or self._closing:
            return
        template.stop()
        self._template = None
        self._current_template()

    def _kill(self, worker: _Worker) -> None:
        """Kill a worker through its template (which knows whether it is still there, so no
        reused pid is ever hit) and wait, briefly, for its end."""
        template = worker.template
        if template not in self._templates() or worker.ended:
            return
        if not template.send(("kill", worker.ticket)):
            return
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not worker.exited and template in self._templates() and time.monotonic() < deadline:
            self._pump(timeout=deadline - time.monotonic())

    def _finish(self, key: str, timed_out: bool = False, interrupted: bool = False) -> WorkerResult:
        worker = self._workers.pop(key)
        duration = time.monotonic() - worker.started
        if timed_out:
            limit = f"timed out after {duration:.0f}s (limit {self.timeout_seconds:g}s)"
            return WorkerResult(key, False, None, limit, True, duration)
        if interrupted:
            stopped = f"interrupted after {duration:.0f}s: the daemon was shutting down"
            return WorkerResult(key, False, None, stopped, False, duration, interrupted=True)
        report = worker.report
        if report is None:
            code = worker.exit_code
            lost = worker.exit_error or f"worker exited with code {code} without a report"
            started = worker.pid is not None
            return WorkerResult(
                key, False, None, lost, False, duration, exit_code=code, started=started
            )
        return WorkerResult(
            key,
            report.ok,
            report.run_id,
            report.error,
            False,
            duration,
            run_cpu_seconds=report.run_cpu_seconds,
        )
