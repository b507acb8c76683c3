"""6. The idle tick with versions awaiting approval (issue 18, `PROMOTION_MODE=approval`): each
poll reads every waiting version from the store (`stages/approval.py`: the version hydrated,
and the run that made it), so what a tick pays grows with the versions waiting.

Run through `bench/bench.py idle-approvals`. The store holds `count` projects (`_projects`: an
artifact with one approved version made by a pipeline run, and a model with a production
version), and each model a candidate made by a training run of its own (`projects.train`: a
new model version linked to that run, its metric logged on it). One daemon runs 1 or `count`
automations in approval mode (`APPROVAL_TIMEOUT_SECONDS` a day: no wait expires while
measured), all from `now`; the first `waiting` of them stage their candidate the way the
daemon's decision does (`Approvals.stage` moves it to `staging`, its decision is written on
it, `note_waiting` records the wait in the ledger), so every tick looks at that many waiting
versions and decides to wait. ZenML holds one version per stage and model, so N waiting
versions are N models' candidates.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench import _engine, _projects, _store, _time, _zenml_ready, median_ms, percentile, report

CASES = ((1, 0), (1, 1), (50, 0), (50, 10), (50, 50))  # automations, versions waiting
TIMEOUT = "86400"


def idle_approvals(cases: tuple[tuple[int, int], ...] = CASES, repeat: int = 30) -> None:
    _zenml_ready()
    count = max(automations for automations, _ in cases)
    for transport in ("sqlite", "rest"):
        with _store(transport):
            _projects(count, versions=1)
            _candidates(count)
            for automations, waiting in cases:
                _measure(transport, automations, waiting, repeat)


def _candidates(count: int) -> None:
    from projects import train  # bench/projects.py
    from zenml.utils import source_utils

    from bench import ROOT

    source_utils.set_custom_source_root(str(ROOT / "bench"))  # steps load as `projects.*`
    for index in range(count):
        train(index, index % 10)
    _zenml_ready()


def _measure(transport: str, count: int, waiting: int, repeat: int) -> None:
    environ = {}
    for index in range(count):
        prefix = f"AUTOPILOT_AUTOMATIONS__P{index}__"
        environ[f"{prefix}DATASET_NAMES"] = f"dataset_{index}"
        environ[f"{prefix}MODEL_NAME"] = f"model_{index}"
        environ[f"{prefix}PROMOTION_MODE"] = "approval"
        environ[f"{prefix}APPROVAL_TIMEOUT_SECONDS"] = TIMEOUT
    engine = _engine(
        Path(tempfile.mkdtemp()), environ, start_from="now", reconcile_interval_seconds="3600"
    )
    engine.tick()  # the first tick judges what is there
    _stage(engine, waiting)
    engine.tick()
    reads = _counting_reads(engine)
    samples = _time(engine.tick, repeat)
    reads_per_tick = reads["model_version"] / repeat
    reads["model_version"] = 0
    approvals = _time(engine.approvals.tick, repeat)
    still_waiting = len(engine.ledger.approvals_in("waiting"))
    assert still_waiting == waiting, f"{still_waiting} waiting, not {waiting}: measured nothing"
    report(
        bench="idle_tick_approvals",
        transport=transport,
        automations=count,
        waiting=still_waiting,
        median_ms=median_ms(samples),
        p95_ms=round(percentile(samples, 0.95) * 1000, 2),
        approvals_median_ms=median_ms(approvals),
        approvals_p95_ms=round(percentile(approvals, 0.95) * 1000, 2),
        model_version_reads_per_tick=reads_per_tick,
        repeat=repeat,
        load=round(os.getloadavg()[0], 2),
    )
    engine.ledger.close()


def _stage(engine: Any, waiting: int) -> None:
    """Stage the candidate of the first `waiting` automations and record each wait, through
    the daemon's own calls, with a decision as the policy makes it."""
    from service.core.approval import AWAITING_APPROVAL
    from service.core.production_history import utc_now_iso
    from service.core.promotion import decide_promotion

    for automation in list(engine.settings.automations)[:waiting]:
        production = engine.production.current(automation)
        candidate = _newest_version(engine, automation.model_name)
        decision = decide_promotion(candidate, production, automation.promotion).as_metadata()
        decision = {**decision, "outcome": AWAITING_APPROVAL, "staged_at": utc_now_iso()}
        engine.approvals.stage(automation, candidate)
        if "autopilot_decision" not in candidate.metadata:
            engine.store.record_decision(candidate.id, decision)
        engine.approvals.note_waiting(automation, candidate, decision)


def _newest_version(engine: Any, model: str) -> Any:
    from zenml.client import Client

    (newest,) = Client().list_model_versions(model=model, sort_by="desc:number", size=1).items
    return engine.store.model_version(str(newest.id))


def _counting_reads(engine: Any) -> dict[str, int]:
    """Count the store's reads of one model version (what each waiting version costs)."""
    counts = {"model_version": 0}
    read = engine.store.model_version

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts["model_version"] += 1
        return read(*args, **kwargs)

    engine.store.model_version = counted
    return counts
