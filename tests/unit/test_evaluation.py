"""Champion against challenger, the pure part: which versions are evaluated, on which dataset
version, reading the metric out of an evaluation run, and deciding on the evaluated values
(with the minimum improvement, in both goals)."""

import math

import pytest

from service.core.actions import ActionState, parse_action_key
from service.core.evaluation import (
    EvaluationRecord,
    Outcome,
    evaluated_values,
    metric_from_run,
    needs_evaluation,
    open_keys,
    usable_dataset,
)
from service.core.promotion import Goal, PromotionPolicy, PromotionReason, decide_promotion
from service.core.records import RunStatus
from tests.unit.factories import dataset, model_version, run

RMSE = PromotionPolicy("rmse", 64.0, must_beat_production=True, goal=Goal.MINIMIZE)


# -- what is evaluated, on what -------------------------------------------------------------


def test_a_failed_training_or_a_version_already_in_production_needs_no_evaluation():
    production = model_version(stage="production")
    assert not needs_evaluation(model_version(producer=run(RunStatus.FAILED)), None)
    assert not needs_evaluation(production, production)
    rejected = run(tags=frozenset({"autopilot:rejected"}))
    assert not needs_evaluation(model_version(producer=rejected), None)
    assert needs_evaluation(model_version(producer=run()), production)
    assert needs_evaluation(model_version(producer=run()), None)


def test_the_newest_finished_version_is_used_and_one_still_being_produced_is_passed_over():
    going = dataset(producer=run(RunStatus.IN_PROGRESS), number=4)
    failed = dataset(producer=run(RunStatus.FAILED), number=3)
    unreported = dataset(producer=None, from_step=True, number=2)  # a step output, no producer
    done = dataset(producer=run(), number=1)
    by_hand = dataset(producer=None, number=1)
    assert usable_dataset([going, failed, unreported, done, by_hand]) is done
    assert usable_dataset([by_hand, done]) is by_hand
    assert usable_dataset([going, failed]) is None
    assert usable_dataset([]) is None


def test_an_evaluation_is_keyed_by_version_and_dataset_version_and_kept_in_the_details():
    holdout = dataset(number=3)
    candidate, production = model_version(number=2), model_version(number=1)
    record = EvaluationRecord.start(holdout, candidate, production)
    key = parse_action_key(record.candidate.key)
    assert (key.subject_id, key.qualifier) == (candidate.id, holdout.id)
    assert record.production is not None and record.production.model_version_id == production.id
    assert EvaluationRecord.from_details(record.as_details()) == record
    newer = model_version(number=3)
    moved = record.against(newer)
    assert moved.candidate == record.candidate and moved.dataset_version_id == holdout.id
    assert moved.production is not None and moved.production.model_version_id == newer.id
    assert record.against(None).sides == (record.candidate,)


def test_a_promotion_waits_until_each_of_its_evaluations_ended():
    record = EvaluationRecord.start(dataset(), model_version(number=2), model_version(number=1))
    both = [s.key for s in record.sides]
    assert open_keys(record, {}) == both
    running = {both[0]: ActionState.SUCCEEDED, both[1]: ActionState.RETRY_WAIT}
    assert open_keys(record, running) == [both[1]]
    ended = {both[0]: ActionState.SUCCEEDED, both[1]: ActionState.FAILED}
    assert open_keys(record, ended) == []


# -- reading the metric an evaluation run logged ---------------------------------------------


def test_the_metric_is_read_from_the_step_that_logged_it_or_from_the_run():
    assert metric_from_run({"score::rmse": 61.5, "score::n": 89}, "rmse", "r").value == 61.5
    assert metric_from_run({"rmse": 60.0, "score::rmse": 61.5}, "rmse", "r").value == 60.0
    same = metric_from_run({"a::rmse": 61.5, "b::rmse": 61.5}, "rmse", "r")
    assert same.value == 61.5


@pytest.mark.parametrize(
    ("metadata", "reason", "said"),
    [
        ({}, PromotionReason.METRIC_MISSING, "zenml.log_metadata"),
        ({"score::mae": 40.0, "schedule:rmse": 1.0}, PromotionReason.METRIC_MISSING, "'rmse'"),
        ({"score::rmse": "61"}, PromotionReason.METRIC_NOT_NUMERIC, "step score"),
        ({"score::rmse": math.nan}, PromotionReason.METRIC_NOT_FINITE, "nan"),
        ({"a::rmse": 60.0, "b::rmse": 70.0}, PromotionReason.METRIC_AMBIGUOUS, "a: 60.0, b: 70.0"),
    ],
)
def test_a_metric_missing_not_a_number_or_ambiguous_says_what_is_wrong(metadata, reason, said):
    reading = metric_from_run(metadata, "rmse", "run-7")
    assert reading.value is None and reading.problem is reason
    assert said in reading.detail and "run-7" in reading.detail


# -- deciding on evaluated values ----------------------------------------------------------


