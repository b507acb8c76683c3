"""The human gate (`PROMOTION_MODE=approval`): a version that passes the promotion policy goes to
ZenML's `staging` and waits for a person; each poll looks at the versions waiting (few) and
follows what happened to them in the store (`core/approval.py`): approved (by `autopilot
approve`, or promoted in ZenML), rejected (`autopilot reject`, or archived in ZenML), expired
(APPROVAL_TIMEOUT_SECONDS), or superseded by a newer candidate. The wait is a row in the
ledger (`approvals`) and facts in the store, never a sleep; a verdict recorded on a version and
not carried out (its command died midway) is carried out here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service import review
from service.core.approval import (
    AWAITING_APPROVAL,
    STAGING,
    ApprovalRecord,
    Outcome,
    Step,
    approval_record_of,
    judge_waiting,
)
from service.core.automation import Automation
from service.core.production_history import records, utc_now_iso
from service.core.records import ModelVersionInfo
from service.faults import crashpoint
from service.ledger import Approval
from service.notify import notices
from service.stages.context import Context
from service.stages.production import ProductionWatch, model_ids, trained_on

WAITING = "waiting"
EVENTS = {
    Outcome.APPROVED: "model.approved",
    Outcome.REJECTED: "model.approval_rejected",
    Outcome.EXPIRED: "model.approval_expired",
    Outcome.SUPERSEDED: "model.approval_superseded",
    Outcome.DELETED: "model.approval_deleted",
}


class Approvals:
    def __init__(self, context: Context, production: ProductionWatch) -> None:
        self.context = context
        self.ledger = context.ledger
        self.store = context.store
        self.production = production

    # -- staging a candidate (from `stages/models.py`, carrying out its decision) --------------

    def stage(self, automation: Automation, version: ModelVersionInfo) -> None:
        """Put a candidate in `staging`. ZenML holds one version per stage: the one waiting
        before it is archived, and recorded as superseded by it first (a reviewer looks at
        the newest candidate the policy passed, as production would have followed it)."""
        for waiting in self.ledger.approvals_in(WAITING, automation.name):
            if waiting.model_version_id != version.id:
                self._supersede(automation, waiting, version)
        if version.stage != STAGING:
            self.store.set_stage(automation.model_name, version.id, STAGING)
        crashpoint("after_staged")

    def note_waiting(
        self, automation: Automation, version: ModelVersionInfo, decision: dict[str, Any]
    ) -> None:
        """In the decision's ledger transaction: the version waits from now (its timeout on
        the daemon's clock, as every wait)."""
        self.ledger.stage_for_approval(
            automation.name,
            version.id,
            version.model_name,
            version.number,
            self.context.clock(),
            _waiting_details(version, decision),
        )

    def adopt(
        self, automation: Automation, version: ModelVersionInfo, decision: dict[str, Any]
    ) -> None:
        """A decision `awaiting_approval` found in the store (a lost or restored ledger): the
        version waits again, since it was staged (as the decision says), whatever happened
        to it since: the next look follows it."""
        staged_at = _epoch(decision.get("staged_at")) or self.context.clock()
        self.ledger.stage_for_approval(
            automation.name,
            version.id,
            version.model_name,
            version.number,
            staged_at,
            _waiting_details(version, decision),
        )

    def _supersede(
        self, automation: Automation, waiting: Approval, newer: ModelVersionInfo
    ) -> None:
        old = self.store.model_version(waiting.model_version_id)
        if old is not None and ApprovalRecord.read(old.metadata) is not None:
            return  # a person's verdict is on it already: the next look carries it out
        if old is not None:
            superseded = ApprovalRecord(
                Outcome.SUPERSEDED.value,
                None,
                utc_now_iso(),
                note=f"superseded by {newer.label}, a newer candidate that passed the policy",
                superseded_by=newer.id,
            )
            self.store.record_version_metadata(old.id, superseded.as_metadata())
        ended = self.ledger.resolve_approval(
            automation.name,
            waiting.model_version_id,
            Outcome.SUPERSEDED.value,
            None,
            {"superseded_by": newer.id, "superseded_by_number": newer.number},
        )
        if ended:
            self.context.log(automation).info(
                EVENTS[Outcome.SUPERSEDED],
                model_version_id=waiting.model_version_id,
                model_version_number=waiting.model_version_number,
                superseded_by=newer.id,
                superseded_by_number=newer.number,
            )

    # -- the tick ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Look at every version waiting for approval."""
        for waiting in self.ledger.approvals_in(WAITING):
            automation = self.context.automations.get(waiting.automation)
            if automation is not None:
                self._look(automation, waiting)

    def _look(self, automation: Automation, waiting: Approval) -> None:
        version = self.store.model_version(waiting.model_version_id)
        if version is None:
            self._end(automation, waiting, None, Outcome.DELETED, None, None)
            return
        approval = ApprovalRecord.read(version.metadata)
        verdict = judge_waiting(
            version.stage,
            approval,
            approval_record_of(records(version.metadata)),
            self.context.clock() - waiting.staged_at,
            automation.approval_timeout_seconds,
        )
        if verdict.step is Step.WAIT:
            return
        if verdict.step is Step.EXPIRE:
            timeout = automation.approval_timeout_seconds
            approval = ApprovalRecord(
                Outcome.EXPIRED.value,
                None,
                utc_now_iso(),
                note=f"not approved within APPROVAL_TIMEOUT_SECONDS ({timeout:g} s)",
            )
            self.store.record_version_metadata(version.id, approval.as_metadata())
        if verdict.step in (Step.EXPIRE, Step.CARRY_OUT_REJECTION):
            review.archive(self.store, version)
        elif verdict.step is Step.CARRY_OUT_APPROVAL and approval is not None:
            review.carry_out_approval(self.store, version, approval)
        elif approval is None and verdict.outcome in (Outcome.APPROVED, Outcome.REJECTED):
            # Promoted (or archived) in ZenML itself, its CLI or the dashboard: a verdict by
            # someone the store does not name, recorded as the commands record theirs.
            assert verdict.outcome is not None
            approval = ApprovalRecord(verdict.outcome.value, None, utc_now_iso(), via="zenml")
            self.store.record_version_metadata(version.id, approval.as_metadata())
        if verdict.step is Step.CARRY_OUT_APPROVAL:  # its record, to serve it in its stint
            version = self.store.model_version(version.id) or version
        assert verdict.outcome is not None
        self._end(automation, waiting, version, verdict.outcome, verdict.by, approval)

    def _end(
        self,
        automation: Automation,
        waiting: Approval,
        version: ModelVersionInfo | None,
        outcome: Outcome,
        by: str | None,
        approval: ApprovalRecord | None,
    ) -> None:
        """Record how a wait ended, with its notification and, for an approval that took
        effect, the claim of the version's deployment and inference in that stint (the
        production watch claims it too when it sees the change: once, by its key)."""
        waited = round(max(0.0, self.context.clock() - waiting.staged_at), 1)
        details = {
            "waited_seconds": waited,
            "note": approval.note if approval else None,
            "via": approval.via if approval else None,
        }
        record = approval_record_of(records(version.metadata)) if version is not None else None
        with self.ledger.transaction():
            if not self.ledger.resolve_approval(
                automation.name, waiting.model_version_id, outcome.value, by, details
            ):
                return
            if record is not None and version is not None:
                self.production.claim_serving(automation, version, record.stint)
            if version is not None and outcome is not Outcome.SUPERSEDED:
                self.context.notify(
                    notices.approval_ended(
                        EVENTS[outcome],
                        automation.name,
                        version,
                        trained_on(version),
                        outcome.value,
                        {
                            "by": by,
                            "note": details["note"],
                            "via": details["via"],
                            "waited_seconds": waited,
                            "approval_timeout_seconds": automation.approval_timeout_seconds,
                        },
                    )
                )
        ids = (
            model_ids(version)
            if version is not None
            else {"model_version_id": waiting.model_version_id}
        )
        log = self.context.log(automation)
        (log.warning if outcome is Outcome.EXPIRED else log.info)(
            EVENTS[outcome],
            by=by,
            note=details["note"],
            via=details["via"],
            waited_seconds=waited,
            stint=record.stint if record is not None else None,
            **ids,
        )


def _waiting_details(version: ModelVersionInfo, decision: dict[str, Any]) -> dict[str, Any]:
    """What the status page and `status` show of a waiting version: its decision's values."""
    return {
        "outcome": AWAITING_APPROVAL,
        "metric": decision.get("metric"),
        "value": decision.get("value"),
        "reason": decision.get("reason"),
        "staged_at": decision.get("staged_at"),
        **{k: v for k, v in model_ids(version).items() if k != "model_version"},
    }


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
