"""Champion against challenger on a real embedded store, with real runs of the example
project's evaluation pipeline (examples/diabetes): candidates are compared with production on
the same holdout, not on the metric each training measured on its own test split."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest

from service import operations
from service.core.actions import ActionState
from service.engine import Autopilot
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import (
    diabetes_automation,
    diabetes_evaluation,
    publish_diabetes,
    publish_diabetes_holdout,
)

pytestmark = pytest.mark.integration
MODEL = "diabetes_regressor"


def _decided(engine: Autopilot, train_id: str) -> dict[str, Any] | None:
    """The carried-out decision on the version trained on this dataset, with its id."""
    training = engine.ledger.action(f"train:diabetes:{train_id}")
    if training is None or training.run_id is None:
        return None
    run = engine.store.run(training.run_id)
    version_id = run.model_version_id if run else None
    promotion = engine.ledger.action(f"promote:{version_id}")
    if promotion is None or promotion.state is not ActionState.SUCCEEDED:
        return None
    return {**promotion.details["decision"], "model_version_id": version_id}


def _promotion_of(engine: Autopilot, train_id: str) -> Any:
    """The promotion action of the version trained on this dataset, once claimed."""
    training = engine.ledger.action(f"train:diabetes:{train_id}")
    run = engine.store.run(training.run_id) if training and training.run_id else None
    return engine.ledger.action(f"promote:{run.model_version_id}") if run else None


def _completed(engine: Autopilot, key: str) -> int:
    return sum(run.status.value == "succeeded" for run in runs_for(engine, key))


def test_candidates_are_compared_with_production_on_the_same_holdout(zenml_store, tmp_path):
    from zenml.client import Client

    client = Client()
    holdout = publish_diabetes_holdout()["holdout_id"]
    automation = diabetes_automation(**diabetes_evaluation(PROMOTION_MIN_IMPROVEMENT="1"))
    notified = {"AUTOPILOT_NOTIFY_WEBHOOK_URLS": "http://127.0.0.1:9/hook"}  # recorded, not sent
    engine = make_engine(tmp_path / "state", environ={**automation, **notified}, max_attempts=1)

    # The first version: nothing to beat, its own evaluation decides.
    clean = publish_diabetes(random_state=0)
    first = tick_until(engine, lambda: _decided(engine, clean["train_id"]), "the first decision")
    assert first["outcome"] == "promoted", first
    assert first["reason"] == "clears_threshold"
    evaluation = first["evaluation"]
    assert evaluation["dataset_version_id"] == holdout
    assert first["value"] == evaluation["candidate_value"] != evaluation["candidate_training_value"]
    champion = first["model_version_id"]

    # Better on its own (luckier) test split, worse on the holdout: rejected, saying so.
    lucky = publish_diabetes(random_state=25, noise=0.3)
    second = tick_until(engine, lambda: _decided(engine, lucky["train_id"]), "the second one")
    evaluation = second["evaluation"]
    # A daemon comparing the training metrics would have promoted it.
    assert evaluation["candidate_training_value"] < evaluation["production_training_value"]
    assert second["outcome"] == "rejected", second
    assert second["reason"] == "not_better_than_production"
    assert second["value"] > second["production_value"]  # rmse: lower is better
    assert second["production_version_id"] == evaluation["production_version_id"] == champion
    assert "on their own test splits the candidate looked better" in second["detail"]
    assert "diabetes_holdout" in second["detail"]

    # Better on the holdout by less than PROMOTION_MIN_IMPROVEMENT: rejected. Production's
    # score on this holdout is reused, not run again.
    close = publish_diabetes(random_state=16)
    third = tick_until(engine, lambda: _decided(engine, close["train_id"]), "the third one")
    assert third["outcome"] == "rejected", third
    assert third["reason"] == "below_min_improvement"
    assert 0 < third["production_value"] - third["value"] < 1
    assert third["evaluation"]["production_run_id"] == second["evaluation"]["production_run_id"]

    # Counted in the store: one completed run per evaluation, production's once for both.
    keys = [f"evaluate:{d['model_version_id']}@{holdout}" for d in (first, second, third)]
    assert {key: _completed(engine, key) for key in keys} == dict.fromkeys(keys, 1)
    assert client.get_model_version(MODEL, "production").id == UUID(champion)

    # Production changes while a candidate is being evaluated (a person promotes the rejected
    # version): the new production version is compared on the same holdout, its score reused.
    better = publish_diabetes(random_state=8)
    promotion = tick_until(
        engine, lambda: _promotion_of(engine, better["train_id"]), "the fourth one evaluating"
    )
    assert promotion.details["phase"] == "evaluating"
    # Tied to its dataset and training run, as every promotion is (the status page's chains).
    assert promotion.details["dataset_version_id"] == better["train_id"]
    assert promotion.details["training_run_id"] is not None
    client.update_model_version(
        MODEL, UUID(second["model_version_id"]), stage="production", force=True
    )
    fourth = tick_until(engine, lambda: _decided(engine, better["train_id"]), "the fourth one")
    assert fourth["outcome"] == "promoted", fourth
    assert fourth["reason"] == "clears_threshold_and_beats_production"
    assert fourth["production_version_id"] == second["model_version_id"]
    assert fourth["production_value"] == second["value"]
    assert fourth["evaluation"]["production_run_id"] == second["evaluation"]["candidate_run_id"]

    # A holdout version the evaluation pipeline cannot score (no `target`): the candidate's own
    # evaluation fails for good, so it is rejected, and `evaluation.failed` is notified.
    import pandas as pd
    from zenml import save_artifact

    broken = save_artifact(
        pd.DataFrame({"age": [0.1, 0.2]}), name="diabetes_holdout", tags=["approved"]
    )
    failing = publish_diabetes(random_state=5)
    fifth = tick_until(engine, lambda: _decided(engine, failing["train_id"]), "the fifth one")
    assert fifth["outcome"] == "rejected" and fifth["reason"] == "evaluation_failed", fifth
    assert fifth["evaluation"]["dataset_version_id"] == str(broken.id)
    assert "KeyError" in fifth["detail"] and "target" in fifth["detail"]
    failed_key = f"evaluate:{fifth['model_version_id']}@{broken.id}"
    assert failed_key in fifth["detail"]
    rows = engine.ledger.execute("SELECT event, body FROM notifications").fetchall()
    notified_failures = [json.loads(row[1]) for row in rows if row[0] == "evaluation.failed"]
    assert failed_key in {body["values"]["key"] for body in notified_failures}
    # Each evaluation ran pinned to its version, and the score is the one its run logged.
    for decision, role in ((second, "candidate"), (second, "production")):
        run = client.get_pipeline_run(UUID(decision["evaluation"][f"{role}_run_id"]))
        version = decision["model_version_id"] if role == "candidate" else champion
        assert run.model_version is not None and str(run.model_version.id) == version
        full = client.get_pipeline_run(run.id, include_full_metadata=True)
        assert full.run_metadata["score_model::rmse"] == decision["evaluation"][f"{role}_value"]
    # The decision on the version in the store carries both values and both runs.
    recorded = client.get_model_version(MODEL, UUID(second["model_version_id"]))
    assert recorded.run_metadata["autopilot_decision"]["evaluation"] == second["evaluation"]

    # `explain` shows the evaluations of a version and the values its decision was made on.
    explained = operations.explain(engine.ledger, second["model_version_id"])
    by_key = {a["key"]: a for a in explained["actions"]}
    assert by_key[keys[1]]["state"] == "succeeded"
    assert by_key[keys[1]]["evaluation_dataset_version_id"] == holdout
    assert (
        by_key[f"promote:{second['model_version_id']}"]["evaluation"]["candidate"]["key"]
        == (keys[1])
    )


def test_in_approval_mode_a_candidate_is_staged_only_after_its_evaluations(zenml_store, tmp_path):
    """Evaluation and the human gate together: the policy decides on the evaluated values,
    and only then a passing candidate goes to `staging` and waits; once a person approved
    it, it is the production version the next candidate is compared with on the holdout, its
    score there reused, and a candidate that loses is rejected, never staged."""
    from zenml.client import Client

    from service import review

    client = Client()
    holdout = publish_diabetes_holdout()["holdout_id"]
    automation = diabetes_automation(**diabetes_evaluation(PROMOTION_MODE="approval"))
    engine = make_engine(tmp_path / "state", environ=automation, max_attempts=1)

    clean = publish_diabetes(random_state=0)
    first = tick_until(engine, lambda: _decided(engine, clean["train_id"]), "the first decision")
    assert first["outcome"] == "awaiting_approval", first
    assert first["reason"] == "clears_threshold"
    assert first["evaluation"]["dataset_version_id"] == holdout
    assert first["value"] == first["evaluation"]["candidate_value"]
    champion = first["model_version_id"]
    staged = client.get_model_version(MODEL, UUID(champion))
    assert str(staged.stage) == "staging"
    assert staged.run_metadata["autopilot_decision"]["evaluation"] == first["evaluation"]
    assert client.list_model_versions(model=MODEL, stage="production").items == []

    review.approve(engine.store, MODEL, "staging", "dana", "scored on the holdout")
    tick_until(
        engine,
        lambda: (
            engine.ledger.action(f"infer:{champion}") is not None
            and engine.ledger.action(f"infer:{champion}").state is ActionState.SUCCEEDED
        ),
        "the approved version's inference",
    )
    assert engine.ledger.approval("diabetes", champion).by == "dana"

    lucky = publish_diabetes(random_state=25, noise=0.3)  # better on its own split only
    second = tick_until(engine, lambda: _decided(engine, lucky["train_id"]), "the second one")
    assert second["outcome"] == "rejected" and second["reason"] == "not_better_than_production"
    assert second["production_version_id"] == champion
    # Production's score is the one it got as a candidate: reused, not run again.
    assert second["evaluation"]["production_run_id"] == first["evaluation"]["candidate_run_id"]
    assert _completed(engine, f"evaluate:{champion}@{holdout}") == 1
    assert str(client.get_model_version(MODEL, UUID(second["model_version_id"])).stage) != "staging"
    assert client.get_model_version(MODEL, "production").id == UUID(champion)
