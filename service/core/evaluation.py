"""Champion against challenger: a candidate and the production version scored by the
automation's evaluation pipeline on the same evaluation dataset version, so that the numbers a
promotion compares are comparable (each training run scores its model on its own test split).

Pure: which versions to evaluate, on which dataset version, the record a promotion keeps while
it waits for its evaluations, and reading the metric out of an evaluation run's metadata. The
stage that claims, waits and decides is `service/stages/evaluation.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.core.actions import ActionKind, ActionState, action_key
from service.core.promotion import (
    EvaluatedValues,
    MetricReading,
    PromotionPolicy,
    PromotionReason,
    read_metric,
    read_value,
)
from service.core.records import DatasetVersion, ModelVersionInfo, RunStatus

# A promotion's phase in its ledger details, and a model version's status while it is in it.
EVALUATING = "evaluating"
DECIDED = "decided"
# Why a candidate waits: no version of the evaluation dataset carries the required tags yet.
NO_EVALUATION_DATASET = "no_evaluation_dataset"
# How ZenML names a step's metadata in a pipeline run's full metadata: `<step>::<key>`.
STEP_SEPARATOR = "::"


def needs_evaluation(candidate: ModelVersionInfo, production: ModelVersionInfo | None) -> bool:
    """False when the decision does not depend on any metric: a failed training run, one the
    launcher rejected, or a version already in production (promoted by its own pipeline or a
    person)."""
    run = candidate.producer
    if run is not None and (run.status is RunStatus.FAILED or run.rejected):
        return False
    return production is None or production.id != candidate.id


def usable_dataset(newest_first: Iterable[DatasetVersion]) -> DatasetVersion | None:
    """The newest version an evaluation may use: saved by hand, or produced by a run that
    completed. One whose run is still going (or failed) is passed over, never waited for: the
    evaluation starts now, on the newest version that is finished."""
    for version in newest_first:
        if version.producer is None and not version.producer_pending:
            return version
        if version.producer is not None and version.producer.status is RunStatus.SUCCEEDED:
            return version
    return None


def evaluation_key(model_version_id: str, dataset_version_id: str) -> str:
    """One evaluation of a model version on a dataset version, ever (`evaluate:<mv>@<ds>`)."""
    return action_key(ActionKind.EVALUATE, model_version_id, qualifier=dataset_version_id)


@dataclass(frozen=True)
class Side:
    """One of the two versions compared, and the key of its evaluation."""

    model_version_id: str
    number: int
    key: str

    @classmethod
    def of(cls, version: ModelVersionInfo, dataset_version_id: str) -> Side:
        return cls(version.id, version.number, evaluation_key(version.id, dataset_version_id))


@dataclass(frozen=True)
class EvaluationRecord:
    """What a promotion waiting for its evaluations keeps in its ledger details: the dataset
    version (chosen once, when the candidate was judged) and the two evaluations."""

    dataset_version_id: str
    dataset_name: str
    dataset_version: str
    candidate: Side
    production: Side | None  # None: nothing to beat (no production, or not required)

    @classmethod
    def start(
        cls,
        dataset: DatasetVersion,
        candidate: ModelVersionInfo,
        production: ModelVersionInfo | None,
    ) -> EvaluationRecord:
        return cls(
            dataset_version_id=dataset.id,
            dataset_name=dataset.artifact_name,
            dataset_version=dataset.version,
            candidate=Side.of(candidate, dataset.id),
            production=Side.of(production, dataset.id) if production is not None else None,
        )

    def against(self, production: ModelVersionInfo | None) -> EvaluationRecord:
        """The same candidate and dataset version, against another production version."""
        side = Side.of(production, self.dataset_version_id) if production is not None else None
        return EvaluationRecord(
            self.dataset_version_id,
            self.dataset_name,
            self.dataset_version,
            self.candidate,
            side,
        )

    @property
    def sides(self) -> tuple[Side, ...]:
        return (self.candidate,) if self.production is None else (self.candidate, self.production)

    @property
    def where(self) -> str:
        return f"on evaluation dataset {self.dataset_name} version {self.dataset_version}"

    def as_details(self) -> dict[str, Any]:
        def side(s: Side | None) -> dict[str, Any] | None:
            return (
                None
                if s is None
                else {"model_version_id": s.model_version_id, "number": s.number, "key": s.key}
            )

        return {
            "dataset_version_id": self.dataset_version_id,
            "dataset_name": self.dataset_name,
            "dataset_version": self.dataset_version,
            "candidate": side(self.candidate),
            "production": side(self.production),
        }

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> EvaluationRecord:
        def side(s: Mapping[str, Any] | None) -> Side | None:
            return None if s is None else Side(s["model_version_id"], int(s["number"]), s["key"])

        candidate = side(details["candidate"])
        assert candidate is not None
        return cls(
            dataset_version_id=details["dataset_version_id"],
            dataset_name=details["dataset_name"],
            dataset_version=details["dataset_version"],
            candidate=candidate,
            production=side(details.get("production")),
        )


@dataclass(frozen=True)
class Outcome:
    """How one evaluation ended, as the ledger and the store tell it."""

    state: ActionState
    run_id: str | None = None
    error: str | None = None
    run_metadata: Mapping[str, object] | None = None  # the run's full metadata, if it succeeded


def open_keys(record: EvaluationRecord, states: Mapping[str, ActionState | None]) -> list[str]:
    """The evaluations a promotion still waits for (not ended, or not claimed yet)."""
    terminal = {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.SKIPPED}
    return [s.key for s in record.sides if states.get(s.key) not in terminal]


def metric_from_run(metadata: Mapping[str, object], name: str, run: str) -> MetricReading:
    """The metric an evaluation run logged: on the run itself, or (a bare `log_metadata` call
    in a step) on one of its steps, which ZenML shows as `<step>::<name>`. Several steps that
    logged different values are ambiguous: which one would be the score?"""
    if name in metadata:
        return _said(read_value(metadata, name, ""), f"in the metadata of evaluation run {run}")
    suffix = f"{STEP_SEPARATOR}{name}"
    by_step = {
        key[: -len(suffix)]: value
        for key, value in metadata.items()
        if key.endswith(suffix) and not key.startswith("schedule:")
    }
    if not by_step:
        return MetricReading(
            None,
            PromotionReason.METRIC_MISSING,
            f"evaluation run {run} logged no {name!r}: log it in a step with "
            f"zenml.log_metadata(metadata={{{name!r}: value}})",
        )
    readings = {}
    for step, value in sorted(by_step.items()):
        reading = read_value({name: value}, name, "")
        if reading.value is None:
            return _said(reading, f"logged by step {step} of evaluation run {run}")
        readings[step] = reading.value
    if len(set(readings.values())) > 1:
        logged = ", ".join(f"{step}: {value}" for step, value in readings.items())
        return MetricReading(
            None,
            PromotionReason.METRIC_AMBIGUOUS,
            f"evaluation run {run} logged {name!r} in several steps with different values "
            f"({logged}): log it in one step",
        )
    return MetricReading(next(iter(readings.values())))


def _said(reading: MetricReading, where: str) -> MetricReading:
    """A reading's problem, saying where the value was read."""
    if reading.value is not None:
        return reading
    return MetricReading(None, reading.problem, f"{reading.detail} ({where})")


