import math
from dataclasses import replace
from datetime import timedelta

import pytest

from service.core.promotion import (
    Goal,
    PromotionPolicy,
    PromotionReason,
    decide_promotion,
    repair_duplicate_production,
    wait_reason,
)
from service.core.records import REJECTED_RUN_TAG, RunStatus
from tests.unit.factories import T0, model_version, run

POLICY = PromotionPolicy(metric="accuracy", threshold=0.9, must_beat_production=True)


def test_first_version_clearing_the_threshold_is_promoted():
    decision = decide_promotion(model_version({"accuracy": 0.95}), None, POLICY)
    assert decision.promote
    assert decision.reason is PromotionReason.CLEARS_THRESHOLD
    assert decision.value == 0.95


def test_version_at_exactly_the_threshold_is_promoted():
    assert decide_promotion(model_version({"accuracy": 0.9}), None, POLICY).promote


def test_below_threshold_is_rejected_with_both_values():
    decision = decide_promotion(model_version({"accuracy": 0.5}), None, POLICY)
    assert not decision.promote
    assert decision.reason is PromotionReason.BELOW_THRESHOLD
    assert "0.5" in decision.detail and "0.9" in decision.detail


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({}, PromotionReason.METRIC_MISSING),
        ({"f1": 0.99}, PromotionReason.METRIC_MISSING),
        ({"accuracy": "0.95"}, PromotionReason.METRIC_NOT_NUMERIC),
        ({"accuracy": None}, PromotionReason.METRIC_NOT_NUMERIC),
        ({"accuracy": True}, PromotionReason.METRIC_NOT_NUMERIC),
        ({"accuracy": [0.95]}, PromotionReason.METRIC_NOT_NUMERIC),
        ({"accuracy": math.nan}, PromotionReason.METRIC_NOT_FINITE),
        ({"accuracy": math.inf}, PromotionReason.METRIC_NOT_FINITE),
        ({"accuracy": -math.inf}, PromotionReason.METRIC_NOT_FINITE),
    ],
)
def test_every_bad_metric_is_a_rejection_with_its_reason(metadata, reason):
    decision = decide_promotion(model_version(metadata), None, POLICY)
    assert not decision.promote
    assert decision.reason is reason
    assert decision.value is None
    assert decision.as_metadata()["outcome"] == "rejected"


def test_integer_metric_is_accepted():
    assert decide_promotion(model_version({"accuracy": 1}), None, POLICY).promote


def test_must_strictly_beat_production():
    production = model_version({"accuracy": 0.95}, number=1, stage="production")
    equal = decide_promotion(model_version({"accuracy": 0.95}, number=2), production, POLICY)
    better = decide_promotion(model_version({"accuracy": 0.97}, number=2), production, POLICY)
    assert not equal.promote
    assert equal.reason is PromotionReason.NOT_BETTER_THAN_PRODUCTION
    assert equal.production_value == 0.95
    assert equal.production_version_id == production.id
    assert better.promote
    assert better.reason is PromotionReason.BEATS_PRODUCTION


def test_production_need_not_be_beaten_when_the_policy_says_so():
    policy = PromotionPolicy("accuracy", 0.9, must_beat_production=False)
    production = model_version({"accuracy": 0.99}, stage="production")
    assert decide_promotion(model_version({"accuracy": 0.91}), production, policy).promote


def test_production_without_a_usable_metric_is_beaten_by_any_version_clearing_the_bar():
    production = model_version({"accuracy": "n/a"}, stage="production")
    decision = decide_promotion(model_version({"accuracy": 0.91}), production, POLICY)
    assert decision.promote
    assert decision.reason is PromotionReason.PRODUCTION_METRIC_UNUSABLE


def test_version_already_in_production_is_left_alone():
    production = model_version({"accuracy": 0.99}, stage="production")
    decision = decide_promotion(production, production, POLICY)
    assert not decision.promote
    assert decision.reason is PromotionReason.ALREADY_PRODUCTION


def test_version_whose_training_run_failed_is_rejected():
    failed = model_version({"accuracy": 0.99}, producer=run(RunStatus.FAILED))
    assert decide_promotion(failed, None, POLICY).reason is PromotionReason.TRAINING_RUN_FAILED


def test_version_whose_training_run_the_launcher_rejected_is_rejected_whatever_its_metric():
    rejected = model_version({"accuracy": 0.99}, producer=run(tags=frozenset({REJECTED_RUN_TAG})))
    decision = decide_promotion(rejected, None, POLICY)
    assert (decision.promote, decision.reason) == (False, PromotionReason.TRAINING_RUN_REJECTED)


