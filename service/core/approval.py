"""A human gate before production (pure): what a version awaiting approval's observed state
means, and why a person's `approve` or `reject` is refused.

In `PROMOTION_MODE=approval` a version that passes the promotion policy goes to ZenML's
`staging` stage and waits. The store is the record: a person's verdict is run metadata
`autopilot_approval` on the version (`{outcome, by, at, note, via, superseded_by}`), written
before the stage changes; the stage says whether it was carried out. So an outcome recorded
and not carried out (its writer died midway) is carried out by whoever looks next, the daemon
included, and a person may also decide in ZenML itself (promote it: approved by an unknown
person; archive it: rejected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from service.core.production_history import ChangedBy, ProductionRecord

APPROVAL_KEY = "autopilot_approval"
AWAITING_APPROVAL = "awaiting_approval"  # a decision's outcome in approval mode
STAGING, PRODUCTION, ARCHIVED = "staging", "production", "archived"


class Outcome(StrEnum):
    """How a wait for approval ended."""

    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # APPROVAL_TIMEOUT_SECONDS passed
    SUPERSEDED = "superseded"  # a newer candidate passed while it waited
    DELETED = "deleted"  # the version is gone from the store


@dataclass(frozen=True)
class ApprovalRecord:
    """A verdict on a version awaiting approval, as recorded on it."""

    outcome: str
    by: str | None
    at: str
    note: str | None = None
    via: str = "autopilot"  # `autopilot` (a command or the daemon), `zenml` (in ZenML itself)
    superseded_by: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """Every field, None included: a later write replaces each one (ZenML merges them)."""
        return {APPROVAL_KEY: asdict(self)}

    @classmethod
    def read(cls, metadata: Mapping[str, object]) -> ApprovalRecord | None:
        stored = metadata.get(APPROVAL_KEY)
        if not isinstance(stored, Mapping) or stored.get("outcome") not in set(Outcome):
            return None
        return cls(
            outcome=str(stored["outcome"]),
            by=None if stored.get("by") is None else str(stored["by"]),
            at=str(stored.get("at") or ""),
            note=None if stored.get("note") is None else str(stored["note"]),
            via=str(stored.get("via") or "autopilot"),
            superseded_by=None
            if stored.get("superseded_by") is None
            else str(stored["superseded_by"]),
        )


class Step(StrEnum):
    """What the daemon does about a version it sees waiting."""

    WAIT = "wait"
    RECORD_APPROVED = "record_approved"  # in production (a person did it in ZenML, or approve)
    CARRY_OUT_APPROVAL = "carry_out_approval"  # approved, not in production yet
    CARRY_OUT_REJECTION = "carry_out_rejection"  # rejected/expired/superseded, still staged
    RECORD_ENDED = "record_ended"  # rejected/expired/superseded and no longer staged
    EXPIRE = "expire"  # no verdict within APPROVAL_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Verdict:
    step: Step
    outcome: Outcome | None = None
    by: str | None = None


def judge_waiting(
    stage: str | None,
    approval: ApprovalRecord | None,
    approval_record: ProductionRecord | None,
    waited_seconds: float,
    timeout_seconds: float | None,
) -> Verdict:
    """What a version staged for approval has become. `approval_record`: its production record
    of the approval, if one was written: with the version out of staging, the approval took
    effect (production may have moved on since); still staged, its writer died before the
    stage change (or is about to make it), and the approval is carried out."""
    outcome = Outcome(approval.outcome) if approval is not None else None
    by = approval.by if approval is not None else None
    took_effect = approval_record is not None and stage != STAGING  # production since
    if stage == PRODUCTION or (outcome is Outcome.APPROVED and took_effect):
        return Verdict(Step.RECORD_APPROVED, Outcome.APPROVED, by)
    if outcome is Outcome.APPROVED:
        return Verdict(Step.CARRY_OUT_APPROVAL, Outcome.APPROVED, by)
    if outcome is not None:
        step = Step.CARRY_OUT_REJECTION if stage == STAGING else Step.RECORD_ENDED
        return Verdict(step, outcome, by)
    if stage != STAGING:  # archived (or unstaged) in ZenML by someone: a rejection
        return Verdict(Step.RECORD_ENDED, Outcome.REJECTED, None)
    if timeout_seconds is not None and waited_seconds >= timeout_seconds:
        return Verdict(Step.EXPIRE, Outcome.EXPIRED, None)
    return Verdict(Step.WAIT)


def approval_record_of(records: Mapping[int, ProductionRecord]) -> ProductionRecord | None:
    """A version's production record made by its approval (its first stint as approved)."""
    approved = [r for r in records.values() if r.changed_by == ChangedBy.APPROVAL.value]
    return min(approved, key=lambda r: r.stint) if approved else None


def refusal(
    label: str,
    decision: Mapping[str, object] | None,
    approval: ApprovalRecord | None,
    stage: str | None,
    took_effect: bool,
    wanted: Outcome,
) -> str | None:
    """Why a person cannot approve (or reject: `wanted`) this version now; None when they can.
    The same verdict recorded and not carried out (their command died midway) may be given
    again: it completes it."""
    if decision is None:
        return f"{label} has no autopilot decision: the autopilot has not judged it"
    if decision.get("outcome") != AWAITING_APPROVAL:
        reason = decision.get("reason")
        return (
            f"{label} is not awaiting approval: the autopilot decided "
            f"{decision.get('outcome')} ({reason})"
        )
    if approval is not None:
        if approval.outcome == wanted.value and not took_effect:
            return None  # recorded, not carried out: giving it again completes it
        who = f" by {approval.by}" if approval.by else ""
        return f"{label} is not awaiting approval: {approval.outcome}{who} at {approval.at}"
    if stage != STAGING:
        where = f"in stage {stage}" if stage else "in no stage"
        return (
            f"{label} is not awaiting approval: it is {where} in ZenML, not staging "
            "(moved by someone in ZenML)"
        )
    return None
