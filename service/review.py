"""A person's say over production: approve or reject a version awaiting approval, roll
production back. Each writes its verdict to the store, on the model versions, then changes the
stage (`core/approval.py`, `core/production_history.py`), so that:

- it works from any machine or container with access to the store, while the daemon runs or
  not: the store is the record, not the daemon's ledger, which the daemon then follows (its
  production watch records the change and serves the version once);
- every step is idempotent and the verdict comes first: a command that dies midway is
  completed by running it again, or, for an approval or rejection, by the daemon at its next
  look at the versions awaiting approval.

The `autopilot approve`, `reject` and `rollback` commands call these (`service/cli.py` only
parses their arguments); so does the daemon, to carry out a verdict recorded and not carried
out, and for ROLLBACK_ON_FAILURE. ZenML is touched only through the store adapter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.core.actions import ActionKind, action_key
from service.core.approval import (
    ARCHIVED,
    PRODUCTION,
    STAGING,
    ApprovalRecord,
    Outcome,
    approval_record_of,
    refusal,
)
from service.core.production_history import (
    ChangedBy,
    NoRollbackTarget,
    ProductionRecord,
    VersionHistory,
    following,
    is_in_flight,
    latest_record,
    plan_rollback,
    record_metadata,
    records,
    rollback_target,
    seq_of,
    utc_now_iso,
)
from service.core.promotion import repair_duplicate_production
from service.core.records import ModelVersionInfo
from service.faults import crashpoint
from service.store import DECISION_METADATA_KEY, StoreAdapter


class Refused(Exception):
    """The verdict cannot be given (not awaiting approval, nothing to roll back to, no such
    version): the message says why, and what to do instead."""


# -- approve and reject ----------------------------------------------------------------------


def approve(
    store: StoreAdapter, model: str, reference: str, by: str | None, note: str | None
) -> dict[str, Any]:
    """Put a version awaiting approval in production, recording who approved it, when and why
    (`autopilot_approval`), and the production change (`autopilot_production`)."""
    version = _named(store, model, reference)
    approval = _verdict(version, Outcome.APPROVED)
    if approval is None:
        approval = ApprovalRecord(Outcome.APPROVED.value, by, utc_now_iso(), note)
        store.record_version_metadata(version.id, approval.as_metadata())
    crashpoint("after_approval_recorded")
    record = carry_out_approval(store, version, approval)
    return {
        "outcome": Outcome.APPROVED.value,
        "model": model,
        "model_version": _described(version),
        "by": approval.by,
        "note": approval.note,
        "production_change": record.as_dict(),
    }


def reject(
    store: StoreAdapter, model: str, reference: str, by: str | None, note: str | None
) -> dict[str, Any]:
    """Archive a version awaiting approval, recording who rejected it, when and why."""
    version = _named(store, model, reference)
    approval = _verdict(version, Outcome.REJECTED)
    if approval is None:
        approval = ApprovalRecord(Outcome.REJECTED.value, by, utc_now_iso(), note)
        store.record_version_metadata(version.id, approval.as_metadata())
    crashpoint("after_approval_recorded")
    archive(store, version)
    return {
        "outcome": Outcome.REJECTED.value,
        "model": model,
        "model_version": _described(version),
        "by": approval.by,
        "note": approval.note,
    }


def _verdict(version: ModelVersionInfo, wanted: Outcome) -> ApprovalRecord | None:
    """The verdict already recorded on the version, if it is `wanted` and was not carried out
    (the command runs again to complete it); Refused if the version cannot take it."""
    approval = ApprovalRecord.read(version.metadata)
    decision = version.metadata.get(DECISION_METADATA_KEY)
    if wanted is Outcome.APPROVED:
        took_effect = (
            version.stage == PRODUCTION or approval_record_of(records(version.metadata)) is not None
        )
    else:
        took_effect = version.stage != STAGING
    problem = refusal(
        version.label,
        decision if isinstance(decision, dict) else None,
        approval,
        version.stage,
        took_effect,
        wanted,
    )
    if problem is not None:
        raise Refused(problem)
    return approval


def carry_out_approval(
    store: StoreAdapter, version: ModelVersionInfo, approval: ApprovalRecord
) -> ProductionRecord:
    """Make an approved version production (idempotent): its production record, then the
    stage. A record written for this approval that never took effect keeps its stint."""
    current = current_production(store, version.model_name)
    if current is not None and current.id == version.id:
        # Carried out meanwhile (the daemon completes an approval it finds recorded and not
        # carried out): as recorded by whoever did, never a record of it replacing itself.
        done = latest_record((store.model_version(version.id) or version).metadata)
        if done is not None:
            return done
    production = _history_of(current)
    history = _history(version)
    latest = history.latest
    # A version awaiting approval was never production: a record of its approval on it is
    # this approval's, written by a command that died before the stage change.
    in_flight = latest is not None and latest.changed_by == ChangedBy.APPROVAL.value
    if in_flight and is_in_flight(latest, production):
        assert latest is not None
        record = latest
    else:
        record = following(
            history,
            seq_of(production),
            (production.id, production.number) if production else (None, None),
            ChangedBy.APPROVAL,
            approval.by,
            served_before=latest is None and served_before(store, version.id),
            at=utc_now_iso(),
            reason=approval.note,
            in_flight=in_flight,
        )
        store.record_version_metadata(version.id, record_metadata(record))
    if version.stage != PRODUCTION:
        store.set_stage(version.model_name, version.id, PRODUCTION)
    return record


def archive(store: StoreAdapter, version: ModelVersionInfo) -> None:
    if version.stage != ARCHIVED:
        store.set_stage(version.model_name, version.id, ARCHIVED)


# -- roll back -------------------------------------------------------------------------------


def rollback(
    store: StoreAdapter,
    model: str,
    to: str | None,
    by: str | None,
    reason: str | None,
    dry_run: bool = False,
    failed_run_id: str | None = None,
    expected_from: str | None = None,
) -> dict[str, Any]:
    """Put back in production the version that was production before the current one (as
    recorded on it, never "number - 1"), or `to`. The version rolled back from is archived,
    with the rollback recorded on it (`autopilot_rollback`). `expected_from`: only if this is
    still production (the daemon's rollback on failure: a person may have moved it since)."""
    current = current_production(store, model)
    if current is None:
        raise Refused(f"model {model} has no production version: nothing to roll back")
    if expected_from is not None and current.id != expected_from:
        raise Refused(f"{current.label} replaced the version to roll back from")
    history = _history(current)
    if to is not None:
        target = _named(store, model, to)
    else:
        try:
            target_id = rollback_target(history, current.label)
        except NoRollbackTarget as error:
            raise Refused(str(error)) from None
        found = store.model_version(target_id)
        if found is None:
            raise Refused(
                f"{current.label}'s previous production version {target_id} is no longer in "
                "the store: name the version to go back to with --to VERSION"
            )
        target = found
    if target.id == current.id:
        raise Refused(f"{target.label} is production already")
    target_history = _history(target)
    plan = plan_rollback(
        history,
        target_history,
        explicit=to is not None,
        by=by,
        reason=reason,
        at=utc_now_iso(),
        served_before=target_history.latest is None and served_before(store, target.id),
        failed_run_id=failed_run_id,
    )
    result = {
        "outcome": "would_roll_back" if dry_run else "rolled_back",
        "model": model,
        "from": _described(current),
        "to": _described(target),
        "by": by,
        "reason": reason,
        "production_change": plan.record.as_dict(),
        "completes_an_earlier_rollback": plan.resumed,
    }
    if dry_run:
        return result
    store.record_version_metadata(current.id, plan.rollback_metadata())
    crashpoint("after_rollback_recorded")
    store.record_version_metadata(target.id, record_metadata(plan.record))
    store.set_stage(model, target.id, PRODUCTION)  # the version rolled back from: archived
    return result


# -- shared ----------------------------------------------------------------------------------


def current_production(store: StoreAdapter, model: str) -> ModelVersionInfo | None:
    """The production version, as the daemon settles two (the most recently promoted)."""
    versions = store.production_versions(model)
    repair = repair_duplicate_production(versions)
    if repair is not None:
        return repair.keep
    return versions[0] if versions else None


def served_before(store: StoreAdapter, version_id: str) -> bool:
    """A version with no production record served before records existed: a run of its
    first stint's inference is in the store."""
    return store.newest_run_for_key(action_key(ActionKind.INFER, version_id)) is not None


def _named(store: StoreAdapter, model: str, reference: str) -> ModelVersionInfo:
    version = store.model_version_named(model, reference)
    if version is None:
        raise Refused(f"model {model} has no version {reference!r} (a number, name or id)")
    return replace(version, model_name=model)


def _history(version: ModelVersionInfo) -> VersionHistory:
    return VersionHistory(version.id, version.number, version.metadata)


def _history_of(version: ModelVersionInfo | None) -> VersionHistory | None:
    return None if version is None else _history(version)


def _described(version: ModelVersionInfo) -> dict[str, Any]:
    return {"id": version.id, "number": version.number, "name": version.name}