def test_decision_metadata_carries_every_value_compared():
    production = model_version({"accuracy": 0.92}, number=1, stage="production")
    record = decide_promotion(model_version({"accuracy": 0.96}, number=2), production, POLICY)
    metadata = record.as_metadata()
    assert metadata == {
        "outcome": "promoted",
        "reason": "clears_threshold_and_beats_production",
        "detail": metadata["detail"],
        "metric": "accuracy",
        "value": 0.96,
        "threshold": 0.9,
        "goal": "maximize",
        "production_version_id": production.id,
        "production_version_number": 1,
        "production_value": 0.92,
    }


def test_duplicate_production_keeps_the_most_recently_promoted():
    older = model_version(number=5, stage="production", updated_offset=10)
    newer = model_version(number=3, stage="production", updated_offset=20)
    repair = repair_duplicate_production([older, newer])
    assert repair is not None
    assert repair.keep == newer
    assert repair.archive == (older,)


def test_duplicate_production_tie_goes_to_the_higher_number_whatever_the_order():
    a = model_version(number=2, stage="production")
    b = model_version(number=7, stage="production")
    assert repair_duplicate_production([a, b]).keep == b  # type: ignore[union-attr]
    assert repair_duplicate_production([b, a]).keep == b  # type: ignore[union-attr]


def test_single_production_needs_no_repair():
    assert repair_duplicate_production([model_version(stage="production")]) is None
    assert repair_duplicate_production([]) is None


def test_version_is_not_judged_while_its_training_run_is_going():
    version = model_version({"accuracy": 0.99}, producer=run(RunStatus.IN_PROGRESS))
    assert wait_reason(version, timedelta(hours=1)) == "training_run_in_progress"


def test_version_without_a_run_waits_a_moment_for_zenml_to_link_its_run():
    version = model_version({"accuracy": 0.99}, producer=None)
    assert wait_reason(version, timedelta(0)) == "no_training_run_linked_yet"
    assert wait_reason(version, timedelta(seconds=9)) == "no_training_run_linked_yet"
    assert wait_reason(version, timedelta(seconds=10)) is None


def test_how_long_a_version_waits_for_its_run_never_reads_its_creation_time():
    """The settle is how long the daemon has watched the version unlinked: a version created
    long ago by the store's clock (or the daemon's clock far ahead of it) still waits it out."""
    long_ago = replace(model_version({"accuracy": 0.99}), created=T0 - timedelta(days=365))
    assert wait_reason(long_ago, timedelta(0)) == "no_training_run_linked_yet"


def test_version_from_a_finished_run_is_judged_at_once():
    version = model_version({"accuracy": 0.99}, producer=run(RunStatus.SUCCEEDED))
    assert wait_reason(version, timedelta(0)) is None


RMSE = PromotionPolicy(
    metric="rmse",
    threshold=60.0,
    must_beat_production=True,
    goal=Goal.MINIMIZE,
    metric_artifact="diabetes_model",
)


def regressor(rmse: object, number: int = 1, stage: str | None = None):
    return model_version(
        {"rmse": 999.0},  # on the version itself: must be ignored, the artifact's counts
        number=number,
        stage=stage,
        artifact_metadata={"diabetes_model": {"rmse": rmse}},
    )


def test_minimize_promotes_at_or_below_the_threshold_and_below_production():
    assert decide_promotion(regressor(60.0), None, RMSE).promote
    above = decide_promotion(regressor(60.5), None, RMSE)
    assert above.reason is PromotionReason.BELOW_THRESHOLD
    assert "minimize" in above.detail
    production = regressor(55.0, number=1, stage="production")
    worse = decide_promotion(regressor(55.0, number=2), production, RMSE)
    assert worse.reason is PromotionReason.NOT_BETTER_THAN_PRODUCTION
    better = decide_promotion(regressor(54.0, number=3), production, RMSE)
    assert better.reason is PromotionReason.BEATS_PRODUCTION
    assert better.as_metadata()["goal"] == "minimize"
    assert better.production_value == 55.0


def test_metric_is_read_from_the_named_artifact_and_its_absence_is_explained():
    missing = model_version({"rmse": 1.0}, number=2)  # no artifact linked
    decision = decide_promotion(missing, None, RMSE)
    assert decision.reason is PromotionReason.METRIC_MISSING
    assert "diabetes_model" in decision.detail
    not_numeric = decide_promotion(regressor("low"), None, RMSE)
    assert not_numeric.reason is PromotionReason.METRIC_NOT_NUMERIC


def test_a_version_already_in_production_is_left_alone():
    production = regressor(40.0, stage="production")
    decision = decide_promotion(production, production, RMSE)
    assert not decision.promote
    assert decision.reason is PromotionReason.ALREADY_PRODUCTION
    assert decision.outcome == "already_production"
