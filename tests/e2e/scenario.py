"""The end-to-end scenario, shared by the embedded-store and the ZenML-server tests.

It drives the daemon only through ZenML's public API and reads only the daemon's JSON log:
what a user sees. It ends by restarting the daemon and showing that nothing runs twice.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from pipelines.feature_engineering import launch_feature_engineering
from tests.support import DaemonProcess, http_get, http_get_text, wait_for

MODEL = "iris_classifier"
StartDaemon = Callable[[str], DaemonProcess]


def _count_runs(key: str) -> int:
    from zenml.client import Client

    return len(Client().list_pipeline_runs(tags=f"equals:{key}").items)


def the_whole_chain_exactly_once_across_a_restart(start_daemon: StartDaemon) -> None:
    from zenml import add_tags
    from zenml.client import Client

    client = Client()
    daemon = start_daemon("daemon.log")
    daemon.wait_event("daemon.started", timeout=90)
    port = daemon.environment["AUTOPILOT_HTTP_PORT"]
    wait_for(lambda: daemon.find("tick.completed"), timeout=30, what="a first poll")
    assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    assert http_get(f"http://127.0.0.1:{port}/readyz") == (200, {"ok": True, "store_error": None})

    # An approved, good dataset: one training, a promotion, one inference on that version.
    good = launch_feature_engineering(training_tags=["approved"], random_state=11)
    good_key = f"train:{good.training_id}"
    daemon.wait_event("training.succeeded", key=good_key)
    promoted = daemon.wait_event("model.promoted", dataset_version_id=str(good.training_id))
    good_mv = promoted["model_version_id"]
    daemon.wait_event("inference.succeeded", key=f"infer:{good_mv}")
    production = client.get_model_version(MODEL, "production")
    assert str(production.id) == good_mv
    metrics = http_get_text(f"http://127.0.0.1:{port}/metrics")
    assert 'autopilot_actions_total{kind="train",outcome="succeeded"} 1.0' in metrics
    assert 'autopilot_actions_total{kind="promote",outcome="promoted"} 1.0' in metrics
    assert "autopilot_poll_duration_seconds_count" in metrics
    spares = daemon.environment.get("AUTOPILOT_MAX_CONCURRENT_RUNS", "2")
    wait_for(
        lambda: (
            f"autopilot_warm_workers {float(spares)}"
            in http_get_text(f"http://127.0.0.1:{port}/metrics")
        ),
        timeout=120,
        what="the spare workers warm again",
    )
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
    late = daemon.wait_event("model.rejected", dataset_version_id=str(unapproved.training_id))
    assert late["reason"] == "not_better_than_production"

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
    restarted.wait_event("daemon.started", timeout=90)
    wait_for(lambda: len(restarted.find("tick.completed")) >= 6, timeout=60, what="six ticks")
    assert restarted.stop() == 0
    for event in ("training.launched", "inference.launched", "model.promoted", "model.rejected"):
        assert restarted.find(event) == [], event
    assert {key: _count_runs(key) for key in trained + served} == counts_before
    assert len(client.list_model_versions(model=MODEL).items) == versions_before

    # The daemon's stdout is its structured log and nothing else.
    assert [e for e in daemon.events() if e["event"] == "<not json>"] == []
