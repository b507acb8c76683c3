"""Inference schedules (issue 20, section 2) on a real store with real inference runs, the
daemon's clock moved by the test: a fire while the previous fire's inference still runs is
skipped and recorded; after a 70 s stop, `SCHEDULE_CATCHUP=latest` runs the last missed fire
once and `none` runs none. (Each fire exactly once across a kill -9, and the daemon woken at its
fires: tests/e2e/test_schedules.py.)"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.actions import ActionState
from service.core.records import RunStatus
from service.operations import status
from service.stages import gate_ledger
from service.stages.schedules import INFERENCE
from tests.integration.engine_harness import (
    ManualClock,
    make_engine,
    restarted,
    runs_for,
    tick_until,
)
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.integration

SCHEDULED_ROOT = PROJECT_ROOT / "tests" / "projects" / "scheduled"
AUTOMATIONS = {"late": "latest", "never": "none"}  # their SCHEDULE_CATCHUP
RUN_SECONDS = 2  # each inference: still going at the tick right after its launch


def _environ() -> dict[str, str]:
    environ = {}
    for name, catchup in AUTOMATIONS.items():
        prefix = f"AUTOPILOT_AUTOMATIONS__{name.upper()}__"
        environ |= {
            f"{prefix}DATASET_NAMES": f"{name}_data",  # never published
            f"{prefix}MODEL_NAME": f"{name}_model",
            f"{prefix}SOURCE_ROOT": str(SCHEDULED_ROOT),
            f"{prefix}INFERENCE_PIPELINE": "scheduled_inference:scheduled_inference",
            f"{prefix}INFERENCE_PARAMETERS": json.dumps({"seconds": RUN_SECONDS}),
            f"{prefix}INFERENCE_SCHEDULE": "every 20s",
            f"{prefix}SCHEDULE_CATCHUP": catchup,
        }
    return environ


def _in_production(model: str) -> str:
    from zenml import Model
    from zenml.client import Client
    from zenml.enums import ModelStages

    version = Model(name=model)._get_or_create_model_version()
    Client().update_model_version(model, version.id, stage=ModelStages.PRODUCTION, force=True)
    return str(version.id)


def _fire(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(model_version: str, fire: float) -> str:
    return f"infer:{model_version}@fire:{_fire(fire)}"


def _completed(engine: Any, key: str) -> int:
    return sum(run.status is RunStatus.SUCCEEDED for run in runs_for(engine, key))


def _fires(engine: Any, automation: str) -> list[tuple[str, str, str | None, int]]:
    return [
        (gate_ledger.fire_text(f.fire), f.outcome, f.reason, f.missed)
        for f in gate_ledger.fires(engine.ledger, automation, INFERENCE)
    ]


def test_an_overlapping_fire_is_skipped_and_missed_fires_are_caught_up_once_or_not_at_all(
    zenml_store, tmp_path
):
    production = {name: _in_production(f"{name}_model") for name in AUTOMATIONS}
    state_dir = tmp_path / "state"
    first_fire = (time.time() // 20 + 1) * 20
    clock = ManualClock(first_fire - 19)  # just after a fire: nothing is due at start
    engine = make_engine(state_dir, environ=_environ(), clock=clock, start_from="now")
    engine.tick()
    assert engine.ledger.actions_in(ActionState.PENDING, ActionState.RUNNING) == []

    clock.now = first_fire + 0.5
    engine.tick()  # both fire, pinned to production
    first = {name: _key(production[name], first_fire) for name in AUTOMATIONS}
    assert {engine.ledger.action(key).state for key in first.values()} == {ActionState.RUNNING}
    clock.now = first_fire + 20.5
    engine.tick()  # the inferences still run: the fire is skipped as an overlap
    assert {engine.ledger.action(key).state for key in first.values()} == {ActionState.RUNNING}
    tick_until(
        engine,
        lambda: all(engine.ledger.action(k).state is ActionState.SUCCEEDED for k in first.values()),
        "the first fires' inferences",
    )

    # Stopped for 70 s: the fires at +40, +60 and +80 fall while the daemon is down.
    clock.now = first_fire + 90.5
    engine = restarted(engine)
    caught_up = _key(production["late"], first_fire + 80)
    tick_until(
        engine,
        lambda: (a := engine.ledger.action(caught_up)) and a.state is ActionState.SUCCEEDED,
        "the caught-up fire's inference",
    )
    for _ in range(3):
        engine.tick()

    assert _fires(engine, "late") == [
        (_fire(first_fire + 80), "fired", None, 2),  # the latest missed one, once
        (_fire(first_fire + 20), "skipped", "overlap", 0),
        (_fire(first_fire), "fired", None, 0),
    ]
    assert _fires(engine, "never") == [
        (_fire(first_fire + 80), "missed", None, 3),  # none of them
        (_fire(first_fire + 20), "skipped", "overlap", 0),
        (_fire(first_fire), "fired", None, 0),
    ]
    for name in AUTOMATIONS:  # one completed run per fire acted on, none for the others
        assert _completed(engine, first[name]) == 1
        assert runs_for(engine, _key(production[name], first_fire + 40)) == []
        assert runs_for(engine, _key(production[name], first_fire + 60)) == []
    assert _completed(engine, caught_up) == 1
    assert runs_for(engine, _key(production["never"], first_fire + 80)) == []
    # the run was pinned to the production version
    (run,) = runs_for(engine, caught_up)
    assert run.model_version_id == production["late"]
    shown = {(s["automation"], s["schedule"]): s for s in status(engine.ledger)["schedules"]}
    assert shown[("late", INFERENCE)]["last_fires"][1]["reason"] == "overlap"
