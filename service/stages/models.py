"""Judging and promoting model versions: each new version of an automation's model is judged
once its training run has finished, by the automation's promotion policy; the decision is
recorded before the stage changes, and carried out idempotently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from service import metrics
from service.core import polling
from service.core.actions import ActionKind, ActionState, action_key
from service.core.approval import AWAITING_APPROVAL
from service.core.automation import Automation, PromotionMode
from service.core.evaluation import needs_evaluation
from service.core.polling import Polls, format_floor, parse_floor, raised_floor
from service.core.production_history import (
    ChangedBy,
    ProductionRecord,
    VersionHistory,
    following,
    record_metadata,
    records,
    seq_of,
    utc_now_iso,
)
from service.core.promotion import PRODUCTION, PromotionDecision, decide_promotion, wait_reason
from service.core.records import ModelVersionInfo, RunInfo
from service.faults import crashpoint
from service.ledger import Action
from service.notify import notices
from service.stages.approval import Approvals
from service.stages.context import (
    MODEL,
    TRAINING_NOT_SETTLED,
    WAITING_SINCE,
    Context,
    first_seen,
    stored_floor,
    training_not_settled,
    upgrade_cursor,
)
from service.stages.evaluation import Evaluations, is_evaluating, settled
from service.stages.production import ProductionWatch, model_ids, trained_on
from service.store import DECISION_METADATA_KEY

# Kept in a waiting model version's ledger details: when the daemon first saw it without a run
# (its own clock, epoch seconds), to measure UNLINKED_SETTLE as a duration.
UNLINKED_SINCE = "unlinked_since"
# Kept in a promotion's ledger details before its stage change: the production record it
# writes, so that a restart completes the same change (`core/production_history`).
PRODUCTION_RECORD = "production_record"


class ModelJudge:
    def __init__(self, context: Context, production: ProductionWatch, approvals: Approvals) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self.production = production
        self.approvals = approvals  # where a decision in PROMOTION_MODE=approval is carried out
        self._by_model = {a.model_name: a for a in context.automations.values()}
        # Sweeps and fast reads (core/polling), and what they read, as for datasets.
        # Models numbered high are read by numbers alone (SQLite's plan for a model filter).
        self._polls = Polls(
            context.settings.reconcile_interval_seconds,
            number_only_from=polling.NUMBER_ONLY_FROM,
        )
        self._seen = self._polls.seen
        # Candidates of automations with an evaluation pipeline are decided there.
        self.evaluations = Evaluations(context, self._production)

    # -- start-up -----------------------------------------------------------------------------

    def start(self) -> None:
        for automation in self.context.automations.values():
            stream = automation.model_stream
            if not self.ledger.has_cursor(stream):
                self._init_streams(automation)
                continue
            number = parse_floor(self.ledger.get_cursor(stream))
            if isinstance(number, int):  # a cursor written before floors
                model = automation.model_name
                floor = self.store.model_created_at_number(model, number) if number else None
                upgrade_cursor(self.context, automation, stream, number, floor)

    def _init_streams(self, automation: Automation) -> None:
        start = self.context.settings.start
        model = automation.model_name
        skipped = 0
        if start.since is not None:
            for version in self.store.model_versions_created_before(model, start.since):
                self._note(automation, version, "skipped", "predates_start_from")
                skipped += 1
        newest = self.store.newest_model_created(model) if start.mode == "now" else None
        floor = start.first_floor(newest)
        if start.mode == "now" and floor is not None:  # those already there at the floor
            for version in self.store.model_versions_created_since(model, floor):
                self._note(automation, version, "skipped", "predates_start_from")
                skipped += 1
        production = self.production.current(automation)
        already_served = production is not None and start.skips(production.updated)
        with self.ledger.transaction():
            self.ledger.set_cursor(
                automation.production_stream,
                production.id if production and already_served else None,
            )
            if production is not None and already_served:  # served already: no inference
                self.ledger.record_production_change(
                    automation.name,
                    model,
                    production.id,
                    production.number,
                    None,
                    "observed_at_start",
                )
                self.production.remember(automation, production)
            elif production is None:  # its first production version is a change like any
                self.production.remember_none(automation)
            self.ledger.set_cursor(automation.model_stream, format_floor(floor))
        self.context.log(automation).info(
            "startup.stream_initialised",
            stream=automation.model_stream,
            start_from=str(start),
            floor=format_floor(floor) or None,
            skipped_existing=skipped + (1 if already_served else 0),
            production_version_id=production.id if production else None,
        )

    # -- the tick -----------------------------------------------------------------------------

    def tick(
        self, observe: bool = True, trainings: Sequence[RunInfo | None] = ()
    ) -> list[Automation]:
        """Judge new and waiting model versions; the automations whose production the daemon
        changed. Between polls (`observe` False), the store is not listed: only the versions
        of the `trainings` that just ended are read (all listed if one's version is unknown)."""
        promoted: dict[str, Automation] = {}
        read_now: set[str] = set()  # a waiting version listed here is not read again below
        if observe or any(run is None or run.model_version_id is None for run in trainings):
            self._observe(promoted, read_now)
        else:
            self._judge_trained(trainings, promoted, read_now)
        for subject in self.ledger.subjects_with_status(MODEL, "waiting"):
            if subject.id in read_now:
                continue
            automation = self.context.automations.get(subject.automation)
            waiting = self.store.model_version(subject.id) if automation else None
            if automation is not None and waiting is not None and self._judge(automation, waiting):
                promoted[automation.name] = automation
        for automation, action in self.evaluations.tick():  # decided on evaluated values
            if self._apply(automation, action):
                promoted[automation.name] = automation
        return list(promoted.values())

    def _judge_trained(
        self,
        trainings: Iterable[RunInfo | None],
        promoted: dict[str, Automation],
        read_now: set[str],
    ) -> None:
        """Judge the model versions these training runs were linked to (read by id)."""
        for run in trainings:
            version_id = run.model_version_id if run else None
            if version_id is None or version_id in read_now:
                continue
            version = self.store.model_version(version_id)
            automation = self._by_model.get(version.model_name) if version else None
            if version is None or automation is None:
                continue  # not a watched model's: the poll decides nothing about it either
            read_now.add(version.id)
            floor = stored_floor(self.ledger, automation.model_stream)
            if (floor is None or version.created >= floor) and self._judge(automation, version):
                promoted[automation.name] = automation

    def _observe(self, promoted: dict[str, Automation], read_now: set[str]) -> None:
        """Carry out promotions a crash left pending, and judge the versions created since the
        floors."""
        for action in self.ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE):
            automation = self.context.automations.get(action.automation)
            if is_evaluating(action):
                continue  # not decided yet: its evaluations decide it (`stages/evaluation`)
            if automation is not None and self._apply(automation, action):
                promoted[automation.name] = automation  # left by a crash mid-promotion
        floors = {
            model: stored_floor(self.ledger, automation.model_stream)
            for model, automation in self._by_model.items()
        }
        sweep, groups = self._polls.plan(floors, self.store.top_model_number)
        for group in groups:
            newest_before = self._seen.newest
            for version in self.store.model_versions_since(group, self._seen, self._judged):
                read_now.add(version.id)
                automation = self._by_model.get(version.model_name)
                if automation is None:  # the store answered for another name (core/names)
                    self.context.unwatched_name("model", version.model_name)
                    continue
                floor = floors[version.model_name]
                if (floor is None or version.created >= floor) and self._judge(automation, version):
                    promoted[automation.name] = automation
                self._seen.add(version.model_name, version.id, version.created, version.number)
            self._polls.read(group, newest_before)
            if sweep:  # only a sweep moves the stored floors (core/polling)
                self._raise_floors(group.names, floors, newest_before)
        if sweep:
            self._polls.swept()

    def _judged(self, model: str, version_id: str) -> bool:
        automation = self._by_model.get(model)
        if automation is None:  # not a watched model's: nothing to judge (core/names)
            self.context.unwatched_name("model", model)
            return True
        return settled(self.ledger.subject(automation.name, version_id))

    def _raise_floors(
        self,
        models: Iterable[str],
        floors: dict[str, datetime | None],
        newest_before: datetime | None,
    ) -> None:
        """After a complete read of these models, move their floors up (see `core/polling`)."""
        with self.ledger.transaction():
            for model in models:
                raised = raised_floor(floors[model], newest_before)
                if raised != floors[model]:
                    floors[model] = raised
                    stream = self._by_model[model].model_stream
                    self.ledger.set_cursor(stream, format_floor(raised))
        for model in models:
            self._seen.forget_below(model, floors[model])

    def _judge(self, automation: Automation, version: ModelVersionInfo) -> bool:
        """Decide on a version and carry the decision out; True if it was promoted now."""
        prior = self.ledger.subject(automation.name, version.id)
        if settled(prior):
            return False
        now = self.context.clock()
        unlinked_since = None if version.producer else first_seen(prior, UNLINKED_SINCE, now)
        unlinked_for = timedelta(seconds=0 if unlinked_since is None else now - unlinked_since)
        waiting = wait_reason(version, unlinked_for)
        if waiting is None and training_not_settled(self.ledger, version.producer):
            waiting = TRAINING_NOT_SETTLED  # the launcher's check, then its training logged done
        if waiting is not None:
            if prior is None or prior.reason != waiting:
                self.context.log(automation).info(
                    "model.waiting", reason=waiting, **model_ids(version)
                )
            seen = {WAITING_SINCE: first_seen(prior, WAITING_SINCE, now)}  # for `status`
            if unlinked_since is not None:
                seen[UNLINKED_SINCE] = unlinked_since
            self._note(automation, version, "waiting", waiting, final=False, details=seen)
            return False
        # Its metadata was read before its run was seen finished, and the run may have logged
        # the metric in between: read it again, now that all the run logged is in the store.
        policy = automation.promotion
        version = self.store.model_version(version.id, policy.metric_artifact) or version
        key = action_key(ActionKind.PROMOTE, version.id)
        recorded = version.metadata.get(DECISION_METADATA_KEY)
        if isinstance(recorded, dict) and "outcome" in recorded:
            self._adopt(automation, version, key, recorded)
            return False
        production = self._production(automation)
        if automation.evaluation is not None and needs_evaluation(version, production):
            self.evaluations.begin(automation, version, production, prior)  # compared there
            return False
        decision = decide_promotion(version, production, policy)
        with self.ledger.transaction():
            self.ledger.claim(
                key, ActionKind.PROMOTE, version.id, _details(decision, version), automation.name
            )
            self._note(automation, version, "decided", decision.reason.value)
        crashpoint("after_promotion_decided")
        action = self.ledger.action(key)
        if action is not None and action.state is ActionState.PENDING:
            return self._apply(automation, action, version)
        return False

    def _production(self, automation: Automation) -> ModelVersionInfo | None:
        """Production as the policy compares against it (with its metric artifact, if any)."""
        current = self.production.current(automation)
        artifact = automation.promotion.metric_artifact
        if current is None or artifact is None:
            return current
        return self.store.model_version(current.id, artifact) or current

    def _apply(
        self, automation: Automation, action: Action, seen: ModelVersionInfo | None = None
    ) -> bool:
        """Carry out a recorded decision; True if it changed the stage. Every step is
        idempotent, so a crash just repeats it."""
        policy = automation.promotion
        version = seen or self.store.model_version(action.subject_id, policy.metric_artifact)
        if version is None:
            self.ledger.transition(action.key, ActionState.FAILED, error="model version deleted")
            return False
        recorded = version.metadata.get(DECISION_METADATA_KEY)
        if isinstance(recorded, dict) and "outcome" in recorded:
            # Carried out already (the decision is written after the stage change): a ledger
            # restored from a backup taken before that must not promote the version again.
            self._adopt(automation, version, action.key, recorded)
            return False
        decision = action.details["decision"]
        if decision["outcome"] == "promoted":
            production = self._production(automation)
            if production is not None and production.id not in (
                version.id,
                decision["production_version_id"],
            ):  # production changed since the decision (a person, or a crash): decide again
                if "evaluation" in decision:  # on the same data: production is scored first
                    self.evaluations.against(automation, action, production)
                    return False
                fresh = decide_promotion(version, production, policy)
                decision = fresh.as_metadata()
                self.ledger.update_details(action.key, {"decision": decision})
        if (
            decision["outcome"] == "promoted"
            and automation.promotion_mode is PromotionMode.APPROVAL
        ):
            # The policy says yes; a person says when (`stages/approval.py`).
            decision = {**decision, "outcome": AWAITING_APPROVAL, "staged_at": utc_now_iso()}
            self.ledger.update_details(action.key, {"decision": decision})
        outcome = decision["outcome"]
        waiting = _waiting(automation, outcome)
        stage_changed = outcome == "promoted" and version.stage != PRODUCTION
        record = self._production_record(automation, action, version)
        if stage_changed:
            assert record is not None
            self.store.record_version_metadata(version.id, record_metadata(record))
            self.store.set_stage(automation.model_name, version.id, PRODUCTION)
            crashpoint("after_stage_changed")
        elif outcome == AWAITING_APPROVAL:
            self.approvals.stage(automation, version)
        if DECISION_METADATA_KEY not in version.metadata:
            self.store.record_decision(version.id, decision)
        # Logged as soon as the store holds the decision, before the ledger records it done:
        # a restart after this line finds the decision in the store (`_adopt`) and neither
        # carries it out nor logs it again. Logged after the commit, a kill in between lost
        # the line for good (`after_decision_recorded`).
        self._log_decision(automation, action.key, version, decision, waiting)
        crashpoint("after_decision_stored")
        with self.ledger.transaction():
            self.ledger.transition(action.key, ActionState.SUCCEEDED)
            if outcome == "promoted" and record is not None:
                # Claimed here, not when production is next read: a later promotion in the same
                # tick would move production past this version before anyone saw it there.
                self.production.claim_serving(automation, version, record.stint)
            elif outcome == AWAITING_APPROVAL:
                self.approvals.note_waiting(automation, version, decision)
            self.context.notify(
                notices.decision(
                    automation.name, version, trained_on(version), action.key, decision | waiting
                )
            )
        crashpoint("after_decision_recorded")
        return stage_changed

    def _log_decision(
        self,
        automation: Automation,
        key: str,
        version: ModelVersionInfo,
        decision: dict[str, Any],
        waiting: dict[str, Any],
    ) -> None:
        metrics.ACTIONS.labels(automation.name, "promote", decision["outcome"]).inc()
        self.context.log(automation).info(
            f"model.{decision['outcome']}",
            key=key,
            reason=decision["reason"],
            detail=decision["detail"],
            metric=decision["metric"],
            value=decision["value"],
            threshold=decision["threshold"],
            goal=decision.get("goal", "maximize"),
            production_version_id=decision["production_version_id"],
            production_value=decision["production_value"],
            **waiting,
            **model_ids(version),
        )

    def _production_record(
        self, automation: Automation, action: Action, version: ModelVersionInfo
    ) -> ProductionRecord | None:
        """The production record of a promotion (None: not one). Planned once, kept in the
        promotion's details before it is written, so that a restart completes the same
        change; planned again, in the same stint, if production moved before it took effect."""
        if (action.details.get("decision") or {}).get("outcome") != "promoted":
            return None
        planned = ProductionRecord.from_dict(action.details.get(PRODUCTION_RECORD))
        if version.stage == PRODUCTION:  # carried out before a crash: as it was planned
            return planned or _first_autopilot_record(version)
        production = self.production.current(automation)
        if planned is not None and planned.previous_version_id == (
            production.id if production else None
        ):
            return planned
        history = VersionHistory(version.id, version.number, version.metadata)
        seen = self.production.seen(automation)
        record = following(
            history,
            max(seq_of(_history(production)), seen.seq if seen else 0),
            (production.id, production.number) if production else (None, None),
            ChangedBy.AUTOPILOT,
            None,
            served_before=history.latest is None and self.production.served_before(version.id),
            at=utc_now_iso(),
            in_flight=planned is not None,
        )
        self.ledger.update_details(action.key, {PRODUCTION_RECORD: record.as_dict()})
        return record

    def _adopt(
        self,
        automation: Automation,
        version: ModelVersionInfo,
        key: str,
        decision: dict[str, Any],
    ) -> None:
        """A version whose decision is in the store but not in the ledger, or only as pending
        (the ledger was lost, or restored from an old backup): take the store's decision,
        change nothing. A decision still pending in this ledger was made with it and carried
        out, then the daemon stopped before recording it done (`after_decision_stored`): its
        notification, written with that record, is written now."""
        prior = self.ledger.action(key)
        unreported = prior is not None and prior.state is ActionState.PENDING
        with self.ledger.transaction():
            details = {**_details_of_version(version), "decision": decision}
            self.ledger.claim(key, ActionKind.PROMOTE, version.id, details, automation.name)
            action = self.ledger.action(key)
            if action is not None and action.state is ActionState.PENDING:
                self.ledger.transition(key, ActionState.SUCCEEDED, details=details)
            if decision["outcome"] == "promoted":
                record = _first_autopilot_record(version)
                stint = record.stint if record else 1
                self.production.claim_serving(automation, version, stint, adopted=True)
            elif decision["outcome"] == AWAITING_APPROVAL:
                self.approvals.adopt(automation, version, decision)
            self._note(automation, version, "decided", str(decision.get("reason")))
            if unreported:  # its id is the one it would have had: a receiver drops a repeat
                waiting = _waiting(automation, decision["outcome"])
                self.context.notify(
                    notices.decision(
                        automation.name, version, trained_on(version), key, decision | waiting
                    )
                )
        self.context.log(automation).info(
            "model.decision_found_in_store",
            key=key,
            outcome=decision["outcome"],
            reason=decision.get("reason"),
            **model_ids(version),
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


def _first_autopilot_record(version: ModelVersionInfo) -> ProductionRecord | None:
    """The production record of the daemon's own promotion of a version."""
    own = [r for r in records(version.metadata).values() if r.changed_by == "autopilot"]
    return min(own, key=lambda r: r.stint) if own else None


def _history(version: ModelVersionInfo | None) -> VersionHistory | None:
    return None if version is None else VersionHistory(version.id, version.number, version.metadata)


def _waiting(automation: Automation, outcome: str) -> dict[str, Any]:
    """How long a staged version may wait, for the person told of it."""
    if outcome != AWAITING_APPROVAL:
        return {}
    return {"approval_timeout_seconds": automation.approval_timeout_seconds}


def _details(decision: PromotionDecision, version: ModelVersionInfo) -> dict[str, Any]:
    return {**_details_of_version(version), "decision": decision.as_metadata()}


def _details_of_version(version: ModelVersionInfo) -> dict[str, Any]:
    """What a promotion's record in the ledger keeps beside the decision: the ids that tie the
    version to the dataset and the training run that made it (the status page's chains)."""
    ids = model_ids(version)
    ids.pop("model_version", None)  # the label: model name and number, both kept
    return {"model_version_number": version.number, **ids}
