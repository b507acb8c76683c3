"""Throughput of a real daemon (`autopilot run`, its own process) on the embedded SQLite store:
bursts, a sustained arrival rate, CPU per run and the memory of the daemon and its workers.

Run through `bench/bench.py` (`burst`, `sustained`, `footprint`, `candidates`). Every number is
read from the daemon's own events and from /proc; the datasets are real `save_artifact` calls.
Unless a bench says otherwise, no version is promoted (the threshold is unreachable), so only
trainings run and every one of them is counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import _epoch, _save_template, _zenml_ready, bench_daemon, report

POLL_SECONDS = 1.0
NO_PROMOTION = {"AUTOPILOT_PROMOTION_THRESHOLD": "2"}  # accuracy never reaches it
EVERY_PROMOTION = {
    "AUTOPILOT_PROMOTION_THRESHOLD": "0",
    "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "false",
}


@contextmanager
def _daemon(**environment: str) -> Iterator[Any]:
    """A daemon on this bench's store with default settings but a 1 s poll, warmed up."""
    daemon = bench_daemon("bench-throughput-", POLL_SECONDS, **environment)
    try:
        daemon.wait_event("daemon.started", timeout=120)
        _wait_until_warm(daemon)
        yield daemon, _Events(daemon.log_path)
    finally:
        daemon.stop()


