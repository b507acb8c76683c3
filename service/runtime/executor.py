"""The executor: runs pipelines in spawned worker processes, never in the poll loop.

At most `max_concurrent` workers at a time; a worker that outlives the run timeout is killed.
Spare workers are kept warm (imports done, store connected; see `service/warmup.py`), so a run
starts in a fraction of a second instead of seconds. The executor only reports how a worker
ended; the engine reads the run's real outcome from the store, so the same code works when the
orchestrator runs pipelines elsewhere.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from service.runtime.worker import READY, Job, serve

_SPAWN = multiprocessing.get_context("spawn")


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

    @property
    def rejected_run(self) -> bool:
        """The launcher saw its run succeed and still failed it (it ran on the wrong model
        version); a worker that died after its run succeeded rejected nothing."""
        return not self.ok and self.run_id is not None


@dataclass
class _Worker:
    job: Job
    process: BaseProcess
    conn: Connection
    started: float
    message: tuple[str, str | None, str | None] | None = None


@dataclass
class _Spare:
    process: BaseProcess
    conn: Connection
    ready: bool = False  # its warm-up is done: a job handed to it starts at once


class Executor:
    def __init__(
        self,
        max_concurrent: int,
        timeout_seconds: float,
        environment: dict[str, str] | None = None,
        warm_imports: tuple[tuple[str, str], ...] = (),
        warmup_log: str = os.devnull,
        spares: int = 1,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.timeout_seconds = timeout_seconds
        self._environment = environment or {}
        self._warm_imports = warm_imports
        self._warmup_log = warmup_log
        self._spare_count = spares
        self._workers: dict[str, _Worker] = {}
        self._spares: list[_Spare] = []
        self._exiting: list[BaseProcess] = []
        self._closing = False

    def warm_up(self) -> None:
        """Start warming spares now, so the first run does not wait for one."""
        self._top_up_spares()

    def warm_spares(self) -> int:
        """Live spares whose warm-up is done (read from their `ready` messages)."""
        self._spares = [s for s in self._spares if s.process.is_alive()]  # reaps the dead
        for spare in self._spares:
            if not spare.ready:
                spare.ready = _received_ready(spare.conn)
        return sum(spare.ready for spare in self._spares)

    def free_slots(self) -> int:
        return self.max_concurrent - len(self._workers)

    def is_running(self, key: str) -> bool:
        return key in self._workers

    def running_keys(self) -> list[str]:
        return list(self._workers)

    def launch(self, job: Job) -> int:
        """Hand the job to a warm spare (or a new worker); returns the worker's pid."""
        if job.key in self._workers:
            raise RuntimeError(f"{job.key} already has a worker")
        spare = self._take_spare() or self._spawn()
        spare.conn.send(job)
        self._workers[job.key] = _Worker(job, spare.process, spare.conn, time.monotonic())
        self._top_up_spares()
        return int(spare.process.pid or 0)

    def _take_spare(self) -> _Spare | None:
        """A warm spare if one is ready, else the one that started warming first."""
        self.warm_spares()
        self._spares.sort(key=lambda spare: not spare.ready)  # stable: oldest first otherwise
        while self._spares:
            spare = self._spares.pop(0)
            if spare.process.is_alive():
                return spare
            spare.process.join()
        return None

    def _spawn(self) -> _Spare:
        ours, theirs = _SPAWN.Pipe(duplex=True)
        process = _SPAWN.Process(
            target=serve,
            args=(theirs, os.getpid(), self._environment, self._warmup_log, self._warm_imports),
            name="autopilot-worker",
            daemon=False,
        )
        process.start()
        theirs.close()
        return _Spare(process, ours)

    def _top_up_spares(self) -> None:
        """Start a missing spare, one at a time: a warm-up is seconds of CPU-bound imports,
        and two at once beside a running pipeline would slow that run on a small machine."""
        self.warm_spares()
        if self._closing:
            return
        if len(self._spares) < self._spare_count and all(s.ready for s in self._spares):
            self._spares.append(self._spawn())

    def report_channels(self) -> list[Connection]:
        """The connections a running worker's report (or its death) will arrive on: the
        daemon waits on them with its schedule, so a finished run is settled at once."""
        return [w.conn for w in self._workers.values() if w.message is None]

    def wait_for_report(self, timeout: float) -> None:
        """Block until some running worker reports or ends, or `timeout` seconds pass."""
        channels = self.report_channels()
        if channels:
            multiprocessing.connection.wait(channels, timeout)
        else:
            time.sleep(timeout)

    def poll(self) -> list[WorkerResult]:
        """Results of workers that reported or ended since the last poll; kills those past the
        timeout. A worker's report counts at once: its interpreter may take seconds to exit."""
        self._reap_exiting()
        self._top_up_spares()
        results = []
        for key, worker in list(self._workers.items()):
            self._read_message(worker)
            elapsed = time.monotonic() - worker.started
            if worker.message is not None:
                results.append(self._finish(key, timed_out=False))
            elif worker.process.is_alive() and elapsed > self.timeout_seconds:
                worker.process.kill()
                worker.process.join(5)
                results.append(self._finish(key, timed_out=True))
            elif not worker.process.is_alive():
                worker.process.join()
                self._read_message(worker)
                results.append(self._finish(key, timed_out=False))
        return results

    def _reap_exiting(self) -> None:
        """Join workers that reported and are exiting, so none is left a zombie."""
        still = []
        for process in self._exiting:
            process.join(0)
            if process.is_alive():
                still.append(process)
        self._exiting = still

    def wait(self, timeout: float) -> list[WorkerResult]:
        """Poll until every worker has ended or `timeout` seconds passed; then kill the rest.
        The executor starts no new spare after this."""
        self._closing = True
        self._stop_spares()
        deadline = time.monotonic() + timeout
        results = self.poll()
        while self._workers and time.monotonic() < deadline:
            time.sleep(0.2)
            results += self.poll()
        for worker in self._workers.values():
            worker.process.kill()
        for key, worker in list(self._workers.items()):
            worker.process.join(5)
            results.append(self._finish(key, timed_out=False, interrupted=True))
        return results

    def close(self) -> None:
        """Stop the spares and kill any worker still running (the daemon is exiting)."""
        self.wait(0)
        for process in self._exiting:
            process.join(10)

    def _stop_spares(self) -> None:
        """Spares hold no work: kill them rather than wait for their warm-up to finish."""
        for spare in self._spares:
            spare.conn.close()
            spare.process.kill()
        for spare in self._spares:
            spare.process.join(5)
        self._spares = []

    def _read_message(self, worker: _Worker) -> None:
        """Take the worker's report, passing over the `ready` a spare sent before its job."""
        try:
            while worker.message is None and worker.conn.poll():
                message = worker.conn.recv()
                if message != READY:
                    worker.message = message
        except (EOFError, OSError):
            pass

    def _finish(self, key: str, timed_out: bool, interrupted: bool = False) -> WorkerResult:
        worker = self._workers.pop(key)
        worker.conn.close()
        if worker.process.is_alive():
            self._exiting.append(worker.process)
        duration = time.monotonic() - worker.started
        if timed_out:
            limit = f"timed out after {duration:.0f}s (limit {self.timeout_seconds:g}s)"
            return WorkerResult(key, False, None, limit, True, duration)
        if interrupted:
            stopped = f"interrupted after {duration:.0f}s: the daemon was shutting down"
            return WorkerResult(key, False, None, stopped, False, duration, interrupted=True)
        if worker.message is None:
            code = worker.process.exitcode
            lost = f"worker exited with code {code} without a report"
            return WorkerResult(key, False, None, lost, False, duration, exit_code=code)
        status, run_id, error = worker.message
        return WorkerResult(key, status == "ok", run_id, error, False, duration)


def _received_ready(conn: Connection) -> bool:
    try:
        return bool(conn.poll()) and conn.recv() == READY
    except (EOFError, OSError):  # the spare died; `_top_up_spares` replaces it
        return False
