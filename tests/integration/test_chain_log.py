"""One chain's log read top to bottom tells what happened in the order it happened, against a
real store and real runs."""

from __future__ import annotations

import json

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionState
from service.stages import actions
from tests.integration.engine_harness import make_engine, tick_until

pytestmark = pytest.mark.integration


def _chain(capsys, ids: set[str]) -> list[dict]:
    """The events about one dataset version, its training, its model version and inference."""
    events = []
    for line in capsys.readouterr().out.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        fields = ("key", "dataset_version_id", "model_version_id")
        if isinstance(event, dict) and any(event.get(field) in ids for field in fields):
            events.append(event)
    return events


def test_a_chain_is_logged_in_causal_order_when_a_poll_sees_a_run_before_its_report(
    zenml_store, tmp_path, capsys, monkeypatch
):
    """A poll finds the training run complete (and the model version it made ready to judge)
    while its worker has not reported yet: the version waits for the report, so the training's
    `training.succeeded` comes before the decision on its version. The daemon's own promotion
    says it claimed the inference then; no `inference.already_claimed` follows."""
    monkeypatch.setattr(actions, "LAUNCHER", "tests.support:launch_then_linger")
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=36)
    engine = make_engine(tmp_path / "state")
    (version,) = tick_until(
        engine, lambda: engine.store.production_versions("iris_classifier"), "a promotion"
    )
    train_key, infer_key = f"train:{dataset.training_id}", f"infer:{version.id}"
    tick_until(engine, lambda: engine.ledger.action(infer_key).state is ActionState.SUCCEEDED, "")
    chain = _chain(capsys, {str(dataset.training_id), version.id, train_key, infer_key})
    names = [event["event"] for event in chain]

    expected = [
        "dataset.selected",
        "training.launched",
        "training.succeeded",
        "model.promoted",
        "model.production_changed",
        "inference.launched",
        "inference.succeeded",
    ]
    assert [name for name in names if name in expected] == expected
    assert "inference.already_claimed" not in names
    # The window was there: the version waited for the report (which it reads in full).
    waited = [e for e in chain if e["event"] == "model.waiting"]
    assert "training_run_not_settled" in [e["reason"] for e in waited]
    (trained,) = [e for e in chain if e["event"] == "training.succeeded"]
    assert trained["worker_seconds"] is not None
    (changed,) = [e for e in chain if e["event"] == "model.production_changed"]
    assert (changed["changed_by"], changed["inference_claimed"]) == ("autopilot", "when_promoted")
    assert changed["inference_key"] == infer_key
