"""Champion against challenger with `autopilot run` in its own process: killed (-9) between a
candidate's two evaluations, then restarted, the daemon redoes nothing and decides once."""

from __future__ import annotations

from uuid import UUID

import pytest

from service.faults import CRASH_ENV
from tests.support import (
    daemon_settings,
    diabetes_automation,
    diabetes_evaluation,
    publish_diabetes,
    publish_diabetes_holdout,
    train_diabetes_by_hand,
    wait_for,
)

pytestmark = pytest.mark.e2e
MODEL = "diabetes_regressor"


def _runs(key: str) -> list:
    from zenml.client import Client

    return Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items


def test_a_kill_between_the_two_evaluations_redoes_nothing(zenml_store, daemon_factory, tmp_path):
    from zenml.client import Client

    client = Client()
    holdout = publish_diabetes_holdout()["holdout_id"]
    champion = train_diabetes_by_hand(publish_diabetes(random_state=0))  # a person's production
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        **diabetes_automation(**diabetes_evaluation()),
        "AUTOPILOT_MAX_CONCURRENT_RUNS": "1",  # one evaluation after the other
    }
    crashing = daemon_factory({**environment, CRASH_ENV: "between_evaluations"})("crashing.log")
    wait_for(lambda: crashing.find("tick.completed"), timeout=120, what="a first poll")
    lucky = publish_diabetes(random_state=25, noise=0.3)  # better on its own split only
    assert crashing.process.wait(300) == -9, "never reached between_evaluations"

    # Killed with one evaluation recorded and the other not launched yet.
    (first,) = crashing.find("evaluation.succeeded")
    assert [e["key"] for e in crashing.find("evaluation.launched")] == [first["key"]]
    done_before = first["key"]
    restarted = daemon_factory(environment)("restarted.log")
    rejected = restarted.wait_event(
        "model.rejected", automation="diabetes", dataset_version_id=lucky["train_id"]
    )
    assert restarted.stop() == 0

    candidate = rejected["model_version_id"]
    keys = {f"evaluate:{candidate}@{holdout}", f"evaluate:{champion}@{holdout}"}
    assert done_before in keys
    # Nothing redone: each evaluation ran once in all (the one recorded before the kill was
    # not launched again), the training once, one decision.
    assert {key: len(_runs(key)) for key in keys} == dict.fromkeys(keys, 1)
    assert [r.status.value for key in keys for r in _runs(key)] == ["completed"] * 2
    assert [e["key"] for e in restarted.find("evaluation.launched")] == list(keys - {done_before})
    assert len(_runs(f"train:diabetes:{lucky['train_id']}")) == 1
    decisions = [
        e
        for daemon in (crashing, restarted)
        for e in daemon.events()
        if e["event"] in ("model.promoted", "model.rejected")
    ]
    assert len(decisions) == 1
    recorded = client.get_model_version(MODEL, UUID(candidate)).run_metadata
    decision = recorded["autopilot_decision"]
    assert decision["reason"] == "not_better_than_production", decision
    assert decision["evaluation"]["production_version_id"] == champion
    assert str(client.get_model_version(MODEL, "production").id) == champion
