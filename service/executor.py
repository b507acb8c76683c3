"""The executor: runs pipelines in spawned worker processes, never in the poll loop.

At most `max_concurrent` workers at a time; a worker that outlives the run timeout is killed.
The executor only reports how a worker ended; the engine reads the run's real outcome from the
store, so the same code works when the orchestrator runs pipelines elsewhere.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from service.worker import Job, main

_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class WorkerResult:
    key: str
    ok: bool
    run_id: str | None
    error: str | None
    timed_out: bool
    duration_seconds: float


@dataclass
class _Worker:
    job: Job
    process: BaseProcess
    conn: Connection
    started: float
    message: tuple[str, str | None, str | None] | None = None


class Executor:
    def __init__(self, max_concurrent: int, timeout_seconds: float) -> None:
        self.max_concurrent = max_concurrent
        self.timeout_seconds = timeout_seconds
        self._workers: dict[str, _Worker] = {}

    def free_slots(self) -> int:
        return self.max_concurrent - len(self._workers)

    def is_running(self, key: str) -> bool:
        return key in self._workers

    def running_keys(self) -> list[str]:
        return list(self._workers)

    def launch(self, job: Job) -> int:
        """Start a worker for the job; returns its pid."""
        if job.key in self._workers:
            raise RuntimeError(f"{job.key} already has a worker")
        receiver, sender = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=main, args=(job, sender, os.getpid()), name=f"autopilot-{job.key}", daemon=False
        )
        process.start()
        sender.close()
        self._workers[job.key] = _Worker(job, process, receiver, time.monotonic())
        return int(process.pid or 0)

    def poll(self) -> list[WorkerResult]:
        """Results of workers that ended since the last poll; kills those past the timeout."""
        results = []
        for key, worker in list(self._workers.items()):
            self._read_message(worker)
            elapsed = time.monotonic() - worker.started
            if worker.process.is_alive() and elapsed > self.timeout_seconds:
                worker.process.kill()
                worker.process.join(5)
                results.append(self._finish(key, timed_out=True))
            elif not worker.process.is_alive():
                worker.process.join()
                self._read_message(worker)
                results.append(self._finish(key, timed_out=False))
        return results

    def wait(self, timeout: float) -> list[WorkerResult]:
        """Poll until every worker has ended or `timeout` seconds passed; then kill the rest."""
        deadline = time.monotonic() + timeout
        results = self.poll()
        while self._workers and time.monotonic() < deadline:
            time.sleep(0.2)
            results += self.poll()
        for worker in self._workers.values():
            worker.process.kill()
        for key, worker in list(self._workers.items()):
            worker.process.join(5)
            results.append(self._finish(key, timed_out=True))
        return results

    def _read_message(self, worker: _Worker) -> None:
        try:
            if worker.message is None and worker.conn.poll():
                worker.message = worker.conn.recv()
        except (EOFError, OSError):
            pass

    def _finish(self, key: str, timed_out: bool) -> WorkerResult:
        worker = self._workers.pop(key)
        worker.conn.close()
        duration = time.monotonic() - worker.started
        if timed_out:
            limit = f"timed out after {duration:.0f}s (limit {self.timeout_seconds:g}s)"
            return WorkerResult(key, False, None, limit, True, duration)
        if worker.message is None:
            lost = f"worker exited with code {worker.process.exitcode} without a report"
            return WorkerResult(key, False, None, lost, False, duration)
        status, run_id, error = worker.message
        return WorkerResult(key, status == "ok", run_id, error, False, duration)