def _evaluated(candidate_value, production_value, production_state=ActionState.SUCCEEDED):
    candidate = model_version({"rmse": 51.5}, number=2)
    production = model_version({"rmse": 61.0}, number=1, stage="production")
    record = EvaluationRecord.start(dataset(number=1), candidate, production)
    assert record.production is not None
    outcomes = {
        record.candidate.key: Outcome(
            ActionState.SUCCEEDED, "run-c", run_metadata={"score::rmse": candidate_value}
        ),
        record.production.key: Outcome(
            production_state,
            "run-p",
            error="step score: ValueError: boom" if production_state is ActionState.FAILED else "",
            run_metadata={"score::rmse": production_value},
        ),
    }
    values = evaluated_values(record, RMSE, outcomes, candidate, production)
    return candidate, production, values


def test_better_on_its_own_split_but_worse_on_the_holdout_is_rejected_saying_so():
    candidate, production, values = _evaluated(61.7, 59.7)
    # On the training metrics (51.5 against 61.0) it would have been promoted.
    assert decide_promotion(candidate, production, RMSE).promote
    decision = decide_promotion(candidate, production, RMSE, values)
    assert not decision.promote
    assert decision.reason is PromotionReason.NOT_BETTER_THAN_PRODUCTION
    assert (decision.value, decision.production_value) == (61.7, 59.7)
    assert "on evaluation dataset iris_training_dataset version 1" in decision.detail
    assert "on their own test splits the candidate looked better, 51.5 against 61" in (
        decision.detail
    )
    recorded = decision.as_metadata()["evaluation"]
    assert recorded["candidate_run_id"] == "run-c" and recorded["production_run_id"] == "run-p"
    assert recorded["candidate_value"] == 61.7 and recorded["production_training_value"] == 61.0


def test_the_threshold_applies_to_the_evaluated_value():
    candidate, production, values = _evaluated(65.0, 70.0)
    decision = decide_promotion(candidate, production, RMSE, values)
    assert decision.reason is PromotionReason.BELOW_THRESHOLD and decision.value == 65.0


def test_better_on_the_holdout_is_promoted_with_both_values():
    candidate, production, values = _evaluated(58.0, 59.7)
    decision = decide_promotion(candidate, production, RMSE, values)
    assert decision.promote and decision.reason is PromotionReason.BEATS_PRODUCTION
    assert decision.as_metadata()["evaluation"]["production_version_id"] == production.id


def test_a_failed_evaluation_of_the_candidate_rejects_it():
    candidate = model_version({"rmse": 51.5}, number=2)
    record = EvaluationRecord.start(dataset(), candidate, None)
    failed = {record.candidate.key: Outcome(ActionState.FAILED, "run-c", "step score: boom")}
    values = evaluated_values(record, RMSE, failed, candidate, None)
    decision = decide_promotion(candidate, None, RMSE, values)
    assert decision.reason is PromotionReason.EVALUATION_FAILED
    assert record.candidate.key in decision.detail and "step score: boom" in decision.detail
    skipped = {record.candidate.key: Outcome(ActionState.SKIPPED)}
    values = evaluated_values(record, RMSE, skipped, candidate, None)
    assert "skipped by an operator" in decide_promotion(candidate, None, RMSE, values).detail


def test_a_failed_evaluation_of_production_leaves_its_value_unusable_as_a_bad_metric_does():
    candidate, production, values = _evaluated(58.0, 59.7, ActionState.FAILED)
    decision = decide_promotion(candidate, production, RMSE, values)
    assert decision.promote
    assert decision.reason is PromotionReason.PRODUCTION_METRIC_UNUSABLE
    assert "failed: step score: ValueError: boom" in decision.detail


# -- the minimum improvement, with or without evaluation ----------------------------------------


@pytest.mark.parametrize(
    ("goal", "production_value", "candidate_value", "reason"),
    [
        (Goal.MAXIMIZE, 0.95, 0.96, PromotionReason.BEATS_PRODUCTION),  # 0.00999... counts
        (Goal.MAXIMIZE, 0.95, 0.955, PromotionReason.BELOW_MIN_IMPROVEMENT),
        (Goal.MAXIMIZE, 0.95, 0.95, PromotionReason.NOT_BETTER_THAN_PRODUCTION),
        (Goal.MINIMIZE, 0.30, 0.29, PromotionReason.BEATS_PRODUCTION),
        (Goal.MINIMIZE, 0.30, 0.295, PromotionReason.BELOW_MIN_IMPROVEMENT),
        (Goal.MINIMIZE, 0.30, 0.31, PromotionReason.NOT_BETTER_THAN_PRODUCTION),
    ],
)
def test_the_candidate_must_beat_production_by_the_minimum_improvement_in_the_goals_direction(
    goal, production_value, candidate_value, reason
):
    policy = PromotionPolicy("m", 0.5, True, goal, min_improvement=0.01)
    production = model_version({"m": production_value}, number=1, stage="production")
    decision = decide_promotion(model_version({"m": candidate_value}, number=2), production, policy)
    assert decision.reason is reason, decision.detail
    assert decision.as_metadata()["min_improvement"] == 0.01
    if reason is PromotionReason.BELOW_MIN_IMPROVEMENT:
        assert "less than the minimum improvement 0.01" in decision.detail


def test_without_a_minimum_improvement_the_decision_record_is_as_before():
    policy = PromotionPolicy("m", 0.5, True)
    decision = decide_promotion(model_version({"m": 0.9}), None, policy)
    assert "min_improvement" not in decision.as_metadata()
    assert "evaluation" not in decision.as_metadata()
