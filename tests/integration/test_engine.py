"""The engine against a real embedded ZenML store, with real pipeline runs in worker processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionState
from service.core.polling import PollGroup, Seen
from service.core.records import ModelVersionInfo, RunInfo, RunStatus
from service.store import DECISION_METADATA_KEY, StoreAdapter
from tests.integration.engine_harness import make_engine, runs_for, tick_until

pytestmark = pytest.mark.integration


def _state(engine, key):
    action = engine.ledger.action(key)
    return action.state if action else None


def _settled(engine, key):
    return _state(engine, key) in (ActionState.SUCCEEDED, ActionState.FAILED)


def test_selected_dataset_is_trained_promoted_and_served_exactly_once(zenml_store, tmp_path):
    from zenml.client import Client

    approved = launch_feature_engineering(training_tags=["approved"], random_state=1)
    unapproved = launch_feature_engineering(random_state=2)
    engine = make_engine(tmp_path / "state")

    train_key = f"train:{approved.training_id}"
    tick_until(engine, lambda: _settled(engine, train_key), "training to finish")
    assert _state(engine, train_key) is ActionState.SUCCEEDED
    assert engine.ledger.action(f"train:{unapproved.training_id}") is None
    assert engine.ledger.subject("default", str(unapproved.training_id)).reason == "missing_tags"

    (training_run,) = runs_for(engine, train_key)
    run = Client().get_pipeline_run(training_run.id)
    inputs = {av.id for step in run.steps.values() for avs in step.inputs.values() for av in avs}
    assert approved.training_id in inputs  # trained on exactly that version

    production = tick_until(
        engine, lambda: engine.store.production_versions("iris_classifier"), "a promotion"
    )
    (version,) = production
    decision = version.metadata[DECISION_METADATA_KEY]
    assert decision["outcome"] == "promoted"
    assert decision["metric"] == "accuracy" and decision["value"] >= 0.9

    infer_key = f"infer:{version.id}"
    tick_until(engine, lambda: _settled(engine, infer_key), "inference to finish")
    assert _state(engine, infer_key) is ActionState.SUCCEEDED
    mv = Client().get_model_version("iris_classifier", version.number)
    assert "predictions" in mv.data_artifact_ids

    for _ in range(5):  # nothing more to do, however often it looks
        engine.tick()
    assert len(runs_for(engine, train_key)) == 1
    assert len(runs_for(engine, infer_key)) == 1
    assert len(Client().list_model_versions(model="iris_classifier").items) == 1

    # What the status page reads: the production change, once, and the chain's links.
    (change,) = engine.ledger.production_changes("default")
    assert (change.model_version_id, change.model_version_number) == (version.id, version.number)
    assert (change.changed_by, change.previous_model_version_id) == ("autopilot", None)
    promotion = engine.ledger.action(f"promote:{version.id}").details
    assert promotion["training_run_id"] == str(training_run.id)
    assert promotion["dataset_version_id"] == str(approved.training_id)
    assert promotion["model_version_number"] == version.number
    assert engine.ledger.action(train_key).details["duration_seconds"] > 0


def test_poor_dataset_is_trained_then_rejected_with_its_reason(zenml_store, tmp_path):
    poor = launch_feature_engineering(training_tags=["approved"], label_noise=0.7, random_state=3)
    engine = make_engine(tmp_path / "state")
    tick_until(engine, lambda: _settled(engine, f"train:{poor.training_id}"), "training")

    def decided():
        versions = list(engine.store.model_versions_after("iris_classifier", 0))
        return versions if versions and DECISION_METADATA_KEY in versions[0].metadata else None

    (version,) = tick_until(engine, decided, "a decision")
    decision = version.metadata[DECISION_METADATA_KEY]
    assert decision["outcome"] == "rejected"
    assert decision["reason"] == "below_threshold"
    assert decision["value"] < 0.9
    assert engine.store.production_versions("iris_classifier") == []


def test_old_version_approved_later_is_trained_then(zenml_store, tmp_path):

    published = launch_feature_engineering(random_state=4)
    engine = make_engine(tmp_path / "state", start_from="now")
    engine.tick()
    key = f"train:{published.training_id}"
    assert engine.ledger.action(key) is None

    from zenml import add_tags

    add_tags(tags=["approved"], artifact_version_id=published.training_id)
    tick_until(engine, lambda: engine.ledger.action(key), "the late approval to be seen")
    tick_until(engine, lambda: _settled(engine, key), "training")
    assert _state(engine, key) is ActionState.SUCCEEDED


def test_start_from_now_skips_existing_selected_versions_and_logs_how_many(
    zenml_store, tmp_path, capsys
):
    existing = launch_feature_engineering(training_tags=["approved"], random_state=5)
    engine = make_engine(tmp_path / "state", start_from="now")
    engine.tick()
    assert engine.ledger.action(f"train:{existing.training_id}") is None
    assert (
        engine.ledger.subject("default", str(existing.training_id)).reason == "predates_start_from"
    )
    assert '"skipped_existing": 1' in capsys.readouterr().out


def test_a_production_version_there_at_first_start_is_recorded_not_served(zenml_store, tmp_path):
    """START_FROM=now: production as found is the starting point (no inference), recorded as
    such, so the status page knows which version and from when it was watched."""
    from zenml.client import Client

    client = Client()
    client.create_model("iris_classifier")
    version = client.create_model_version("iris_classifier", name="hand-made")
    client.update_model_version("iris_classifier", version.id, stage="production")
    engine = make_engine(tmp_path / "state", start_from="now")
    engine.tick()
    (change,) = engine.ledger.production_changes("default")
    assert (change.model_version_id, change.model_version_number) == (
        str(version.id),
        version.number,
    )
    assert (change.changed_by, change.previous_model_version_id) == ("observed_at_start", None)
    assert engine.ledger.action(f"infer:{version.id}") is None


def test_datasets_produced_by_autopilot_runs_are_never_selected(zenml_store, tmp_path):
    ours = launch_feature_engineering(
        training_tags=["approved"], run_tags=["autopilot", "train:someone-else"]
    )
    engine = make_engine(tmp_path / "state")
    engine.tick()
    assert engine.ledger.action(f"train:{ours.training_id}") is None
    assert engine.ledger.subject("default", str(ours.training_id)).reason == "produced_by_autopilot"


def test_malformed_dataset_fails_after_its_retries_with_a_clear_error(zenml_store, tmp_path):
    from zenml import save_artifact

    frame = pd.DataFrame({"sepal length (cm)": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    bad = save_artifact(frame, name="iris_training_dataset", tags=["approved"])
    engine = make_engine(tmp_path / "state", max_attempts=2)
    key = f"train:{bad.id}"
    tick_until(engine, lambda: _settled(engine, key), "the failing training")
    action = engine.ledger.action(key)
    assert action.state is ActionState.FAILED
    assert action.attempts == 2
    assert "target" in action.error
    assert len(runs_for(engine, key)) == 2
    assert all(run.status is RunStatus.FAILED for run in runs_for(engine, key))


def test_run_past_the_timeout_is_stopped_and_counted_failed(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=6)
    engine = make_engine(tmp_path / "state", run_timeout_seconds=1, max_attempts=1)
    key = f"train:{approved.training_id}"
    tick_until(engine, lambda: _settled(engine, key), "the timeout")
    action = engine.ledger.action(key)
    assert action.state is ActionState.FAILED
    assert "timed out" in action.error


def test_bad_metric_on_a_hand_made_model_version_is_rejected_and_recorded(zenml_store, tmp_path):
    from zenml import log_metadata
    from zenml.client import Client

    client = Client()
    client.create_model("iris_classifier")
    version = client.create_model_version("iris_classifier", name="by-hand")
    log_metadata({"accuracy": "excellent"}, model_version_id=version.id)
    engine = make_engine(tmp_path / "state")

    def recorded():
        metadata = client.get_model_version("iris_classifier", version.id).run_metadata
        return metadata.get(DECISION_METADATA_KEY)

    decision = tick_until(engine, recorded, "the decision on a version made by hand", timeout=60)
    assert decision["reason"] == "metric_not_numeric"
    assert engine.store.production_versions("iris_classifier") == []


def test_a_metric_logged_while_the_version_was_being_read_is_used(zenml_store, tmp_path):
    """The daemon lists a model version; its run logs the metric and ends before the daemon
    judges it (a loaded machine hit this): the decision must see the metric."""
    from zenml import log_metadata
    from zenml.client import Client

    client = Client()
    client.create_model("iris_classifier")
    version = client.create_model_version("iris_classifier", name="by-hand")

    class ListedJustBeforeTheMetric(StoreAdapter):
        def model_versions_since(
            self, group: PollGroup, seen: Seen, judged: Callable[[str, str], bool]
        ) -> Iterator[ModelVersionInfo]:
            for listed in list(super().model_versions_since(group, seen, judged)):
                log_metadata({"accuracy": 0.97}, model_version_id=UUID(listed.id))
                # from a finished run, so that it is judged at once
                yield replace(listed, producer=RunInfo(id="its-run", status=RunStatus.SUCCEEDED))

    engine = make_engine(tmp_path / "state", store=ListedJustBeforeTheMetric())

    def recorded():
        metadata = client.get_model_version("iris_classifier", version.id).run_metadata
        return metadata.get(DECISION_METADATA_KEY)

    decision = tick_until(engine, recorded, "the decision", timeout=60)
    assert (decision["outcome"], decision["value"]) == ("promoted", 0.97)


def test_duplicate_production_versions_are_repaired_to_the_latest_promotion(
    zenml_store, tmp_path, capsys
):
    from zenml import log_metadata
    from zenml.client import Client

    client = Client()
    client.create_model("iris_classifier")
    first = client.create_model_version("iris_classifier", name="a")
    second = client.create_model_version("iris_classifier", name="b")
    for version in (first, second):
        log_metadata({"accuracy": 0.5}, model_version_id=version.id)
    engine = make_engine(tmp_path / "state", start_from="now")
    # A person racing the daemon leaves two production versions; ZenML cannot prevent it.
    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE model_version SET stage = 'production', updated = '2026-01-01 10:00:00'"
            " WHERE id = ?",
            (first.id.hex,),
        )
        db.execute(
            "UPDATE model_version SET stage = 'production', updated = '2026-01-01 11:00:00'"
            " WHERE id = ?",
            (second.id.hex,),
        )
    engine.tick()
    production = engine.store.production_versions("iris_classifier")
    assert [v.id for v in production] == [str(second.id)]
    assert "model.production_repaired" in capsys.readouterr().out
    assert client.get_model_version("iris_classifier", first.id).stage == "archived"


def test_manual_promotion_triggers_inference_on_that_version(zenml_store, tmp_path):
    from zenml.client import Client

    launch_feature_engineering(random_state=7)  # an inference dataset to predict on
    engine = make_engine(tmp_path / "state", start_from="now", promotion_threshold=1.5)
    approved = launch_feature_engineering(training_tags=["approved"], random_state=8)
    tick_until(engine, lambda: _settled(engine, f"train:{approved.training_id}"), "training")
    (version,) = tick_until(
        engine, lambda: list(engine.store.model_versions_after("iris_classifier", 0)), "a model"
    )
    tick_until(engine, lambda: engine.ledger.action(f"promote:{version.id}"), "its decision")
    assert engine.store.production_versions("iris_classifier") == []  # threshold 1.5: rejected

    Client().update_model_version("iris_classifier", UUID(version.id), stage="production")
    key = f"infer:{version.id}"
    tick_until(engine, lambda: _settled(engine, key), "inference on the hand-promoted version")
    assert _state(engine, key) is ActionState.SUCCEEDED
    (change,) = engine.ledger.production_changes("default")
    assert (change.model_version_id, change.changed_by) == (version.id, "external")


def test_failing_dataset_does_not_hold_up_the_datasets_behind_it(zenml_store, tmp_path):
    from zenml import save_artifact

    broken = save_artifact(
        pd.DataFrame({"a": [1.0, 2.0]}), name="iris_training_dataset", tags=["approved"]
    )
    good = launch_feature_engineering(training_tags=["approved"], random_state=9)
    engine = make_engine(tmp_path / "state", max_attempts=3, retry_backoff_seconds=30)
    good_key, broken_key = f"train:{good.training_id}", f"train:{broken.id}"
    tick_until(engine, lambda: _settled(engine, good_key), "the good dataset's training")
    assert _state(engine, good_key) is ActionState.SUCCEEDED
    broken_action = engine.ledger.action(broken_key)
    assert broken_action.state in (ActionState.RETRY_WAIT, ActionState.RUNNING)
    assert broken_action.attempts == 1  # still backing off, and nothing waited for it
