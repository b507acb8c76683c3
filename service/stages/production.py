"""Watching production: when a model's production version changes (the daemon's promotion, a
person's approval or rollback, anyone's change in ZenML), record the change, in the store on
the version (`core/production_history`) and in the ledger, and serve the version once in that
stint in production: its deployment first, when the automation has one, then its inference,
both pinned to that exact version (the inference on the newest selected scoring version, for
an automation with scoring datasets). With ROLLBACK_ON_FAILURE, production goes back when the
deployment or inference of the daemon's own promotion failed for good."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from service import review
from service.core.actions import ActionKind, ActionState, action_key, parse_action_key
from service.core.automation import Automation
from service.core.production_history import (
    ChangedBy,
    ProductionRecord,
    VersionHistory,
    following,
    latest_record,
    record_metadata,
    stint_key,
    utc_now_iso,
)
from service.core.promotion import repair_duplicate_production
from service.core.records import ModelVersionInfo, RunStatus
from service.core.scoring import SCORING_ID, scored_tag
from service.faults import crashpoint
from service.notify import notices
from service.stages import scoring
from service.stages.context import AFTER, Context, training_not_settled

NOTHING_TO_SCORE = "nothing_to_score"  # scoring datasets, none selected yet: no inference
# Ledger meta, per automation: the production version's record as the daemon last saw it
# (`Seen`), so that the next change is numbered after it and a return to the same version
# between two polls is noticed.
SEEN_PREFIX = "production_seen/"
# In a deployment's or inference's details: the stint in production it serves, and the action
# it runs after (the deployment before an inference: `stages/actions.py` holds it until then).
STINT = "stint"


@dataclass(frozen=True)
class Seen:
    """The current production version's production record, as the daemon recorded it."""

    seq: int
    stint: int
    changed_by: str
    updated: str | None  # the version's `updated` then: a stage change bumps it

    @classmethod
    def load(cls, text: str | None) -> Seen | None:
        if not text:
            return None
        values = json.loads(text)
        return cls(
            seq=int(values.get("seq", 0)),
            stint=int(values.get("stint", 1)),
            changed_by=str(values.get("changed_by", ChangedBy.EXTERNAL.value)),
            updated=values.get("updated"),
        )


