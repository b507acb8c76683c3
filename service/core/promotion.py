"""The promotion policy, and the repair of duplicate production versions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from service.core.records import ModelVersionInfo, RunStatus

PRODUCTION = "production"

# ZenML creates a run's model version a moment before it links the run to it, so for that moment
# a run's version looks hand-made. A version with no run is judged once it is this old.
UNLINKED_SETTLE = timedelta(seconds=10)


def wait_reason(version: ModelVersionInfo, now: datetime) -> str | None:
    """Why a model version cannot be judged yet, or None when it can.

    `now` is naive UTC, like ZenML's timestamps.
    """
    if version.producer is not None and version.producer.status is RunStatus.IN_PROGRESS:
        return "training_run_in_progress"
    if version.producer is None and now - version.created < UNLINKED_SETTLE:
        return "no_training_run_linked_yet"
    return None


@dataclass(frozen=True)
class PromotionPolicy:
    metric: str
    threshold: float
    must_beat_production: bool


class PromotionReason(StrEnum):
    CLEARS_THRESHOLD = "clears_threshold"
    BEATS_PRODUCTION = "clears_threshold_and_beats_production"
    PRODUCTION_METRIC_UNUSABLE = "clears_threshold_production_metric_unusable"
    ALREADY_PRODUCTION = "already_production"
    METRIC_MISSING = "metric_missing"
    METRIC_NOT_NUMERIC = "metric_not_numeric"
    METRIC_NOT_FINITE = "metric_not_finite"
    BELOW_THRESHOLD = "below_threshold"
    NOT_BETTER_THAN_PRODUCTION = "not_better_than_production"
    TRAINING_RUN_FAILED = "training_run_failed"


@dataclass(frozen=True)
class MetricReading:
    value: float | None
    problem: PromotionReason | None = None
    detail: str = ""


@dataclass(frozen=True)
class PromotionDecision:
    """What was decided for one model version, and every value it was decided on."""

    promote: bool
    reason: PromotionReason
    detail: str
    metric: str
    value: float | None
    threshold: float
    production_version_id: str | None = None
    production_version_number: int | None = None
    production_value: float | None = None

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "rejected"

    def as_metadata(self) -> dict[str, object]:
        """The record written to the model version under `autopilot_decision`."""
        record: dict[str, object] = {"outcome": self.outcome, **asdict(self)}
        record["reason"] = self.reason.value
        return {k: v for k, v in record.items() if k != "promote"}


def read_metric(metadata: Mapping[str, object], name: str) -> MetricReading:
    """Read a metric as a finite float, or say precisely what is wrong with it."""
    if name not in metadata:
        return MetricReading(None, PromotionReason.METRIC_MISSING, f"no {name!r} in run metadata")
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
) -> PromotionDecision:
    """Promote when the metric clears the threshold and, if required, beats production."""

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
            production_version_id=production.id if production else None,
            production_version_number=production.number if production else None,
            production_value=production_value,
        )

    if candidate.producer is not None and candidate.producer.status is RunStatus.FAILED:
        return decision(False, PromotionReason.TRAINING_RUN_FAILED, "its training run failed")
    if production is not None and production.id == candidate.id:
        return decision(False, PromotionReason.ALREADY_PRODUCTION, "already in production")
    reading = read_metric(candidate.metadata, policy.metric)
    if reading.value is None:
        return decision(False, reading.problem or PromotionReason.METRIC_MISSING, reading.detail)
    value, threshold = reading.value, policy.threshold
    if value < threshold:
        return decision(
            False, PromotionReason.BELOW_THRESHOLD, f"{value:g} < threshold {threshold:g}", value
        )
    if not policy.must_beat_production or production is None:
        return decision(
            True, PromotionReason.CLEARS_THRESHOLD, f"{value:g} >= {threshold:g}", value
        )
    incumbent = read_metric(production.metadata, policy.metric).value
    if incumbent is None:
        return decision(
            True,
            PromotionReason.PRODUCTION_METRIC_UNUSABLE,
            f"{value:g} >= {threshold:g}; production {production.label} has no usable metric",
            value,
        )
    if value <= incumbent:
        return decision(
            False,
            PromotionReason.NOT_BETTER_THAN_PRODUCTION,
            f"{value:g} <= production {production.label} {incumbent:g}",
            value,
            incumbent,
        )
    return decision(
        True,
        PromotionReason.BEATS_PRODUCTION,
        f"{value:g} > production {production.label} {incumbent:g}",
        value,
        incumbent,
    )


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
