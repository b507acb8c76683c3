"""An `every 20s` inference schedule in a real daemon process killed -9 at a fire: every fire
time is acted on once, across the kill. The daemon polls once an hour here, so only the
schedule's own wake-ups make it tick at its fires. (Overlaps and catch-up:
tests/integration/test_schedules.py.)"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from service.faults import CRASH_ENV
from service.ledger import Ledger
from service.stages import gate_ledger
from service.stages.schedules import INFERENCE
from tests.support import PROJECT_ROOT, daemon_settings, wait_for

pytestmark = pytest.mark.e2e
MODEL = "scheduled_model"


def _in_production() -> str:
    from zenml import Model
    from zenml.client import Client
    from zenml.enums import ModelStages

    version = Model(name=MODEL)._get_or_create_model_version()
    Client().update_model_version(MODEL, version.id, stage=ModelStages.PRODUCTION, force=True)
    return str(version.id)


def _completed_by_key() -> Counter[str]:
    from zenml.client import Client

    runs = Client().list_pipeline_runs(size=100, hydrate=True).items
    return Counter(tag.name for run in runs if run.status.value == "completed" for tag in run.tags)


def test_every_fire_is_acted_on_once_across_a_kill_at_a_fire(zenml_store, daemon_factory, tmp_path):
    production = _in_production()
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_POLL_INTERVAL_SECONDS": "3600",  # every tick after the first: a fire's
        "AUTOPILOT_DATASET_NAMES": "scheduled_data",  # never published
        "AUTOPILOT_MODEL_NAME": MODEL,
        "AUTOPILOT_SOURCE_ROOT": str(PROJECT_ROOT / "tests" / "projects" / "scheduled"),
        "AUTOPILOT_INFERENCE_PIPELINE": "scheduled_inference:scheduled_inference",
        "AUTOPILOT_INFERENCE_PARAMETERS": json.dumps({"seconds": 0}),
        "AUTOPILOT_INFERENCE_SCHEDULE": "every 20s",
    }
    crashing = daemon_factory({**environment, CRASH_ENV: "after_fire_recorded"})("crashing.log")
    assert crashing.process.wait(120) == -9, "never reached a fire"
    restarted = daemon_factory(environment)("restarted.log")
    second = restarted.wait_event("schedule.fired", timeout=120)  # the next fire
    wait_for(lambda: _completed_by_key()[second["key"]] == 1, timeout=120, what="its inference")
    assert restarted.stop() == 0

    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    fired = [f for f in gate_ledger.fires(ledger, "default", INFERENCE) if f.outcome == "fired"]
    completed = _completed_by_key()
    assert len(fired) >= 2  # the fire the kill hit, then the next one
    for fire in fired:  # each one claimed its own key, and ran once
        assert fire.key == f"infer:{production}@fire:{gate_ledger.fire_text(fire.fire)}"
        assert completed[fire.key] == 1, fire
    logged = Counter(e["fire"] for d in (crashing, restarted) for e in d.find("schedule.fired"))
    assert set(logged.values()) == {1}  # no fire acted on twice (the kill lost one line)
    inferences = {tag for tag in completed if tag.startswith("infer:")}
    assert inferences == {fire.key for fire in fired}  # and nothing else ran
    # Woken at the fire, not by a poll (the second tick of an hour-long poll interval).
    polls = restarted.find("tick.completed", observed=True)
    assert len(polls) >= 2