def _reading(outcome: Outcome, side: Side, metric: str, candidate: bool) -> MetricReading:
    """The evaluated metric of one side, or why there is none. The candidate's own evaluation
    failing rejects it (`evaluation_failed`); production's leaves its value unusable."""
    if outcome.state is not ActionState.SUCCEEDED:
        how = "was skipped by an operator" if outcome.state is ActionState.SKIPPED else "failed"
        why = f": {outcome.error}" if outcome.error else ""
        return MetricReading(
            None,
            PromotionReason.EVALUATION_FAILED if candidate else PromotionReason.METRIC_MISSING,
            f"its evaluation {side.key} {how}{why}",
        )
    return metric_from_run(outcome.run_metadata or {}, metric, outcome.run_id or "?")


def evaluated_values(
    record: EvaluationRecord,
    policy: PromotionPolicy,
    outcomes: Mapping[str, Outcome],
    candidate: ModelVersionInfo,
    production: ModelVersionInfo | None,
) -> EvaluatedValues:
    """Both evaluated values, as `decide_promotion` takes them, and what the decision
    records: the dataset version, both runs and values, and each version's training metric
    (logged on its own split: shown, never compared)."""
    own = outcomes[record.candidate.key]
    mine = _reading(own, record.candidate, policy.metric, candidate=True)
    theirs: MetricReading | None = None
    entry: dict[str, object] = {
        "dataset_version_id": record.dataset_version_id,
        "dataset_name": record.dataset_name,
        "dataset_version": record.dataset_version,
        "candidate_run_id": own.run_id,
        "candidate_value": mine.value,
    }
    if record.production is not None:
        other = outcomes[record.production.key]
        theirs = _reading(other, record.production, policy.metric, candidate=False)
        entry |= {
            "production_version_id": record.production.model_version_id,
            "production_run_id": other.run_id,
            "production_value": theirs.value,
        }
    own_training = _finite(read_metric(candidate, policy))
    their_training = _finite(read_metric(production, policy)) if production else None
    entry["candidate_training_value"] = own_training
    if record.production is not None:
        entry["production_training_value"] = their_training
    return EvaluatedValues(
        candidate=mine,
        production=theirs,
        where=record.where,
        record=entry,
        candidate_training=own_training,
        production_training=their_training,
    )


def _finite(reading: MetricReading) -> float | None:
    value = reading.value
    return value if value is not None and math.isfinite(value) else None