class ProductionWatch:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self._rollback_refused: dict[str, str] = {}  # automation -> the failed key, said once

    def tick(self, automations: list[Automation] | None = None) -> None:
        """One store query for every model's production versions, then a look per automation
        (after rolling back, first, what failed and asks for it)."""
        watched = automations or list(self.context.automations.values())
        for automation in watched:
            if automation.rollback_on_failure:
                self._roll_back_on_failure(automation)
        found = self.store.production_versions_of([a.model_name for a in watched])
        for automation in watched:
            versions = found.get(automation.model_name, [])
            self._observe(automation, self._settle_duplicates(automation, versions))

    def current(self, automation: Automation) -> ModelVersionInfo | None:
        """The production version of one automation's model (repaired if a race left two)."""
        versions = self.store.production_versions(automation.model_name)
        return self._settle_duplicates(automation, versions)

    def seen(self, automation: Automation) -> Seen | None:
        return Seen.load(self.ledger.get_meta(f"{SEEN_PREFIX}{automation.name}"))

    def remember(self, automation: Automation, version: ModelVersionInfo) -> None:
        """At a first start that does not serve the production version: note its record."""
        record = latest_record(version.metadata)
        self._remember(automation, record, version)

    def remember_none(self, automation: Automation) -> None:
        """At a first start with no production version: its first one is a change like any."""
        self._remember(automation, None, None, seq=0)

    def _remember(
        self,
        automation: Automation,
        record: ProductionRecord | None,
        version: ModelVersionInfo | None,
        seq: int | None = None,
    ) -> None:
        seen = Seen(
            seq=seq if seq is not None else (record.seq if record else 0),
            stint=record.stint if record else 1,
            changed_by=record.changed_by if record else ChangedBy.EXTERNAL.value,
            updated=version.updated.isoformat() if version is not None else None,
        )
        self.ledger.set_meta(f"{SEEN_PREFIX}{automation.name}", json.dumps(asdict(seen)))

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

    # -- a change ------------------------------------------------------------------------------

    def _observe(self, automation: Automation, current: ModelVersionInfo | None) -> None:
        stream = automation.production_stream
        previous = self.ledger.get_cursor(stream)
        seen = self.seen(automation)
        current_id = current.id if current else None
        returned: ProductionRecord | None = None
        if current_id == previous:
            returned = self._returned(automation, current, seen)
            if returned is None:
                return
            previous = returned.replaced  # it went and came back between polls
        log = self.context.log(automation)
        full: ModelVersionInfo | None = None
        if current is not None:
            # A pipeline that promotes its own version does so before its run ends: serve it
            # once the run is done, so inference sees everything it wrote (and once its
            # training is logged done, so the chain's events read in order).
            full = self.store.model_version(current.id) or current
            producer = full.producer
            if producer is not None and (
                producer.status is RunStatus.IN_PROGRESS
                or training_not_settled(self.ledger, producer)
            ):
                log.debug("production.waiting_for_training_run", **model_ids(full))
                return
        record = returned or (self._record(automation, full, previous, seen) if full else None)
        changed_by = record.changed_by if record else ChangedBy.EXTERNAL.value
        nothing_to_score = scoring.production_change_details(self.ledger, automation) is None
        # Read before the ledger transaction: the version a person's change replaced.
        outbox, replaced = self.context.outbox, None
        wanted = ("model.production_changed", "model.rolled_back")
        if (
            previous
            and outbox
            and changed_by != ChangedBy.AUTOPILOT.value
            and any(outbox.wants(event, automation.name) for event in wanted)
        ):
            replaced = self.store.model_version(previous)
        claimed = False
        with self.ledger.transaction():
            self.ledger.set_cursor(stream, current_id)
            self._remember(automation, record, full, seq=None if record else _seq(seen))
            self.ledger.record_production_change(
                automation.name,
                automation.model_name,
                current_id,
                full.number if full else None,
                previous,
                changed_by,
                _change_details(record),
            )
            if full is not None and record is not None:
                claimed = self.claim_serving(automation, full, record.stint)
            self._notify_change(automation, full, record, replaced or previous)
        crashpoint("after_production_seen")
        self._log_change(automation, full, record, previous, claimed, nothing_to_score)

    def _returned(
        self, automation: Automation, current: ModelVersionInfo | None, seen: Seen | None
    ) -> ProductionRecord | None:
        """The production version is the one the daemon saw, but was changed since (its
        `updated` moved): if it went and came back between two polls (a rollback to it, say),
        its newer record says so, and that return is a change of its own."""
        if current is None or seen is None or seen.updated == current.updated.isoformat():
            return None
        full = self.store.model_version(current.id)
        record = latest_record(full.metadata) if full is not None else None
        if record is None or record.seq <= seen.seq:
            self._remember(automation, record, current, seq=seen.seq)  # touched, not changed
            return None
        return record

    def _record(
        self,
        automation: Automation,
        version: ModelVersionInfo,
        previous: str | None,
        seen: Seen | None,
    ) -> ProductionRecord:
        """The record of this change: the one whoever made it wrote on the version (a command,
        the daemon's own promotion: numbered after the version it replaced), else one the
        daemon writes now, for a change made in ZenML."""
        latest = latest_record(version.metadata)
        if seen is None and previous is None:
            # A first look at a production version that was there before this ledger (a lost
            # ledger started from the beginning): its stint as recorded, nothing written, so
            # that what was done for it is found in the store, not done again.
            return latest or ProductionRecord(
                seq=0,
                stint=1,
                previous_version_id=None,
                previous_number=None,
                changed_by=self._changed_by(automation, version)[0].value,
                by=None,
                at=utc_now_iso(),
            )
        seq_before = _seq(seen) if seen is not None else self._seq_of(previous)
        if latest is not None and latest.seq > seq_before:
            return latest
        changed_by, by = self._changed_by(automation, version)
        replaced = self.store.model_version(previous) if previous else None
        record = following(
            VersionHistory(version.id, version.number, version.metadata),
            seq_before,
            (previous, replaced.number if replaced else None),
            changed_by,
            by,
            served_before=latest is None and self.served_before(version.id),
            at=utc_now_iso(),
        )
        self.store.record_version_metadata(version.id, record_metadata(record))
        return record

    def _changed_by(
        self, automation: Automation, version: ModelVersionInfo
    ) -> tuple[ChangedBy, str | None]:
        """Who made a change the daemon sees without a record: a person approving a version
        that awaits approval (in ZenML itself), the daemon (a promotion from before production
        records), or someone else."""
        approval = self.ledger.approval(automation.name, version.id)
        if approval is not None and approval.state in ("waiting", "approved"):
            return ChangedBy.APPROVAL, approval.by
        promotion = self.ledger.action(action_key(ActionKind.PROMOTE, version.id))
        if promotion is not None and (promotion.details.get("decision") or {}).get("outcome") == (
            "promoted"
        ):
            return ChangedBy.AUTOPILOT, None
        return ChangedBy.EXTERNAL, None

    def _seq_of(self, version_id: str | None) -> int:
        """The change number of a version's production record (a ledger that has not seen one:
        upgraded from before production records)."""
        version = self.store.model_version(version_id) if version_id else None
        record = latest_record(version.metadata) if version is not None else None
        return record.seq if record is not None else 0

    def served_before(self, version_id: str) -> bool:
        """A version with no production record was served before records existed: the daemon
        claimed its inference (not an operator's `skip`/`replay` of a key no automation claimed
        yet, which the first claim adopts), or a run of it is in the store."""
        action = self.ledger.action(action_key(ActionKind.INFER, version_id))
        if action is not None and action.automation:
            return True
        return review.served_before(self.store, version_id)

    def _notify_change(
        self,
        automation: Automation,
        version: ModelVersionInfo | None,
        record: ProductionRecord | None,
        replaced: ModelVersionInfo | str | None,
    ) -> None:
        """In the change's transaction: `model.production_changed` for a change made outside
        the autopilot's promotions, approvals and rollbacks (those have their own events),
        `model.rolled_back` for a rollback."""
        changed_by = record.changed_by if record else ChangedBy.EXTERNAL.value
        if changed_by == ChangedBy.ROLLBACK.value and version is not None and record is not None:
            self.context.notify(
                notices.rolled_back(automation.name, version, trained_on(version), record, replaced)
            )
        elif changed_by == ChangedBy.EXTERNAL.value:
            self.context.notify(
                notices.production_changed(
                    automation.name,
                    automation.model_name,
                    version,
                    trained_on(version) if version else None,
                    replaced,
                )
            )

    def _log_change(
        self,
        automation: Automation,
        version: ModelVersionInfo | None,
        record: ProductionRecord | None,
        previous: str | None,
        claimed: bool,
        nothing_to_score: bool,
    ) -> None:
        log = self.context.log(automation)
        changed_by = record.changed_by if record else ChangedBy.EXTERNAL.value
        serving: dict[str, object] = {}
        if version is not None and record is not None:  # when its one inference was claimed
            when = "now" if claimed else _claimed_when(changed_by)
            if nothing_to_score:  # no scoring version selected yet: nothing claimed
                when = NOTHING_TO_SCORE
            serving = {
                "inference_key": stint_key(ActionKind.INFER, version.id, record.stint),
                "inference_claimed": when,
                "stint": record.stint,
                "seq": record.seq,
            }
            if automation.deployment is not None:
                serving["deployment_key"] = stint_key(ActionKind.DEPLOY, version.id, record.stint)
        ids = model_ids(version) if version else {"model_version_id": None}
        log.info(
            "model.production_changed",
            previous_model_version_id=previous,
            changed_by=changed_by,
            by=record.by if record else None,
            **serving,
            **ids,
        )
        if changed_by == ChangedBy.ROLLBACK.value and record is not None:
            log.warning(
                "model.rolled_back",
                rolled_back_from=record.rolled_back_from,
                by=record.by,
                reason=record.reason,
                failed_run_id=record.failed_run_id,
                seq=record.seq,
                stint=record.stint,
                **ids,
            )
        if version is not None and nothing_to_score:
            log.info(
                "inference.nothing_to_score", key=serving.get("inference_key"), **model_ids(version)
            )
        elif version is not None and not claimed and changed_by == ChangedBy.EXTERNAL.value:
            log.info("inference.already_claimed", key=serving.get("inference_key"))

    # -- serving ---------------------------------------------------------------------------

    def claim_serving(
        self,
        automation: Automation,
        version: ModelVersionInfo,
        stint: int,
        adopted: bool = False,
    ) -> bool:
        """Claim the one deployment (when the automation has one) and inference of a version's
        stint in production, the inference to run after the deployment succeeded; False if its
        inference was claimed before, or if the automation scores scoring datasets and has
        selected none yet.

        `adopted`: its promotion was found in the store, not made with this ledger (lost or
        restored). An automation with scoring datasets then claims it only for the version
        production is on, and only if that version has not scored the newest scoring version
        already, under whichever key (the store's `score:` tags say, `stages/scoring.py`): a
        version production has moved past scored what it scored in its time, not what is
        newest now."""
        details: dict[str, Any] = {
            "model_version_number": version.number,
            **model_ids(version),
            STINT: stint,
        }
        inference = dict(details)
        if automation.deployment is not None:  # deployed whether or not there is data to score
            deployment = stint_key(ActionKind.DEPLOY, version.id, stint)
            self.ledger.claim(deployment, ActionKind.DEPLOY, version.id, details, automation.name)
            inference[AFTER] = deployment
        scores = scoring.production_change_details(self.ledger, automation)
        if scores is None:
            return False
        if adopted and scores and not self._adopted_scores(automation, version, scores):
            return False
        inference.update(scores)
        key = stint_key(ActionKind.INFER, version.id, stint)
        return self.ledger.claim(key, ActionKind.INFER, version.id, inference, automation.name)

    def _adopted_scores(
        self, automation: Automation, version: ModelVersionInfo, scores: dict[str, Any]
    ) -> bool:
        """Whether an adopted promotion's inference is still to score the newest version."""
        if self.ledger.get_cursor(automation.production_stream) != version.id:
            return False
        tag = scored_tag(str(scores[SCORING_ID]))
        return self.store.completed_run_tagged(tag, model_version_id=version.id) is None

    # -- rollback on failure ---------------------------------------------------------------

    def _roll_back_on_failure(self, automation: Automation) -> None:
        """ROLLBACK_ON_FAILURE: the deployment or inference of the production version the
        daemon itself promoted failed for good (a blocked inference counts through its failed
        deployment): production goes back to the version before it, as `autopilot rollback`
        does. A store error fails the tick, and the next one tries again; a rollback the
        store cannot make (nothing recorded before it) is said once."""
        current = self.ledger.get_cursor(automation.production_stream)
        seen = self.seen(automation)
        if current is None or seen is None or seen.changed_by != ChangedBy.AUTOPILOT.value:
            return
        failed = None
        for kind in (ActionKind.DEPLOY, ActionKind.INFER):
            action = self.ledger.action(stint_key(kind, current, seen.stint))
            if action is not None and action.state is ActionState.FAILED:
                failed = action
                break
        if failed is None or self._rollback_refused.get(automation.name) == failed.key:
            return
        what = "deployment" if failed.kind is ActionKind.DEPLOY else "inference"
        run = f" (run {failed.run_id})" if failed.run_id else ""
        try:
            review.rollback(
                self.store,
                automation.model_name,
                None,
                by="autopilot",
                reason=f"its {what} {failed.key} failed for good{run}",
                failed_run_id=failed.run_id,
                expected_from=current,
            )
        except review.Refused as refused:
            self._rollback_refused[automation.name] = failed.key
            self.context.log(automation).error(
                "model.rollback_refused",
                key=failed.key,
                error=str(refused),
                model_version_id=current,
            )


def _seq(seen: Seen | None) -> int:
    return seen.seq if seen is not None else 0


def _claimed_when(changed_by: str) -> str:
    """Who claimed the inference of a change before the watch saw it."""
    return {
        ChangedBy.AUTOPILOT.value: "when_promoted",
        ChangedBy.APPROVAL.value: "when_approved",
    }.get(changed_by, "before")


def _change_details(record: ProductionRecord | None) -> dict[str, Any]:
    """What the ledger's production change keeps of its record: who, why, which stint."""
    if record is None:
        return {}
    details = {
        "seq": record.seq,
        "stint": record.stint,
        "by": record.by,
        "reason": record.reason,
        "rolled_back_from": record.rolled_back_from,
        "failed_run_id": record.failed_run_id,
    }
    return {k: v for k, v in details.items() if v is not None}


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
