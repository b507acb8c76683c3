"""The worker template: one warm process that forks a fresh worker for every run.

Warming a worker (imports, a store connection, ZenML's environment scan) costs ~4 s of CPU; a
fork of a warm process costs milliseconds and shares its memory until written. So the template
warms once (`warmup.py`), drops its store connections (a fork must not share a socket), and then
only forks: each run gets a fresh copy of the same clean state.

The daemon forks the template at start-up, before it has a store connection or a second thread
(so the template shares the daemon's own imports too); a template started later (its
predecessor died) is spawned from a fresh interpreter instead. The template only forks, relays
and reaps; it decides nothing.

Messages, daemon → template: `("warm", environment, imports, log)` once, `("launch", ticket,
Job)`, `("kill", ticket)`. Template → daemon: `("ready", warm_error)`, `("started", ticket,
pid)`, `("report", ticket, Report)`, `("exited", ticket, exit_code, error)` (a negative code:
the signal that ended it; `error`: why no worker could start), a ticket's report before its
exit. A ticket names one launch, so a late message of an earlier attempt is never taken for
its retry's.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from service.runtime.fingerprint import CodeFingerprint
from service.runtime.worker import Job, die_with_parent, redirect_output, run_job

REAP_INTERVAL_SECONDS = 1.0  # a worker whose pipe a grandchild holds open is still reaped


class WorkerTemplate:
    """The daemon's handle on the template process."""

    def __init__(self, process: BaseProcess, conn: Connection, forked: bool) -> None:
        self.process = process
        self.conn = conn
        self.forked = forked  # shares the daemon's memory (else spawned: its own)
        self.ready = False
        self.warm_error: str | None = None
        self.code: CodeFingerprint | None = None  # the code on disk when it began warming
        self.live: set[int] = set()  # tickets of its workers not exited yet (or not forked)

    @classmethod
    def start(cls, fork: bool, inherited_fds: tuple[int, ...] = ()) -> WorkerTemplate:
        """Fork the template when asked and safe (no thread but this one), else spawn it.
        `inherited_fds` are the daemon's descriptors the template must not keep (its lock)."""
        forked = fork and threading.active_count() == 1
        context = multiprocessing.get_context("fork" if forked else "spawn")
        ours, theirs = multiprocessing.Pipe(duplex=True)
        process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=serve_template,
            args=(theirs, os.getpid(), ours if forked else None, inherited_fds if forked else ()),
            name="autopilot-template",
            daemon=False,
        )
        if forked:
            gc.freeze()  # the daemon's objects stay out of the collector: pages stay shared
        process.start()
        theirs.close()
        return cls(process, ours, forked)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def send(self, message: tuple[Any, ...]) -> bool:
        """False if the template is gone."""
        try:
            self.conn.send(message)
        except (OSError, EOFError, ValueError):
            return False
        return True

    def stop(self) -> None:
        """Closing its pipe ends the template; it kills any worker still running first. One
        still warming up reads its pipe only once warm (seconds): it is killed at once."""
        self.conn.close()
        if self.ready:
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def serve_template(
    conn: Connection,
    parent_pid: int,
    daemon_end: Connection | None,
    inherited_fds: tuple[int, ...],
) -> None:
    """The template process: warm up when told, then fork workers until the daemon hangs up."""
    die_with_parent(parent_pid)
    if daemon_end is not None:  # forked: let go of what is the daemon's alone
        daemon_end.close()
    for fd in inherited_fds:
        os.close(fd)
    # The daemon stops it (closing the pipe); a Ctrl-C meant for the daemon must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _, environment, imports, warmup_log = conn.recv()
    except (EOFError, OSError):
        return
    redirect_output(warmup_log)
    os.environ.update(environment)
    conn.send(("ready", _warm(imports)))
    _Template(conn).serve()


def _warm(imports: tuple[tuple[str, str], ...]) -> str | None:
    """Warm up; a failure only leaves runs to import for themselves, so it is reported, not
    raised (runs still start, slower)."""
    from service.runtime.warmup import forget_connections, warm_up

    error: str | None = None
    try:
        warm_up(imports)
    except Exception as failure:
        traceback.print_exc()
        error = f"{type(failure).__name__}: {failure}"
    forget_connections()
    gc.collect()
    gc.freeze()  # what warming made is shared by every fork: keep the collector off its pages
    return error


@dataclass
class _Child:
    ticket: int
    conn: Connection | None  # the worker's report pipe; None once it has closed
    reported: bool = False


class _Template:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.children: dict[int, _Child] = {}

    def serve(self) -> None:
        while True:
            pipes = [child.conn for child in self.children.values() if child.conn is not None]
            ready = multiprocessing.connection.wait([self.conn, *pipes], REAP_INTERVAL_SECONDS)
            for child in list(self.children.values()):
                if child.conn in ready:
                    self._relay(child)
            self._reap()
            if self.conn in ready and not self._obey():
                self._kill_all()
                return

    def _obey(self) -> bool:
        """Carry out the daemon's message; False once the daemon has hung up."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            return False
        if message[0] == "launch":
            self._fork(message[1], message[2])
        elif message[0] == "kill":
            for pid, child in self.children.items():
                if child.ticket == message[1]:
                    os.kill(pid, signal.SIGKILL)
        return True

    def _fork(self, ticket: int, job: Job) -> None:
        reader, writer = multiprocessing.Pipe(duplex=False)
        try:
            pid = os.fork()
        except OSError as error:  # out of memory or processes: the worker ends at once
            self.conn.send(("exited", ticket, None, f"cannot fork a worker: {error}"))
            return
        if pid == 0:
            self._become_worker(reader, writer, job)
        writer.close()
        self.children[pid] = _Child(ticket, reader)
        self.conn.send(("started", ticket, pid))

    def _become_worker(self, reader: Connection, writer: Connection, job: Job) -> None:
        """In the forked child: drop the template's pipes, run the job, exit; never return."""
        try:
            template_pid = os.getppid()
            reader.close()
            self.conn.close()
            for child in self.children.values():
                if child.conn is not None:
                    child.conn.close()
            run_job(writer, job, template_pid)
        finally:
            os._exit(0)

    def _relay(self, child: _Child) -> None:
        """Pass a worker's report on; an end of file means the worker is gone."""
        assert child.conn is not None
        try:
            report = child.conn.recv()
        except (EOFError, OSError):
            child.conn.close()
            child.conn = None
            return
        child.reported = True
        self.conn.send(("report", child.ticket, report))

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid)
            while child.conn is not None and not child.reported and child.conn.poll():
                self._relay(child)  # a report written just before the end comes first
            if child.conn is not None:
                child.conn.close()
            self.conn.send(("exited", child.ticket, os.waitstatus_to_exitcode(status), None))

    def _kill_all(self) -> None:
        for pid in self.children:
            os.kill(pid, signal.SIGKILL)
        for pid in self.children:
            os.waitpid(pid, 0)