def _wait_until_warm(daemon: Any, timeout: float = 120) -> None:
    """Until the workers are warm: the template (this code) or every spare (before it)."""
    from tests.support import http_get_text

    port = daemon.environment["AUTOPILOT_HTTP_PORT"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = http_get_text(f"http://127.0.0.1:{port}/metrics")
        if "autopilot_worker_template_ready 1.0" in metrics:
            return
        if "autopilot_warm_workers 2.0" in metrics:
            return
        time.sleep(0.2)
    raise TimeoutError("the workers did not warm up")


class _Events:
    """The daemon's log read as it grows (re-reading it whole would cost this bench's process
    CPU that the daemon needs): events by name, then by dataset version id."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.offset = 0
        self.by_dataset: dict[str, dict[str, dict[str, Any]]] = {}

    def read(self) -> None:
        with open(self.log_path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                dataset = event.get("dataset_version_id")
                if dataset is not None:
                    self.by_dataset.setdefault(event["event"], {})[dataset] = event

    def of(self, name: str, dataset_ids: set[str]) -> dict[str, dict[str, Any]]:
        self.read()
        found = self.by_dataset.get(name, {})
        return {d: found[d] for d in dataset_ids if d in found}


def _trained(events: _Events, dataset_ids: set[str]) -> dict[str, dict[str, Any]]:
    return events.of("training.succeeded", dataset_ids)


def _wait_trained(events: _Events, dataset_ids: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trained = _trained(events, dataset_ids)
        if len(trained) == len(dataset_ids):
            return trained
        if failed := events.of("training.failed", dataset_ids):
            raise RuntimeError(f"a training failed: {next(iter(failed.values()))}")
        time.sleep(0.2)
    raise TimeoutError(f"{len(dataset_ids) - len(_trained(events, dataset_ids))} not trained")


def own_cpu_seconds(pid: int) -> float:
    """CPU of this one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants, living or reaped: each live process's own
    time plus what it has collected from the children it reaped."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for process in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # ended since listed: counted in its parent once reaped
        total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def tree_pss_mib(pid: int) -> float:
    """Proportional set size of a process and all its descendants: shared pages counted once."""
    total = 0
    for process in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return round(total / 1024, 1)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _isolated(events: _Events, samples: int) -> list[float]:
    """Commit → training succeeded for datasets arriving alone (each at a random phase of the
    poll), one after another."""
    times = []
    for _ in range(samples):
        time.sleep(random.uniform(0, POLL_SECONDS))
        dataset = _save_template(["approved"])
        committed = time.time()
        trained = _wait_trained(events, {dataset}, timeout=120)[dataset]
        times.append(_epoch(trained["timestamp"]) - committed)
        time.sleep(1.0)  # its worker has exited and the daemon is idle again
    return times


def burst(counts: tuple[int, ...] = (30, 100), samples: int = 8) -> None:
    """1. N approved datasets committed back to back: wall time until all are trained, against
    N times an isolated dataset's time / concurrency, in the same daemon; 3. CPU per run."""
    _zenml_ready()
    with _daemon(**NO_PROMOTION) as (daemon, events):
        pid = daemon.process.pid
        isolated = statistics.median(_isolated(events, samples))
        for count in counts:
            cpu_before, daemon_before = tree_cpu_seconds(pid), own_cpu_seconds(pid)
            first = time.time()
            datasets = [_save_template(["approved"]) for _ in range(count)]
            committed = time.time()
            trained = _wait_trained(events, set(datasets), timeout=60 + 20 * count)
            cpu = tree_cpu_seconds(pid) - cpu_before
            daemon_cpu = own_cpu_seconds(pid) - daemon_before
            last = max(_epoch(e["timestamp"]) for e in trained.values())
            run_cpu = [e.get("run_cpu_seconds") for e in trained.values()]
            known = [c for c in run_cpu if c is not None]
            concurrency = 2
            report(
                bench="burst",
                datasets=count,
                commit_seconds=round(committed - first, 2),
                wall_seconds=round(last - first, 2),
                isolated_median_seconds=round(isolated, 3),
                ideal_seconds=round(count * isolated / concurrency, 2),
                ratio=round((last - first) / (count * isolated / concurrency), 2),
                cpu_seconds_per_training=round(cpu / count, 3),
                daemon_cpu_seconds_per_training=round(daemon_cpu / count, 3),
                run_cpu_seconds_median=round(statistics.median(known), 3) if known else None,
                cpu_beyond_run_per_training=(
                    round((cpu - sum(known)) / count, 3) if len(known) == count else None
                ),
                load_average=os.getloadavg()[0],
            )
            time.sleep(3)


def sustained(
    rates: tuple[int, ...] = (60, 120), minutes: float = 5.0, chain: bool = False
) -> None:
    """2. Datasets arriving at a steady rate (per minute) for `minutes`: the backlog (committed,
    not yet done) each minute. A rate is kept up with if the backlog does not grow. With
    `chain`, every version is promoted and inferred, and done means inferred."""
    _zenml_ready()
    if chain:  # the bundled inference pipeline predicts on this dataset
        from pipelines.feature_engineering import launch_feature_engineering

        launch_feature_engineering(random_state=0)
    done_event = "inference.succeeded" if chain else "training.succeeded"
    with _daemon(**(EVERY_PROMOTION if chain else NO_PROMOTION)) as (_, events):
        for rate in rates:
            committed: list[str] = []
            backlog_by_minute = []
            started = time.monotonic()
            interval = 60.0 / rate
            next_minute = 60.0
            while (elapsed := time.monotonic() - started) < minutes * 60:
                committed.append(_save_template(["approved"]))
                if elapsed >= next_minute:
                    backlog_by_minute.append(_backlog(events, committed, done_event))
                    next_minute += 60.0
                time.sleep(max(0.0, started + len(committed) * interval - time.monotonic()))
            backlog_by_minute.append(_backlog(events, committed, done_event))
            drained = time.monotonic()
            while _backlog(events, committed, done_event) and time.monotonic() - drained < 600:
                time.sleep(0.5)
            report(
                bench="sustained",
                chain=chain,
                rate_per_minute=rate,
                committed=len(committed),
                achieved_rate_per_minute=round(len(committed) / (minutes), 1),
                backlog_by_minute=backlog_by_minute,
                drained_after_seconds=round(time.monotonic() - drained, 1),
                per_minute_per_core=round(len(committed) / minutes / (os.cpu_count() or 1), 1),
                load_average=os.getloadavg()[0],
            )


def _backlog(events: _Events, committed: list[str], done_event: str) -> int:
    wanted = set(committed)
    return len(wanted) - len(events.of(done_event, wanted))


def footprint(runs: int = 1_000, batch: int = 50) -> None:
    """4. PSS of the daemon and all its workers at idle, during runs, and idle again after
    `runs` trainings (no growth across runs)."""
    _zenml_ready()
    with _daemon(**NO_PROMOTION) as (daemon, events):
        pid = daemon.process.pid
        time.sleep(5)
        idle = tree_pss_mib(pid)
        processes = 1 + len(_descendants(pid))
        busy = []
        for done in range(0, runs, batch):
            datasets = {_save_template(["approved"]) for _ in range(min(batch, runs - done))}
            while len(_trained(events, datasets)) < len(datasets):
                busy.append(tree_pss_mib(pid))
                time.sleep(0.5)
        time.sleep(5)
        report(
            bench="footprint",
            runs=runs,
            idle_pss_mib=idle,
            idle_processes=processes,
            running_pss_mib_median=round(statistics.median(busy), 1),
            running_pss_mib_max=max(busy),
            idle_after_runs_pss_mib=tree_pss_mib(pid),
            daemon_rss_mib_after_runs=_rss_mib(pid),
        )


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def candidates(runs: int = 8) -> None:
    """The ways a worker could get its runs, each measured on the training pipeline in this
    store: CPU per run of the worker process (`os.wait4`), the run's own CPU inside it, and
    wall time from job to report.

    - `spawn`: a fresh interpreter per run, warmed (`warm_up`) and then running it: what the
      daemon did before (its spares warmed ahead, but the CPU was spent all the same);
    - `reuse`: one warm process running the runs one after another;
    - `fork`: a fork of a warm template per run (what the daemon does now).
    """
    import multiprocessing

    from service.runtime.warmup import forget_connections, warm_up

    _zenml_ready()
    dataset = _save_template(["approved"])
    work = Path(tempfile.mkdtemp(prefix="bench-candidates-"))
    imports = ((str(ROOT_DIR), "pipelines.training"), (str(ROOT_DIR), "pipelines.inference"))
    spawn = multiprocessing.get_context("spawn")
    for index in range(min(runs, 4)):  # seconds each: fewer samples
        started = time.monotonic()
        process = spawn.Process(target=_warm_then_run, args=(imports, _job(work, dataset, index)))
        process.start()
        _report_child("spawn", process.pid or 0, started)
    warm_up(imports)
    for index in range(runs):
        started, cpu = time.monotonic(), time.process_time()
        _run_training(_job(work, dataset, 100 + index))
        report(
            bench="worker_candidate",
            candidate="reuse",
            worker_cpu_seconds=round(time.process_time() - cpu, 3),
            wall_seconds=round(time.monotonic() - started, 3),
            rss_mib_after=_rss_mib(os.getpid()),
        )
    forget_connections()
    for index in range(runs):
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                _run_training(_job(work, dataset, 200 + index))
            finally:
                os._exit(0)
        _report_child("fork", pid, started)


def _report_child(candidate: str, pid: int, started: float) -> None:
    """Wait for a candidate's worker process; report its CPU, wall time and peak memory."""
    _, _, usage = os.wait4(pid, 0)
    report(
        bench="worker_candidate",
        candidate=candidate,
        worker_cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        wall_seconds=round(time.monotonic() - started, 3),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
    )


ROOT_DIR = Path(__file__).resolve().parents[1]


def _job(work: Path, dataset: str, index: int) -> dict[str, Any]:
    return {
        "pipeline": "pipelines.training:training_pipeline",
        "source_root": str(ROOT_DIR),
        "config_path": None,
        "parameters": {"dataset_version_id": dataset},
        "model_name": "iris_classifier",
        "model_version": None,
        "model_version_id": None,
        "tags": ["autopilot", f"bench-candidate-{index}"],
        "run_config_path": str(work / f"{index}.yaml"),
        "run_token": f"c{index}",
    }


def _run_training(job: dict[str, Any]) -> None:
    from service.runtime.launch import launch_pipeline

    launch_pipeline(**job)


def _warm_then_run(imports: tuple[tuple[str, str], ...], job: dict[str, Any]) -> None:
    from service.runtime.warmup import warm_up

    warm_up(imports)
    _run_training(job)
