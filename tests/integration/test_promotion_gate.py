"""Issue 18's gate and way back, on a real engine and a real store: approval mode (staging, a
newer candidate superseding the one waiting, expiry, a promotion in ZenML taken as an
approval), deploy then infer for each production change (and a schedule's fire or a new
scoring version inferred after the latest deployment, blocked with it), and production rolled
back on its own when the deployment or inference of the daemon's promotion fails for good."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionKind, ActionState
from service.core.approval import APPROVAL_KEY
from service.core.production_history import ROLLBACK_KEY, latest_record
from service.store import DECISION_METADATA_KEY
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import serving

pytestmark = pytest.mark.integration
MODEL = "iris_classifier"
NOWHERE = "http://127.0.0.1:9/hook"  # notifications recorded in the outbox, never delivered


def _state(engine, key):
    action = engine.ledger.action(key)
    return action.state if action else None


def _version(engine, number):
    from zenml.client import Client

    found = Client().list_model_versions(model=MODEL, number=number).items
    return engine.store.model_version(str(found[0].id)) if found else None


def _judged(engine, dataset, number):
    """Train `dataset`, until the model version it made (`number`) is decided."""
    tick_until(engine, lambda: _version(engine, number), f"model version {number}")
    version = _version(engine, number)
    tick_until(engine, lambda: _state(engine, f"promote:{version.id}"), f"{number}'s decision")
    tick_until(
        engine,
        lambda: _state(engine, f"promote:{version.id}") is ActionState.SUCCEEDED,
        f"{number}'s decision carried out",
    )
    return engine.store.model_version(version.id)


def _notified(engine, events):
    """(event, model version id) of the notifications recorded in the outbox, oldest first,
    of these events."""
    rows = engine.ledger.execute("SELECT event, body FROM notifications ORDER BY rowid").fetchall()
    bodies = [(row[0], json.loads(row[1])) for row in rows if row[0] in events]
    return [(event, body["model_version"]["id"]) for event, body in bodies]


def _served_in_order(engine, deploy_key, infer_key):
    """Both succeeded, one run each, the inference started after its deployment ended (in the
    store's clock); the inference pipeline itself fails unless the server serves its version."""
    tick_until(engine, lambda: _state(engine, infer_key) is ActionState.SUCCEEDED, infer_key)
    (deployed,) = runs_for(engine, deploy_key)
    (inferred,) = runs_for(engine, infer_key)
    assert _state(engine, deploy_key) is ActionState.SUCCEEDED
    assert deployed.end_time is not None and inferred.start_time is not None
    assert deployed.end_time <= inferred.start_time, (deploy_key, infer_key)


def test_approval_mode_stages_supersedes_expires_and_takes_a_promotion_in_zenml(
    zenml_store, tmp_path
):
    from zenml.client import Client

    client = Client()
    launch_feature_engineering(random_state=7)  # approved datasets below; none of these
    engine = make_engine(
        tmp_path / "state",
        environ=serving(tmp_path / "serving"),
        promotion_mode="approval",
        approval_timeout_seconds=3600,
        promotion_must_beat_production="false",
        notify_webhook_urls=NOWHERE,
    )

    first = launch_feature_engineering(training_tags=["approved"], random_state=31)
    one = _judged(engine, first, 1)
    assert one.stage == "staging"
    assert one.metadata[DECISION_METADATA_KEY]["outcome"] == "awaiting_approval"
    assert engine.ledger.approval("default", one.id).state == "waiting"
    assert engine.store.production_versions(MODEL) == []
    assert engine.ledger.stint_actions(ActionKind.INFER, one.id) == []  # nothing served

    # A newer candidate passes while the first waits: it takes staging, the first is archived
    # and recorded as superseded by it.
    second = launch_feature_engineering(training_tags=["approved"], random_state=32)
    two = _judged(engine, second, 2)
    assert two.stage == "staging"
    one = engine.store.model_version(one.id)
    assert one.stage == "archived"
    assert one.metadata[APPROVAL_KEY]["outcome"] == "superseded"
    assert one.metadata[APPROVAL_KEY]["superseded_by"] == two.id
    assert engine.ledger.approval("default", one.id).state == "superseded"

    # Not approved within the timeout (the daemon's clock, two hours on): archived, recorded.
    real_clock = engine.context.clock
    engine.context.clock = lambda: real_clock() + 7200
    engine.tick()
    engine.context.clock = real_clock
    two = engine.store.model_version(two.id)
    assert (two.stage, two.metadata[APPROVAL_KEY]["outcome"]) == ("archived", "expired")
    assert engine.ledger.approval("default", two.id).state == "expired"

    # A person promotes the next one in ZenML itself (what `zenml model version update ...
    # --stage production` does): an approval by someone the store does not name; it is
    # deployed, then inferred, once.
    third = launch_feature_engineering(training_tags=["approved"], random_state=33)
    three = _judged(engine, third, 3)
    assert three.stage == "staging"
    client.update_model_version(MODEL, UUID(three.id), stage="production", force=True)
    _served_in_order(engine, f"deploy:{three.id}", f"infer:{three.id}")
    approval = engine.ledger.approval("default", three.id)
    assert (approval.state, approval.by, approval.details["via"]) == ("approved", None, "zenml")
    recorded = engine.store.model_version(three.id).metadata
    assert recorded[APPROVAL_KEY]["outcome"] == "approved" and recorded[APPROVAL_KEY]["by"] is None
    record = latest_record(recorded)
    assert (record.seq, record.stint, record.changed_by) == (1, 1, "approval")
    (change,) = engine.ledger.production_changes("default")
    assert (change.model_version_id, change.changed_by) == (three.id, "approval")

    for _ in range(3):  # nothing more, however often it looks
        engine.tick()
    assert [len(runs_for(engine, f"{k}:{three.id}")) for k in ("deploy", "infer")] == [1, 1]
    # People are told: each wait, its expiry and the approval, once (a superseded wait is
    # followed by the newer one's).
    gate = {"model.awaiting_approval", "model.approval_expired", "model.approved"}
    assert _notified(engine, gate) == [
        ("model.awaiting_approval", one.id),
        ("model.awaiting_approval", two.id),
        ("model.approval_expired", two.id),
        ("model.awaiting_approval", three.id),
        ("model.approved", three.id),
    ]
    for version in (one, two):
        assert engine.ledger.stint_actions(ActionKind.INFER, version.id) == []
        assert engine.ledger.stint_actions(ActionKind.DEPLOY, version.id) == []


def test_a_failed_inference_or_deployment_of_its_own_promotion_rolls_production_back(
    zenml_store, tmp_path
):
    """ROLLBACK_ON_FAILURE: version 2's inference fails for good, then version 3's deployment
    does (its inference, blocked, never runs); each time production goes back to version 1,
    exactly as recorded, and version 1 is deployed and inferred again in each new stint."""
    launch_feature_engineering(random_state=7)
    engine = make_engine(
        tmp_path / "state",
        environ=serving(tmp_path / "serving", refuse_deploy="3", refuse_infer="2"),
        rollback_on_failure="true",
        promotion_must_beat_production="false",
        max_attempts=1,
        notify_webhook_urls=NOWHERE,
    )
    first = launch_feature_engineering(training_tags=["approved"], random_state=41)
    one = _judged(engine, first, 1)
    _served_in_order(engine, f"deploy:{one.id}", f"infer:{one.id}")

    second = launch_feature_engineering(training_tags=["approved"], random_state=42)
    two = _judged(engine, second, 2)
    tick_until(engine, lambda: _state(engine, f"infer:{two.id}") is ActionState.FAILED, "2 fails")
    failed_run = engine.ledger.action(f"infer:{two.id}").run_id
    _served_in_order(engine, f"deploy:{one.id}@2", f"infer:{one.id}@2")
    assert [v.id for v in engine.store.production_versions(MODEL)] == [one.id]
    two = engine.store.model_version(two.id)
    assert two.stage == "archived"
    assert two.metadata[ROLLBACK_KEY]["1"]["to"] == one.id
    back = latest_record(engine.store.model_version(one.id).metadata)
    assert (back.stint, back.changed_by, back.by) == (2, "rollback", "autopilot")
    assert (back.rolled_back_from, back.failed_run_id) == (two.id, failed_run)

    third = launch_feature_engineering(training_tags=["approved"], random_state=43)
    three = _judged(engine, third, 3)
    tick_until(
        engine,
        lambda: _state(engine, f"deploy:{three.id}") is ActionState.FAILED,
        "3's deployment fails",
    )
    _served_in_order(engine, f"deploy:{one.id}@3", f"infer:{one.id}@3")
    blocked = engine.ledger.action(f"infer:{three.id}")
    assert blocked.state is ActionState.FAILED
    assert blocked.details["blocked_by"] == f"deploy:{three.id}"
    assert runs_for(engine, f"infer:{three.id}") == []  # never launched
    again = latest_record(engine.store.model_version(one.id).metadata)
    assert (again.stint, again.rolled_back_from) == (3, three.id)
    assert again.seq == back.seq + 2  # 3's promotion between the two rollbacks

    changes = [
        (c.model_version_id, c.changed_by) for c in engine.ledger.production_changes("default")
    ]
    assert changes == [
        (one.id, "rollback"),
        (three.id, "autopilot"),
        (one.id, "rollback"),
        (two.id, "autopilot"),
        (one.id, "autopilot"),
    ]
    for _ in range(3):
        engine.tick()
    assert [v.id for v in engine.store.production_versions(MODEL)] == [one.id]  # stays there
    for key in (f"infer:{one.id}", f"infer:{one.id}@2", f"infer:{one.id}@3", f"infer:{two.id}"):
        assert len(runs_for(engine, key)) == 1, key
    # People are told what failed and that production went back, each once.
    failures = {"inference.failed", "deployment.failed", "model.rolled_back"}
    assert _notified(engine, failures) == [
        ("inference.failed", two.id),
        ("model.rolled_back", one.id),
        ("deployment.failed", three.id),
        ("model.rolled_back", one.id),
    ]


def test_a_version_served_before_production_records_is_served_again_when_it_returns(
    zenml_store, tmp_path
):
    """A ledger and a store from before production records (the inference keyed
    `infer:<id>`, nothing on the versions): nothing is redone on upgrade, and a version that
    returns to production is served again, as `@2`; a version new to production gets the
    keys it always had."""
    import sqlite3
    from pathlib import Path

    from zenml.client import Client

    client = Client()
    client.create_model(MODEL)
    one, two = (client.create_model_version(MODEL, name=f"hand-made-{n}") for n in (1, 2))
    environ = serving(tmp_path / "serving")
    engine = make_engine(tmp_path / "state", environ=environ, start_from="now")
    client.update_model_version(MODEL, one.id, stage="production")
    _served_in_order(engine, f"deploy:{one.id}", f"infer:{one.id}")

    # As a daemon from before records left them: no record on the version, none in the ledger.
    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as db:
        records = "SELECT id FROM run_metadata WHERE key = 'autopilot_production'"
        db.execute(f"DELETE FROM run_metadata_resource WHERE run_metadata_id IN ({records})")
        db.execute("DELETE FROM run_metadata WHERE key = 'autopilot_production'")
    engine.ledger.delete_meta("production_seen/default")
    engine.executor.close()
    engine = make_engine(tmp_path / "state", environ=environ, start_from="now")
    for _ in range(3):
        engine.tick()
    assert [len(runs_for(engine, f"{k}:{one.id}")) for k in ("deploy", "infer")] == [1, 1]
    assert engine.ledger.stint_actions(ActionKind.INFER, str(one.id))[-1].key == f"infer:{one.id}"

    client.update_model_version(MODEL, two.id, stage="production", force=True)
    _served_in_order(engine, f"deploy:{two.id}", f"infer:{two.id}")
    client.update_model_version(MODEL, one.id, stage="production", force=True)
    _served_in_order(engine, f"deploy:{one.id}@2", f"infer:{one.id}@2")
    returned = latest_record(engine.store.model_version(str(one.id)).metadata)
    assert (returned.seq, returned.stint, returned.changed_by) == (2, 2, "external")
    assert returned.previous_version_id == str(two.id)
    for _ in range(3):
        engine.tick()
    for key in (f"infer:{one.id}", f"infer:{two.id}", f"infer:{one.id}@2"):
        assert len(runs_for(engine, key)) == 1, key


def test_a_rollback_to_a_named_version_from_the_store_alone(zenml_store, tmp_path):
    """`autopilot rollback MODEL --to VERSION` over the store (what the command runs, no
    ledger): production goes to that version, not to the one before; the version it leaves is
    archived with the rollback recorded on it; the daemon serves the restored version again,
    in its new stint, once. `--dry-run` first: nothing changes."""
    from zenml.client import Client

    from service import review

    client = Client()
    client.create_model(MODEL)
    one, two, three = (client.create_model_version(MODEL, name=f"v{n}") for n in (1, 2, 3))
    engine = make_engine(
        tmp_path / "state", environ=serving(tmp_path / "serving"), start_from="now"
    )
    for version in (one, two, three):  # each made production by a person, in ZenML
        client.update_model_version(MODEL, version.id, stage="production", force=True)
        _served_in_order(engine, f"deploy:{version.id}", f"infer:{version.id}")

    dry = review.rollback(engine.store, MODEL, "1", "dana", "bad batch", dry_run=True)
    assert dry["outcome"] == "would_roll_back"
    assert [v.id for v in engine.store.production_versions(MODEL)] == [str(three.id)]
    done = review.rollback(engine.store, MODEL, "1", "dana", "bad batch")
    assert done["outcome"] == "rolled_back"
    assert [v.id for v in engine.store.production_versions(MODEL)] == [str(one.id)]
    left = engine.store.model_version(str(three.id))
    assert left.stage == "archived"
    assert (left.metadata[ROLLBACK_KEY]["1"]["to"], left.metadata[ROLLBACK_KEY]["1"]["by"]) == (
        str(one.id),
        "dana",
    )
    record = latest_record(engine.store.model_version(str(one.id)).metadata)
    assert (record.stint, record.changed_by, record.rolled_back_from) == (
        2,
        "rollback",
        str(three.id),
    )
    _served_in_order(engine, f"deploy:{one.id}@2", f"infer:{one.id}@2")
    for _ in range(3):
        engine.tick()
    assert len(runs_for(engine, f"infer:{one.id}@2")) == 1
    assert runs_for(engine, f"infer:{two.id}@2") == []


def test_a_scheduled_inference_runs_after_the_deployment_and_is_blocked_with_it(
    zenml_store, tmp_path
):
    """An INFERENCE_SCHEDULE fire in an automation that deploys: its inference runs after the
    production version's deployment, as the production change's own does; that deployment
    failing for good blocks both, neither launched (the inference pipeline would fail anyway,
    as the server does not serve the version)."""
    from zenml.client import Client

    from tests.integration.engine_harness import ManualClock

    client = Client()
    client.create_model(MODEL)
    one = client.create_model_version(MODEL, name="v1")
    clock = ManualClock()
    engine = make_engine(
        tmp_path / "state",
        environ=serving(tmp_path / "serving", refuse_deploy="1"),
        clock=clock,
        start_from="now",
        inference_schedule="every 20s",
        max_attempts=1,
    )
    client.update_model_version(MODEL, one.id, stage="production", force=True)
    deploy = f"deploy:{one.id}"
    engine.tick()  # the production change: its deployment launched, its inference after it
    clock.to_next_fire(20)  # then a fire of the schedule
    tick_until(engine, lambda: _state(engine, deploy) is ActionState.FAILED, "the deployment")
    scheduled = [a for a in engine.ledger.stint_actions(ActionKind.INFER, str(one.id))]
    (fired,) = [a for a in engine.ledger.actions_for_subject(str(one.id)) if "@fire:" in a.key]
    assert fired.details["after"] == deploy
    for _ in range(3):
        engine.tick()
    for key in (f"infer:{one.id}", fired.key):
        action = engine.ledger.action(key)
        assert (action.state, action.details["blocked_by"]) == (ActionState.FAILED, deploy), key
        assert runs_for(engine, key) == [], key  # never launched
    assert [a.key for a in scheduled] == [f"infer:{one.id}"]  # a fire is not a stint


def test_a_scoring_version_is_scored_after_the_deployment_and_blocked_with_it(
    zenml_store, tmp_path, capsys
):
    """With scoring datasets, in an automation that deploys: a production change before any
    scoring version is selected still deploys (nothing to score: no inference claimed); a
    scoring version selected while that deployment is pending is scored after it succeeded;
    one selected while a deployment that fails for good is pending is failed with it (blocked),
    never launched, as the production change's own inference. Each production change and
    scoring version is seen in one tick (production before datasets): the deployment is
    claimed, not yet launched, when the scoring version is selected."""
    from zenml import save_artifact
    from zenml.client import Client

    client = Client()
    client.create_model(MODEL)
    one, two = (client.create_model_version(MODEL, name=f"v{n}") for n in (1, 2))
    engine = make_engine(
        tmp_path / "state",
        environ=serving(tmp_path / "serving", refuse_deploy="2"),
        start_from="now",
        scoring_dataset_names="rows_to_score",
        max_attempts=1,
    )

    def score_in_one_tick(version, batch):
        """`version` to production and a scoring version saved, both seen in one tick."""
        client.update_model_version(MODEL, version.id, stage="production", force=True)
        scoring = str(save_artifact(batch, name="rows_to_score").id)
        capsys.readouterr()
        engine.tick()
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return scoring, {e["event"]: e for e in events if e.get("event")}

    # Version 1 to production before any scoring version: deployed all the same, no inference.
    first, events = score_in_one_tick(one, "batch 1")
    deploy, score = f"deploy:{one.id}", f"infer:{one.id}@score:{first}"
    assert events["inference.nothing_to_score"]["model_version_id"] == str(one.id)
    assert _state(engine, f"infer:{one.id}") is None
    assert _state(engine, deploy) in (ActionState.PENDING, ActionState.RUNNING)
    assert engine.ledger.action(score).details["after"] == deploy
    _served_in_order(engine, deploy, score)  # the inference fails unless version 1 is served

    # Version 2, whose deployment fails for good: its inference and the scoring are blocked.
    second, _ = score_in_one_tick(two, "batch 2")
    deploy, score = f"deploy:{two.id}", f"infer:{two.id}@score:{second}"
    assert engine.ledger.action(f"infer:{two.id}").details["scoring_dataset_version_id"] == first
    assert engine.ledger.action(score).details["after"] == deploy
    tick_until(engine, lambda: _state(engine, deploy) is ActionState.FAILED, "2's deployment")
    for _ in range(3):
        engine.tick()
    for key in (f"infer:{two.id}", score):
        action = engine.ledger.action(key)
        assert (action.state, action.details["blocked_by"]) == (ActionState.FAILED, deploy), key
        assert runs_for(engine, key) == [], key  # never launched
