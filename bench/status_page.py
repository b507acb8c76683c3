"""8. The status page: what it costs to build, and what it costs the tick while people read it.

    .venv/bin/python bench/bench.py page         # both (~20 min)
    .venv/bin/python bench/bench.py page-build   # what one build costs (~3 min)

A fresh embedded store with 1,000 versions of the watched dataset (as `idle` makes them), an
engine on it, its ledger given a history of judged versions (`tests/ledger_history.py`), and the
daemon's HTTP server with the status board on that ledger, in the same process as the tick (as
in the daemon: a thread beside the loop). Readers are separate processes, as browsers are:
none; one refreshing every 10 s (the page's own refresh); one every second; one reading as fast
as it can (`/` and `/api/status` in turn, and `/metrics` every tenth request), in turn, for
several rounds. For each, the idle tick's median and 95th percentile, and how many requests the
readers made (their first second, before the ticks, included).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench import (
    _created,
    _engine,
    _save_template,
    _store,
    _time,
    _zenml_ready,
    bulk_copy,
    median_ms,
    percentile,
    renumber,
    report,
)

READER = """
import sys, time, urllib.request
base, pause = sys.argv[1], float(sys.argv[2])
count = 0
while True:
    path = "/metrics" if count % 10 == 9 else ("/" if count % 2 == 0 else "/api/status")
    with urllib.request.urlopen(base + path, timeout=30) as response:
        response.read()
    count += 1
    print(count, flush=True)
    if pause:
        time.sleep(pause)
"""
READERS = {"none": None, "every 10 s": 10.0, "every 1 s": 1.0, "continuous": 0.0}


def page(judged: tuple[int, ...] = (1_000, 100_000), ticks: int = 240, rounds: int = 4) -> None:
    from service.http import HealthServer
    from service.observe.board import StatusBoard
    from tests.ledger_history import write_history
    from tests.unit.test_status_page import Health

    _zenml_ready()
    with _store("sqlite") as database:
        template = _save_template([])
        newest = _created(database, template)
        bulk_copy(database, template, 999)
        renumber(database, template)
        for count in judged:
            engine = _engine(
                Path(tempfile.mkdtemp()),
                start_from=(newest - timedelta(minutes=10)).isoformat(),
                reconcile_interval_seconds="3600",
            )
            started = time.perf_counter()
            write_history(engine.ledger, [0.9 + (i % 97) / 1000 for i in range(count)])
            written = time.perf_counter() - started
            engine.tick()
            engine.tick()
            board = StatusBoard(engine.settings.automations, engine.settings.ledger_path, Health())
            server = HealthServer(Health(), "127.0.0.1", 0, board).start()
            host, port = server.address
            try:
                _build_costs(board, count, written)
                if not ticks:
                    continue
                # The conditions in turn, several rounds: the machine's other load drifts, and
                # each condition sees the same drift.
                samples: dict[str, list[float]] = {name: [] for name in READERS}
                served = dict.fromkeys(READERS, 0)
                for _ in range(rounds):
                    for name, pause in READERS.items():
                        times, pages = _tick_with_reader(
                            engine, f"http://{host}:{port}", pause, ticks // rounds
                        )
                        samples[name] += times
                        served[name] += pages
                for name, times in samples.items():
                    report(
                        bench="tick_with_status_page",
                        judged_versions=count,
                        readers=name,
                        tick_median_ms=median_ms(times),
                        tick_p95_ms=round(percentile(times, 0.95) * 1000, 2),
                        tick_mean_ms=round(statistics.mean(times) * 1000, 2),
                        requests_served=served[name],
                        ticks=len(times),
                        rounds=rounds,
                    )
            finally:
                server.stop()
                engine.ledger.close()


def _build_costs(board: object, count: int, written: float) -> None:
    """One build, as the first request of a second pays for it (the board's cache bypassed)."""
    from service.observe import page

    status = board._build()  # type: ignore[attr-defined]
    html = page.render(status)
    report(
        bench="status_page_build",
        judged_versions=count,
        status_build_median_ms=median_ms(_time(board._build, 30)),  # type: ignore[attr-defined]
        page_render_median_ms=median_ms(_time(lambda: page.render(status), 30)),
        metrics_median_ms=median_ms(_time(board.metrics, 30)),  # type: ignore[attr-defined]
        page_bytes=len(html.encode()),
        status_json_bytes=len(json.dumps(status).encode()),
        history_written_s=round(written, 1),
    )


def _tick_with_reader(
    engine: object, base: str, pause: float | None, ticks: int
) -> tuple[list[float], int]:
    """`ticks` idle ticks while a reader (a separate process) reads the page every `pause`
    seconds (None: no reader); the ticks' durations and how many requests it made."""
    reader = None
    if pause is not None:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, base, str(pause)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # its interpreter started and reading
    samples = _time(engine.tick, ticks)  # type: ignore[attr-defined]
    pages = 0
    if reader is not None:
        reader.terminate()
        output, _ = reader.communicate(timeout=30)
        lines = output.split()
        pages = int(lines[-1]) if lines else 0
    return samples, pages
