"""1c. The idle tick with training gates and schedules (issue 20): what a tick pays for them
when nothing is due, and while versions wait at a gate.

Run through `bench/bench.py idle-schedules`. The store holds `count` projects (`_projects`: an
artifact with one approved version made by a pipeline run, and a model with a production
version), and one daemon has an automation per project, in three variants:
- `plain`: no policy, no schedule (the idle tick of section 6);
- `scheduled`: `TRAINING_SCHEDULE=every 1h`, `INFERENCE_SCHEDULE=every 1h` (no fire due while
  measured) and `TRAINING_DEBOUNCE_SECONDS=60`: gated, nothing queued;
- `waiting`: `TRAINING_DEBOUNCE_SECONDS=3600` from `beginning`: each automation's version is
  queued, so every tick reads the queue and the store's clock, and decides.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench import _engine, _projects, _store, _time, _zenml_ready, median_ms, percentile, report

VARIANTS: dict[str, tuple[str, dict[str, str]]] = {  # start_from, FIELDs
    "plain": ("now", {}),
    "scheduled": (
        "now",
        {
            "TRAINING_SCHEDULE": "every 1h",
            "INFERENCE_SCHEDULE": "every 1h",
            "TRAINING_DEBOUNCE_SECONDS": "60",
        },
    ),
    "waiting": ("beginning", {"TRAINING_DEBOUNCE_SECONDS": "3600"}),
}


def idle_schedules(counts: tuple[int, ...] = (1, 50), repeat: int = 30) -> None:
    _zenml_ready()
    for transport in ("sqlite", "rest"):
        with _store(transport):
            _projects(max(counts), versions=1)
            for count in counts:
                for variant, (start_from, fields) in VARIANTS.items():
                    _measure(transport, count, variant, start_from, fields, repeat)


def _measure(
    transport: str,
    count: int,
    variant: str,
    start_from: str,
    fields: dict[str, str],
    repeat: int,
) -> None:
    environ = {}
    for index in range(count):
        prefix = f"AUTOPILOT_AUTOMATIONS__P{index}__"
        environ[f"{prefix}DATASET_NAMES"] = f"dataset_{index}"
        environ[f"{prefix}MODEL_NAME"] = f"model_{index}"
        environ |= {f"{prefix}{field}": value for field, value in fields.items()}
    engine = _engine(
        Path(tempfile.mkdtemp()),
        environ,
        start_from=start_from,
        reconcile_interval_seconds="3600",
    )
    engine.tick()  # the first tick judges what is there (and queues it, for `waiting`)
    engine.tick()
    queued = sum(1 for a in engine.ledger.execute("SELECT 1 FROM training_queue"))
    samples = _time(engine.tick, repeat)
    gate = _time(lambda: (engine.gate.tick(), engine.inference_schedule.tick()), repeat)
    report(
        bench="idle_tick_schedules",
        transport=transport,
        automations=count,
        variant=variant,
        queued=queued,
        median_ms=median_ms(samples),
        p95_ms=round(percentile(samples, 0.95) * 1000, 2),
        gate_and_schedules_median_ms=median_ms(gate),
        repeat=repeat,
        load=round(os.getloadavg()[0], 2),
    )
    engine.ledger.close()
