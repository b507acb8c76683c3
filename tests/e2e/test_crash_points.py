"""Kill -9 at every point where a crash could leave partial state, restart, and show the chain
completes with nothing lost and nothing done twice (issue: prove it under faults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.faults import CRASH_ENV, CRASH_POINTS, EVALUATION_CRASH_POINTS, GATE_CRASH_POINTS
from service.ledger import Ledger
from tests.support import Receiver, daemon_settings, wait_for

pytestmark = pytest.mark.e2e
MODEL = "iris_classifier"


def _runs(key: str, status: str | None = None) -> list:
    from zenml.client import Client

    runs = Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items
    return [r for r in runs if status is None or r.status.value == status]


@pytest.mark.parametrize(
    "point", [p for p in CRASH_POINTS if p not in EVALUATION_CRASH_POINTS + GATE_CRASH_POINTS]
)
def test_killed_at_a_crash_point_then_restarted_completes_exactly_once(
    point, zenml_store, daemon_factory, tmp_path
):
    from zenml.client import Client

    client = Client()
    # The promotion's notification: refused (503) while the crashing daemon lives, so only
    # the restarted one can deliver it.
    receiver = Receiver(default=503).start()
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "false",
        "AUTOPILOT_START_FROM": "beginning",  # some points are reached on the very first tick
        "AUTOPILOT_NOTIFY_WEBHOOK_URLS": receiver.url,
        "AUTOPILOT_NOTIFY_RETRY_MAX_BACKOFF_SECONDS": "1",
    }
    crashing = daemon_factory({**environment, CRASH_ENV: point})("crashing.log")
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=41)
    assert crashing.process.wait(180) == -9, f"never reached {point}"
    receiver.default = 200

    restarted = daemon_factory(environment)("restarted.log")
    train_key = f"train:{dataset.training_id}"

    def served():
        production = client.list_model_versions(model=MODEL, stage="production").items
        if len(production) == 1 and _runs(f"infer:{production[0].id}", "completed"):
            return production[0]
        return None

    production = wait_for(served, timeout=240, what=f"the chain to finish after {point}")
    wait_for(receiver.received, timeout=60, what="the promotion's notification")
    assert restarted.stop() == 0
    receiver.stop()

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
    # Logged once, by whichever process carried it out: each log line is flushed as it is
    # written, so a SIGKILL loses none; it is written before the ledger records the decision
    # done (`after_decision_recorded`), and a restart never decides again.
    assert [(e["event"], e["model_version_id"]) for e in decisions] == [
        ("model.promoted", str(production.id))
    ]
    decision = client.get_model_version(MODEL, production.id).run_metadata["autopilot_decision"]
    assert decision["outcome"] == "promoted"
    # Its notification: recorded once (whatever the crash), delivered once, after the restart.
    (notified,) = receiver.events()
    assert (notified["event"], notified["model_version"]["id"]) == (
        "model.promoted",
        str(production.id),
    )
    assert {r.json["id"] for r in receiver.received("any")} == {notified["id"]}
    # The production change is recorded once, with the cursor it moved, whatever the crash.
    ledger = Ledger.reader(Path(environment["AUTOPILOT_STATE_DIR"]) / "ledger.sqlite")
    (change,) = ledger.production_changes("default")
    assert (change.model_version_id, change.changed_by) == (str(production.id), "autopilot")
