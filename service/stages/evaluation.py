"""Champion against challenger: for an automation with an evaluation pipeline, a candidate is
decided only once it and the production version were scored by that pipeline on the same
evaluation dataset version (`core/evaluation.py`).

Judging a candidate (`models.ModelJudge._judge`) hands it here: the evaluation dataset version
is chosen (the newest one carrying the required tags), the promotion is recorded as pending in
phase `evaluating`, and one `evaluate:<model version>@<dataset version>` action is claimed per
version compared. Evaluations are actions like the others (`stages/actions.py` launches them
pinned to their version, settles, retries and recovers them); a version's evaluation on a
dataset version is claimed once, ever, so production's is reused by every later candidate. Each
tick, a promotion whose evaluations have all ended is decided on the evaluated values, and
handed back to `ModelJudge._apply`, which carries out every decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.core import templates
from service.core.actions import ActionKind, ActionState, action_key
from service.core.automation import Automation
from service.core.evaluation import (
    DECIDED,
    EVALUATING,
    NO_EVALUATION_DATASET,
    EvaluationRecord,
    Outcome,
    evaluated_values,
    open_keys,
    usable_dataset,
)
from service.core.pinning import pin_reference
from service.core.promotion import decide_promotion
from service.core.records import ModelVersionInfo
from service.faults import crashpoint
from service.ledger import Action, Subject
from service.stages.context import MODEL, WAITING_SINCE, Context, first_seen
from service.stages.production import model_ids, trained_on

# The details of an evaluate action that name the data it scores on.
DATASET_DETAILS = ("evaluation_dataset_version_id", "evaluation_dataset_name")


def is_evaluating(action: Action) -> bool:
    """A promotion waiting for its evaluations: not to be carried out yet."""
    return action.details.get("phase") == EVALUATING


def settled(prior: Subject | None) -> bool:
    """A model version not to judge again: decided, or handed to its evaluations."""
    return prior is not None and (prior.final or prior.status == EVALUATING)


class Evaluations:
    def __init__(
        self, context: Context, production: Callable[[Automation], ModelVersionInfo | None]
    ) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self.production = production  # the production version a promotion compares with

    # -- a candidate is judged ----------------------------------------------------------------

    def begin(
        self,
        automation: Automation,
        version: ModelVersionInfo,
        production: ModelVersionInfo | None,
        prior: Subject | None,
    ) -> None:
        """Record the candidate's promotion as evaluating, on the newest usable evaluation
        dataset version, and claim the evaluations it needs; or, with no such version yet,
        let the candidate wait (said once)."""
        evaluation = automation.evaluation
        assert evaluation is not None
        tags = list(evaluation.required_tags)
        dataset = usable_dataset(
            self.store.newest_datasets_with_tags(evaluation.dataset_name, tags)
        )
        if dataset is None:
            self._wait_for_dataset(automation, version, prior)
            return
        compared = production if automation.promotion.must_beat_production else None
        record = EvaluationRecord.start(dataset, version, compared)
        key = action_key(ActionKind.PROMOTE, version.id)
        details = {
            **_promotion_ids(version),
            "phase": EVALUATING,
            "evaluation": record.as_details(),
        }
        with self.ledger.transaction():
            self.ledger.claim(key, ActionKind.PROMOTE, version.id, details, automation.name)
            reused = self._claim(automation, record, version, compared)
            self._note(automation, version, EVALUATING, EVALUATING, False, record.as_details())
        self.context.log(automation).info(
            "evaluation.started",
            key=key,
            evaluation_dataset_version_id=dataset.id,
            evaluation_dataset=f"{dataset.artifact_name}:{dataset.version}",
            evaluations=[side.key for side in record.sides],
            reused=reused,
            production_version_id=compared.id if compared else None,
            **model_ids(version),
        )

    def _wait_for_dataset(
        self, automation: Automation, version: ModelVersionInfo, prior: Subject | None
    ) -> None:
        evaluation = automation.evaluation
        assert evaluation is not None
        if prior is None or prior.reason != NO_EVALUATION_DATASET:
            self.context.log(automation).warning(
                "evaluation.waiting",
                reason=NO_EVALUATION_DATASET,
                evaluation_dataset=evaluation.dataset_name,
                required_tags=list(evaluation.required_tags),
                detail="no finished version of the evaluation dataset carries the required tags",
                **model_ids(version),
            )
        seen = {WAITING_SINCE: first_seen(prior, WAITING_SINCE, self.context.clock())}
        self._note(automation, version, "waiting", NO_EVALUATION_DATASET, False, seen)

    def _claim(
        self,
        automation: Automation,
        record: EvaluationRecord,
        *versions: ModelVersionInfo | None,
    ) -> list[str]:
        """Claim the record's evaluation of each of these versions (in the caller's
        transaction); the keys that were claimed before (an evaluation is done once: reused,
        never run again)."""
        by_id = {version.id: version for version in versions if version is not None}
        reused = []
        for side in record.sides:
            version = by_id.get(side.model_version_id)
            if version is None:
                continue
            details = {
                "model_version_number": version.number,
                "evaluation_dataset_version_id": record.dataset_version_id,
                "evaluation_dataset_name": record.dataset_name,
                "evaluation_dataset_version": record.dataset_version,
            }
            if (trained := trained_on(version)) is not None:
                details["dataset_version_id"] = trained
            if not self.ledger.claim(
                side.key, ActionKind.EVALUATE, version.id, details, automation.name
            ):
                reused.append(side.key)
        return reused

    # -- each tick ----------------------------------------------------------------------------

    def tick(self) -> list[tuple[Automation, Action]]:
        """Decide the promotions whose evaluations have all ended; those decided now, for
        `ModelJudge._apply` to carry out."""
        decided = []
        for action in self.ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE):
            automation = self.context.automations.get(action.automation)
            if automation is None or not is_evaluating(action):
                continue
            if (done := self._look(automation, action)) is not None:
                decided.append((automation, done))
        return decided

    def _look(self, automation: Automation, action: Action) -> Action | None:
        record = EvaluationRecord.from_details(action.details["evaluation"])
        states = {}
        for side in record.sides:
            evaluation = self.ledger.action(side.key)
            states[side.key] = evaluation.state if evaluation is not None else None
        waiting = open_keys(record, states)
        if waiting:
            if len(waiting) < len(record.sides):
                crashpoint("between_evaluations")  # one evaluation recorded, one still to end
            return None
        policy = automation.promotion
        candidate = self.store.model_version(action.subject_id, policy.metric_artifact)
        if candidate is None:
            self.ledger.transition(action.key, ActionState.FAILED, error="model version deleted")
            return None
        production = self.production(automation)
        evaluated = record.production.model_version_id if record.production else None
        if policy.must_beat_production:
            if production is not None and production.id not in (candidate.id, evaluated):
                self.against(automation, action, production)  # scored on the same data first
                return None
            if production is None and evaluated is not None:
                record = record.against(None)  # production was archived: nothing to beat
        outcomes = {side.key: self._outcome(side.key) for side in record.sides}
        values = evaluated_values(record, policy, outcomes, candidate, production)
        decision = decide_promotion(candidate, production, policy, values)
        details = {"phase": DECIDED, "decision": decision.as_metadata()}
        with self.ledger.transaction():
            self.ledger.update_details(action.key, {**details, "evaluation": record.as_details()})
            self._note(automation, candidate, "decided", decision.reason.value)
        self.context.log(automation).info(
            "evaluation.completed",
            key=action.key,
            outcome=decision.outcome,
            reason=decision.reason.value,
            metric=policy.metric,
            **{_field(name): value for name, value in values.record.items()},
            **model_ids(candidate),
        )
        crashpoint("after_promotion_decided")
        return self.ledger.action(action.key)

    def _outcome(self, key: str) -> Outcome:
        """How an evaluation ended, with its run's metadata if it succeeded."""
        evaluation = self.ledger.action(key)
        assert evaluation is not None
        if evaluation.state is not ActionState.SUCCEEDED or evaluation.run_id is None:
            return Outcome(evaluation.state, evaluation.run_id, evaluation.error)
        try:
            metadata = self.store.run_metadata(evaluation.run_id)
        except KeyError:
            error = f"its run {evaluation.run_id} was deleted"
            return Outcome(ActionState.FAILED, evaluation.run_id, error)
        return Outcome(evaluation.state, evaluation.run_id, run_metadata=metadata)

    def against(self, automation: Automation, action: Action, production: ModelVersionInfo) -> None:
        """Production changed while a promotion waited for (or carried out) its evaluated
        decision: the new production version is scored on the same dataset version first."""
        record = EvaluationRecord.from_details(action.details["evaluation"])
        compared = production if automation.promotion.must_beat_production else None
        updated = record.against(compared)
        details = {"phase": EVALUATING, "decision": None, "evaluation": updated.as_details()}
        with self.ledger.transaction():
            reused = self._claim(automation, updated, compared)
            self.ledger.update_details(action.key, details)
        self.context.log(automation).info(
            "evaluation.production_changed",
            key=action.key,
            model_version_id=action.subject_id,
            previous_production_version_id=(
                record.production.model_version_id if record.production else None
            ),
            production_version_id=production.id,
            evaluations=[side.key for side in updated.sides],
            reused=reused,
            evaluation_dataset_version_id=record.dataset_version_id,
        )

    def _note(
        self,
        automation: Automation,
        version: ModelVersionInfo,
        status: str,
        reason: str,
        final: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.ledger.note_subject(
            automation.name,
            version.id,
            MODEL,
            version.model_name,
            str(version.number),
            status,
            reason,
            final,
            details,
        )


def _promotion_ids(version: ModelVersionInfo) -> dict[str, Any]:
    """The ids a promotion's ledger record keeps, as `models._details_of_version` does: they
    tie the version to its dataset and training run (the status page's chains)."""
    ids = model_ids(version)
    ids.pop("model_version", None)
    return {"model_version_number": version.number, **ids}


def _field(name: str) -> str:
    """A log field of the evaluation record: its dataset is the evaluation dataset (a log line
    about a model version names its training dataset `dataset_version_id`)."""
    return f"evaluation_{name}" if name.startswith("dataset_") else name


def launch_values(
    context: Context, automation: Automation, action: Action
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The placeholders of an evaluation (`templates.EVALUATION_PLACEHOLDERS`), and its pin:
    the model version it scores, exactly, as an inference is pinned (`core/pinning`; a version
    that cannot be pinned exactly fails the evaluation at once, `Unpinnable`)."""
    version = context.store.model_version(action.subject_id)
    if version is None:
        raise templates.PlaceholderMissing("model_version.id", "the model version was deleted")
    details = action.details
    values: dict[str, Any] = {
        "model.name": automation.model_name,
        "model_version.id": version.id,
        "model_version.number": version.number,
        "model_version.name": version.name,
        "evaluation_dataset.id": details["evaluation_dataset_version_id"],
        "evaluation_dataset.name": details["evaluation_dataset_name"],
        "evaluation_dataset.version": details["evaluation_dataset_version"],
    }
    for key, value in version.metadata.items():
        values[f"model_version.metadata.{key}"] = value
    pin = pin_reference(automation.model_name, version.name, version.number)
    return values, {"model_version": pin, "model_version_id": version.id}
