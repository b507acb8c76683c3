"""The whole chain, as a user sees it: `autopilot run` in its own process, driven only through
ZenML's public API, followed through its JSON log, then restarted to show nothing runs twice."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.conftest import ZenMLStore
from tests.support import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e

MODEL = "iris_classifier"


def _count_runs(key: str) -> int:
    from zenml.client import Client

    return len(Client().list_pipeline_runs(tags=f"equals:{key}").items)


@pytest.fixture
def daemon_env(zenml_store: ZenMLStore, tmp_path: Path) -> dict[str, str]:
    return {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_POLL_INTERVAL_SECONDS": "0.5",
        "AUTOPILOT_RECONCILE_INTERVAL_SECONDS": "1",
        "AUTOPILOT_RETRY_BACKOFF_SECONDS": "1",
        "AUTOPILOT_START_FROM": "now",
        "AUTOPILOT_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def start_daemon(daemon_env, tmp_path):
    started: list[DaemonProcess] = []

    def start(log_name: str) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path / log_name, daemon_env).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def test_the_whole_chain_exactly_once_across_a_restart(start_daemon):
    from zenml import add_tags
    from zenml.client import Client

    client = Client()
    daemon = start_daemon("daemon.log")
    daemon.wait_event("daemon.started", timeout=60)

    # An approved, good dataset: one training, a promotion, one inference on that version.
    good = launch_feature_engineering(training_tags=["approved"], random_state=11)
    good_key = f"train:{good.training_id}"
    daemon.wait_event("training.succeeded", key=good_key)
    promoted = daemon.wait_event("model.promoted", dataset_version_id=str(good.training_id))
    good_mv = promoted["model_version_id"]
    daemon.wait_event("inference.succeeded", key=f"infer:{good_mv}")
    production = client.get_model_version(MODEL, "production")
    assert str(production.id) == good_mv
    assert "predictions" in production.data_artifact_ids

    # An unapproved dataset: nothing but a logged skip.
    unapproved = launch_feature_engineering(random_state=12)
    skip = daemon.wait_event("dataset.skipped", dataset_version_id=str(unapproved.training_id))
    assert skip["reason"] == "missing_tags" and skip["missing_tags"] == ["approved"]

    # An approved, poor dataset: trained, then rejected with its reason recorded.
    poor = launch_feature_engineering(training_tags=["approved"], label_noise=0.7, random_state=13)
    rejected = daemon.wait_event("model.rejected", dataset_version_id=str(poor.training_id))
    assert rejected["reason"] == "below_threshold"
    poor_mv = client.get_model_version(MODEL, UUID(rejected["model_version_id"]))
    assert poor_mv.run_metadata["autopilot_decision"]["outcome"] == "rejected"
    assert client.get_model_version(MODEL, "production").id == production.id

    # A person approves the old, unapproved version: it is trained then.
    add_tags(tags=["approved"], artifact_version_id=unapproved.training_id)
    daemon.wait_event("training.succeeded", key=f"train:{unapproved.training_id}")

    # A person promotes the rejected version by hand: inference runs on it.
    client.update_model_version(MODEL, poor_mv.id, stage="production", force=True)
    changed = daemon.wait_event("model.production_changed", model_version_id=str(poor_mv.id))
    assert changed["changed_by"] == "external"
    daemon.wait_event("inference.succeeded", key=f"infer:{poor_mv.id}")

    assert daemon.stop() == 0
    assert daemon.find("daemon.stopped")
    trained = [good_key, f"train:{poor.training_id}", f"train:{unapproved.training_id}"]
    served = [f"infer:{good_mv}", f"infer:{poor_mv.id}"]
    counts_before = {key: _count_runs(key) for key in trained + served}
    assert counts_before == dict.fromkeys(trained + served, 1)
    versions_before = len(client.list_model_versions(model=MODEL).items)
    assert versions_before == 3

    # Restart: it looks again, and does nothing twice.
    restarted = start_daemon("daemon-restarted.log")
    restarted.wait_event("daemon.started", timeout=60)
    wait_for(lambda: len(restarted.find("tick.completed")) >= 6, timeout=60, what="six ticks")
    assert restarted.stop() == 0
    for event in ("training.launched", "inference.launched", "model.promoted", "model.rejected"):
        assert restarted.find(event) == [], event
    assert {key: _count_runs(key) for key in trained + served} == counts_before
    assert len(client.list_model_versions(model=MODEL).items) == versions_before

    # The daemon's stdout is its structured log and nothing else.
    assert [e for e in daemon.events() if e["event"] == "<not json>"] == []
