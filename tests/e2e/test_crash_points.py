"""Kill -9 at every point where a crash could leave partial state, restart, and show the chain
completes with nothing lost and nothing done twice (issue: prove it under faults)."""

from __future__ import annotations

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.faults import CRASH_ENV, CRASH_POINTS, EVALUATION_CRASH_POINTS
from tests.support import daemon_settings, wait_for

pytestmark = pytest.mark.e2e
MODEL = "iris_classifier"


def _runs(key: str, status: str | None = None) -> list:
    from zenml.client import Client

    runs = Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items
    return [r for r in runs if status is None or r.status.value == status]


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p not in EVALUATION_CRASH_POINTS])
def test_killed_at_a_crash_point_then_restarted_completes_exactly_once(
    point, zenml_store, daemon_factory, tmp_path
):
    from zenml.client import Client

    client = Client()
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "false",
        "AUTOPILOT_START_FROM": "beginning",  # some points are reached on the very first tick
    }
    crashing = daemon_factory({**environment, CRASH_ENV: point})("crashing.log")
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=41)
    assert crashing.process.wait(180) == -9, f"never reached {point}"

    restarted = daemon_factory(environment)("restarted.log")
    train_key = f"train:{dataset.training_id}"

    def served():
        production = client.list_model_versions(model=MODEL, stage="production").items
        if len(production) == 1 and _runs(f"infer:{production[0].id}", "completed"):
            return production[0]
        return None

    production = wait_for(served, timeout=240, what=f"the chain to finish after {point}")
    assert restarted.stop() == 0

    assert len(_runs(train_key, "completed")) == 1
    assert len(_runs(f"infer:{production.id}", "completed")) == 1
    assert len(client.list_model_versions(model=MODEL).items) == 1  # trained once
    assert len(client.list_model_versions(model=MODEL, stage="production").items) == 1
    decisions = [
        e
        for d in (crashing, restarted)
        for e in d.events()
        if e["event"] in ("model.promoted", "model.rejected")
    ]
    assert len(decisions) <= 1  # a crash may lose a log line, never double a decision
    decision = client.get_model_version(MODEL, production.id).run_metadata["autopilot_decision"]
    assert decision["outcome"] == "promoted"
