"""Watching production: when a model's production version changes (the daemon's promotion, a
person's, or the model's own pipeline's), claim one inference pinned to that exact version (on
the newest selected scoring version, for an automation with scoring datasets)."""

from __future__ import annotations

from typing import Any

from service.core.actions import ActionKind, action_key, parse_action_key
from service.core.automation import Automation
from service.core.promotion import repair_duplicate_production
from service.core.records import ModelVersionInfo, RunStatus
from service.core.scoring import SCORING_ID, scored_tag
from service.faults import crashpoint
from service.notify import notices
from service.stages import scoring
from service.stages.context import Context, training_not_settled

NOTHING_TO_SCORE = "nothing_to_score"  # scoring datasets, none selected yet: no inference


class ProductionWatch:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store

    def tick(self, automations: list[Automation] | None = None) -> None:
        """One store query for every model's production versions, then a look per automation."""
        watched = automations or list(self.context.automations.values())
        found = self.store.production_versions_of([a.model_name for a in watched])
        for automation in watched:
            versions = found.get(automation.model_name, [])
            self._observe(automation, self._settle_duplicates(automation, versions))

    def current(self, automation: Automation) -> ModelVersionInfo | None:
        """The production version of one automation's model (repaired if a race left two)."""
        versions = self.store.production_versions(automation.model_name)
        return self._settle_duplicates(automation, versions)

    def _settle_duplicates(
        self, automation: Automation, versions: list[ModelVersionInfo]
    ) -> ModelVersionInfo | None:
        repair = repair_duplicate_production(versions)
        if repair is None:
            return versions[0] if versions else None
        for extra in repair.archive:
            self.store.set_stage(automation.model_name, extra.id, "archived")
        self.context.log(automation).warning(
            "model.production_repaired",
            kept_model_version_id=repair.keep.id,
            kept_number=repair.keep.number,
            archived=[{"model_version_id": v.id, "number": v.number} for v in repair.archive],
            rule="kept the most recently promoted version (latest updated, then highest number)",
        )
        return repair.keep

    def _observe(self, automation: Automation, current: ModelVersionInfo | None) -> None:
        stream = automation.production_stream
        previous = self.ledger.get_cursor(stream)
        current_id = current.id if current else None
        if current_id == previous:
            return
        log = self.context.log(automation)
        if current is not None:
            # A pipeline that promotes its own version does so before its run ends: infer once
            # the run is done, so inference sees everything it wrote (and once its training is
            # logged done, so the chain's events read in order).
            full = self.store.model_version(current.id) or current
            producer = full.producer
            if producer is not None and (
                producer.status is RunStatus.IN_PROGRESS
                or training_not_settled(self.ledger, producer)
            ):
                log.debug("production.waiting_for_training_run", **model_ids(full))
                return
            current = full
        infer_key = action_key(ActionKind.INFER, current_id or "")
        nothing_to_score = scoring.production_change_details(self.ledger, automation) is None
        promotion = self.ledger.action(action_key(ActionKind.PROMOTE, current_id or ""))
        by_autopilot = (
            promotion is not None
            and promotion.details.get("decision", {}).get("outcome") == "promoted"
        )
        changed_by = "autopilot" if by_autopilot else "external"
        # Read before the ledger transaction: the version a person's change replaced.
        outbox, replaced = self.context.outbox, None
        if previous and outbox and outbox.wants("model.production_changed", automation.name):
            replaced = None if by_autopilot else self.store.model_version(previous)
        with self.ledger.transaction():
            self.ledger.set_cursor(stream, current_id)
            self.ledger.record_production_change(
                automation.name,
                automation.model_name,
                current_id,
                current.number if current else None,
                previous,
                changed_by,
            )
            claimed = current is not None and self.claim_inference(automation, current)
            if not by_autopilot:
                self.context.notify(
                    notices.production_changed(
                        automation.name,
                        automation.model_name,
                        current,
                        trained_on(current) if current else None,
                        replaced or previous,
                    )
                )
        crashpoint("after_production_seen")
        inference: dict[str, object] = {}
        if current is not None:  # when its one inference was claimed
            when = "now" if claimed else "when_promoted" if by_autopilot else "before"
            if nothing_to_score:  # no scoring version selected yet: nothing claimed
                when = NOTHING_TO_SCORE
            inference = {"inference_key": infer_key, "inference_claimed": when}
        log.info(
            "model.production_changed",
            previous_model_version_id=previous,
            changed_by=changed_by,
            **inference,
            **(model_ids(current) if current else {"model_version_id": None}),
        )
        if current is not None and nothing_to_score:
            log.info("inference.nothing_to_score", key=infer_key, **model_ids(current))
        elif current is not None and not claimed and not by_autopilot:  # back to a served one
            log.info("inference.already_claimed", key=infer_key)

    def claim_inference(
        self, automation: Automation, version: ModelVersionInfo, adopted: bool = False
    ) -> bool:
        """Claim the one inference pinned to a version; False if it was claimed before, or
        if the automation scores scoring datasets and has selected none yet.

        `adopted`: its promotion was found in the store, not made with this ledger (lost or
        restored). An automation with scoring datasets then claims it only for the version
        production is on, and only if that version has not scored the newest scoring version
        already, under whichever key (the store's `score:` tags say, `stages/scoring.py`): a
        version production has moved past scored what it scored in its time, not what is
        newest now."""
        scores = scoring.production_change_details(self.ledger, automation)
        if scores is None:
            return False
        if adopted and scores and not self._adopted_scores(automation, version, scores):
            return False
        return self.ledger.claim(
            action_key(ActionKind.INFER, version.id),
            ActionKind.INFER,
            version.id,
            {"model_version_number": version.number, **model_ids(version), **scores},
            automation.name,
        )

    def _adopted_scores(
        self, automation: Automation, version: ModelVersionInfo, scores: dict[str, Any]
    ) -> bool:
        """Whether an adopted promotion's inference is still to score the newest version."""
        if self.ledger.get_cursor(automation.production_stream) != version.id:
            return False
        tag = scored_tag(str(scores[SCORING_ID]))
        return self.store.completed_run_tagged(tag, model_version_id=version.id) is None


def model_ids(version: ModelVersionInfo) -> dict[str, object]:
    """The ids a log line about a model version carries, to follow it through the chain."""
    ids: dict[str, object] = {"model_version_id": version.id, "model_version": version.label}
    dataset = trained_on(version)
    if dataset is not None:
        ids["dataset_version_id"] = dataset
    if version.producer is not None:
        ids["training_run_id"] = version.producer.id
    return ids


def trained_on(version: ModelVersionInfo) -> str | None:
    """The dataset version a model version was trained on, when the daemon launched its run
    (the run's action key says it); else what the run logged as `dataset_version_id`."""
    for tag in version.producer.tags if version.producer else ():
        try:
            parsed = parse_action_key(tag)
        except ValueError:
            continue
        if parsed.kind is ActionKind.TRAIN:
            return parsed.subject_id
    logged = version.metadata.get("dataset_version_id")
    return None if logged is None else str(logged)
