"""6. The idle tick with training gates and schedules (issue 20): what a tick pays for them
when nothing is due, and while versions wait at a gate.

Run through `bench/bench.py idle-schedules`. The store holds `count` projects (`_projects`: an
artifact with one approved version made by a pipeline run, and a model with a production
version), and one daemon has an automation per project, in three variants:
- `plain`: no policy, no schedule (the idle tick of section 6);
- `scheduled`: `TRAINING_SCHEDULE=every 1h`, `INFERENCE_SCHEDULE=every 1h` (no fire due while
  measured) and `TRAINING_DEBOUNCE_SECONDS=60`: gated, nothing queued;
- `waiting`: `TRAINING_DEBOUNCE_SECONDS=3600`, one version queued per automation (its row
  written into the ledger, as the dataset watch writes it), so every tick reads the queue and
  the store's clock, and decides to wait.
Every variant starts from `now`, so they differ only by the gate and the schedules.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

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
    "waiting": ("now", {"TRAINING_DEBOUNCE_SECONDS": "3600"}),
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
    engine.tick()  # the first tick judges what is there
    if variant == "waiting":
        _queue_one_each(engine)
    engine.tick()
    queued = sum(1 for _ in engine.ledger.execute("SELECT 1 FROM training_queue"))
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


def _queue_one_each(engine: Any) -> None:
    """Queue each automation's dataset version, created now on the store's clock (a debounce
    of an hour holds it for the whole bench)."""
    from service.stages import gate_ledger

    now = engine.store.store_now()
    for automation in engine.settings.automations:
        (name,) = automation.dataset_names
        for version in engine.store.dataset_versions_with_tags(name, ["approved"]):
            details = {"dataset_version_id": version.id, "artifact": name}
            gate_ledger.queue(engine.ledger, automation.name, version.id, now, details)
