"""The promotion policy, and the repair of duplicate production versions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import StrEnum

from service.core.records import ModelVersionInfo, RunStatus

PRODUCTION = "production"

# ZenML creates a run's model version a moment before it links the run to it, so for that moment
# a run's version looks hand-made. A version with no run is judged once the daemon has seen it
# without one for this long.
UNLINKED_SETTLE = timedelta(seconds=10)


def wait_reason(version: ModelVersionInfo, unlinked_for: timedelta) -> str | None:
    """Why a model version cannot be judged yet, or None when it can.

    `unlinked_for`: how long the daemon has watched the version without a run linked to it (a
    duration on the daemon's own clock; zero at first sight). Never the version's `created`
    against the daemon's clock: with the daemon's clock ahead of the store's, a run's new
    version would look old enough at once, be judged before its run is linked, and be rejected
    for good as hand-made.
    """
    if version.producer is not None and version.producer.status is RunStatus.IN_PROGRESS:
        return "training_run_in_progress"
    if version.producer is None and unlinked_for < UNLINKED_SETTLE:
        return "no_training_run_linked_yet"
    return None


class Goal(StrEnum):
    MAXIMIZE = "maximize"  # accuracy, F1: promote when value >= threshold (and > production's)
    MINIMIZE = "minimize"  # RMSE, log loss: promote when value <= threshold (and < production's)


@dataclass(frozen=True)
class PromotionPolicy:
    metric: str
    threshold: float
    must_beat_production: bool
    goal: Goal = Goal.MAXIMIZE
    metric_artifact: str | None = None  # read the metric from this linked artifact's metadata
    # How much a candidate must beat production by, in the metric's units, in the goal's
    # direction (PROMOTION_MIN_IMPROVEMENT). 0: strictly better is enough.
    min_improvement: float = 0.0

    def clears(self, value: float) -> bool:
        return value >= self.threshold if self.goal is Goal.MAXIMIZE else value <= self.threshold

    def improvement(self, value: float, incumbent: float) -> float:
        """How much better `value` is than `incumbent`, in the goal's direction (< 0: worse)."""
        return value - incumbent if self.goal is Goal.MAXIMIZE else incumbent - value

    def beats(self, value: float, incumbent: float) -> bool:
        return self.improvement(value, incumbent) > 0

    def improves_enough(self, value: float, incumbent: float) -> bool:
        """At least `min_improvement` better. Compared with a tolerance: 0.96 - 0.95 is
        0.00999999... in floating point, and must count as an improvement of 0.01."""
        gained = self.improvement(value, incumbent)
        wanted = self.min_improvement
        return gained >= wanted or math.isclose(gained, wanted, rel_tol=1e-9, abs_tol=1e-12)

    @property
    def source(self) -> str:
        if self.metric_artifact is None:
            return "model version metadata"
        return f"metadata of artifact {self.metric_artifact!r}"


class PromotionReason(StrEnum):
    CLEARS_THRESHOLD = "clears_threshold"
    BEATS_PRODUCTION = "clears_threshold_and_beats_production"
    PRODUCTION_METRIC_UNUSABLE = "clears_threshold_production_metric_unusable"
    ALREADY_PRODUCTION = "already_production"
    METRIC_MISSING = "metric_missing"
    METRIC_NOT_NUMERIC = "metric_not_numeric"
    METRIC_NOT_FINITE = "metric_not_finite"
    METRIC_AMBIGUOUS = "metric_ambiguous"  # several steps of an evaluation run logged it
    BELOW_THRESHOLD = "below_threshold"
    NOT_BETTER_THAN_PRODUCTION = "not_better_than_production"
    BELOW_MIN_IMPROVEMENT = "below_min_improvement"  # better, by less than the minimum
    TRAINING_RUN_FAILED = "training_run_failed"
    TRAINING_RUN_REJECTED = "training_run_rejected"
    EVALUATION_FAILED = "evaluation_failed"  # the candidate's evaluation run failed for good


@dataclass(frozen=True)
class MetricReading:
    value: float | None
    problem: PromotionReason | None = None
    detail: str = ""


@dataclass(frozen=True)
class EvaluatedValues:
    """The policy's metric of a candidate and of production, both scored by the automation's
    evaluation pipeline on one evaluation dataset version (`core/evaluation.py`), instead of
    what each training run logged about itself on its own test split."""

    candidate: MetricReading
    production: MetricReading | None  # None: production was not evaluated (none to beat)
    where: str  # how details name the data, e.g. "on evaluation dataset holdout:3"
    # What the decision records under `evaluation`: the dataset version, both runs and values.
    record: Mapping[str, object] = field(default_factory=dict)
    # Each version's metric as its training run logged it (on its own split), for the reader.
    candidate_training: float | None = None
    production_training: float | None = None


@dataclass(frozen=True)
class PromotionDecision:
    """What was decided for one model version, and every value it was decided on."""

    promote: bool
    reason: PromotionReason
    detail: str
    metric: str
    value: float | None
    threshold: float
    goal: str = Goal.MAXIMIZE.value
    production_version_id: str | None = None
    production_version_number: int | None = None
    production_value: float | None = None
    min_improvement: float = 0.0  # recorded only when set
    evaluation: Mapping[str, object] | None = None  # recorded only when evaluated

    @property
    def outcome(self) -> str:
        if self.promote:
            return "promoted"
        if self.reason is PromotionReason.ALREADY_PRODUCTION:
            return "already_production"  # promoted by its own pipeline or a person: left alone
        return "rejected"

    def as_metadata(self) -> dict[str, object]:
        """The record written to the model version under `autopilot_decision`."""
        record: dict[str, object] = {"outcome": self.outcome, **asdict(self)}
        record["reason"] = self.reason.value
        if not self.min_improvement:
            del record["min_improvement"]
        if self.evaluation is None:
            del record["evaluation"]
        else:
            record["evaluation"] = dict(self.evaluation)
        return {k: v for k, v in record.items() if k != "promote"}


def read_metric(version: ModelVersionInfo, policy: PromotionPolicy) -> MetricReading:
    """Read the policy's metric of a version, from the version's own metadata or from the
    linked artifact the policy names, as a finite float; or say precisely what is wrong."""
    if policy.metric_artifact is None:
        return read_value(version.metadata, policy.metric, "run metadata")
    metadata = version.artifact_metadata.get(policy.metric_artifact)
    if metadata is None:
        return MetricReading(
            None,
            PromotionReason.METRIC_MISSING,
            f"no artifact {policy.metric_artifact!r} is linked to the model version",
        )
    return read_value(metadata, policy.metric, f"the metadata of {policy.metric_artifact!r}")


def read_value(metadata: Mapping[str, object], name: str, where: str) -> MetricReading:
    """Read one metadata value as a finite float."""
    if name not in metadata:
        return MetricReading(None, PromotionReason.METRIC_MISSING, f"no {name!r} in {where}")
    raw = metadata[name]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return MetricReading(
            None,
            PromotionReason.METRIC_NOT_NUMERIC,
            f"{name!r} is {type(raw).__name__} {raw!r}, not a number",
        )
    value = float(raw)
    if not math.isfinite(value):
        return MetricReading(None, PromotionReason.METRIC_NOT_FINITE, f"{name!r} is {value}")
    return MetricReading(value)


def decide_promotion(
    candidate: ModelVersionInfo,
    production: ModelVersionInfo | None,
    policy: PromotionPolicy,
    evaluated: EvaluatedValues | None = None,
) -> PromotionDecision:
    """Promote when the metric clears the threshold and, if required, beats production by at
    least the policy's minimum improvement, in the direction of the policy's goal.

    The metric is what each version's training run logged, or, with `evaluated`, what the
    automation's evaluation pipeline scored for both versions on the same data."""

    def decision(
        promote: bool,
        reason: PromotionReason,
        detail: str,
        value: float | None = None,
        production_value: float | None = None,
    ) -> PromotionDecision:
        return PromotionDecision(
            promote=promote,
            reason=reason,
            detail=detail,
            metric=policy.metric,
            value=value,
            threshold=policy.threshold,
            goal=policy.goal.value,
            production_version_id=production.id if production else None,
            production_version_number=production.number if production else None,
            production_value=production_value,
            min_improvement=policy.min_improvement,
            evaluation=evaluated.record if evaluated else None,
        )

    if candidate.producer is not None and candidate.producer.status is RunStatus.FAILED:
        return decision(False, PromotionReason.TRAINING_RUN_FAILED, "its training run failed")
    if candidate.producer is not None and candidate.producer.rejected:
        return decision(
            False,
            PromotionReason.TRAINING_RUN_REJECTED,
            f"its training run {candidate.producer.name or candidate.producer.id} was rejected "
            "by the launcher (it wrote into a model version it did not create)",
        )
    if production is not None and production.id == candidate.id:
        return decision(False, PromotionReason.ALREADY_PRODUCTION, "already in production")
    reading = evaluated.candidate if evaluated else read_metric(candidate, policy)
    if reading.value is None:
        return decision(False, reading.problem or PromotionReason.METRIC_MISSING, reading.detail)
    value, threshold = reading.value, policy.threshold
    where = f" {evaluated.where}" if evaluated else ""
    better, worse = (">", "<=") if policy.goal is Goal.MAXIMIZE else ("<", ">=")
    if not policy.clears(value):
        return decision(
            False,
            PromotionReason.BELOW_THRESHOLD,
            f"{value:g} does not clear threshold {threshold:g} ({policy.goal.value}){where}",
            value,
        )
    clears = f"{value:g} clears threshold {threshold:g} ({policy.goal.value}){where}"
    if not policy.must_beat_production or production is None:
        return decision(True, PromotionReason.CLEARS_THRESHOLD, clears, value)
    incumbent_reading = (
        (evaluated.production or MetricReading(None, detail="it was not evaluated"))
        if evaluated
        else read_metric(production, policy)
    )
    incumbent = incumbent_reading.value
    if incumbent is None:
        why = f": {incumbent_reading.detail}" if evaluated and incumbent_reading.detail else ""
        return decision(
            True,
            PromotionReason.PRODUCTION_METRIC_UNUSABLE,
            f"{clears}; production {production.label} has no usable metric{why}",
            value,
        )
    own_splits = _own_splits(policy, evaluated, value, incumbent)
    if not policy.beats(value, incumbent):
        return decision(
            False,
            PromotionReason.NOT_BETTER_THAN_PRODUCTION,
            f"{value:g} {worse} production {production.label} {incumbent:g}{where}{own_splits}",
            value,
            incumbent,
        )
    compared = f"{value:g} {better} production {production.label} {incumbent:g}{where}"
    if not policy.improves_enough(value, incumbent):
        gained = policy.improvement(value, incumbent)
        return decision(
            False,
            PromotionReason.BELOW_MIN_IMPROVEMENT,
            f"{compared}, better by {gained:g}, less than the minimum improvement "
            f"{policy.min_improvement:g}{own_splits}",
            value,
            incumbent,
        )
    return decision(True, PromotionReason.BEATS_PRODUCTION, compared, value, incumbent)


def _own_splits(
    policy: PromotionPolicy, evaluated: EvaluatedValues | None, value: float, incumbent: float
) -> str:
    """When the evaluated values reject a candidate that its training metrics would have
    promoted, say so: the two were scored on different test splits, not comparable."""
    if evaluated is None:
        return ""
    own, theirs = evaluated.candidate_training, evaluated.production_training
    if own is None or theirs is None:
        return ""
    if policy.improves_enough(own, theirs) and not policy.improves_enough(value, incumbent):
        return (
            f" (on their own test splits the candidate looked better, {own:g} against "
            f"{theirs:g}: those splits differ, so they were not compared)"
        )
    return ""


@dataclass(frozen=True)
class ProductionRepair:
    keep: ModelVersionInfo
    archive: tuple[ModelVersionInfo, ...]


def repair_duplicate_production(versions: Sequence[ModelVersionInfo]) -> ProductionRepair | None:
    """Choose which of several production versions stays: the one promoted last.

    A stage change bumps `updated`, so the most recently updated one carries the latest intent
    (a person's or the daemon's); the higher number breaks a tie. None when there is nothing to do.
    """
    if len(versions) < 2:
        return None
    ordered = sorted(versions, key=lambda v: (v.updated, v.number), reverse=True)
    return ProductionRepair(keep=ordered[0], archive=tuple(ordered[1:]))
