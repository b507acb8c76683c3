"""A model's production history, kept in the store on the model versions themselves (pure).

Every production change writes a *production record* on the version that became production, as
run metadata `autopilot_production`; whoever makes the change writes it (`autopilot approve`,
`autopilot rollback`, the daemon for its own promotions and for the changes it sees others
make). A record says which change it was (`seq`: the previous production's record's + 1, so
changes are ordered without a clock), which of the version's times in production (`stint`: 1,
2, ... a version rolled back to is in production again, and is served again), what was
production before it, and who made the change and why.

ZenML merges a key's dict values across writes (`resolve_metadata_collection`: every entry's
keys, in `created` order), so the records are kept under their stint, `{"1": {...}, "2": {...}}`:
the merge keeps every stint, whatever order two writes in one second (MySQL) come back in. A
rollback is also recorded on the version rolled back from (`autopilot_rollback`, under the stint
it ends).

Keys: a version's first stint keeps the keys it always had (`infer:<id>`, `deploy:<id>`), so
runs and ledgers from before stints still match; later stints are qualified (`infer:<id>@2`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard

from service.core.actions import ActionKind, action_key, parse_action_key

PRODUCTION_KEY = "autopilot_production"
ROLLBACK_KEY = "autopilot_rollback"


class ChangedBy(StrEnum):
    """Who made a production change."""

    AUTOPILOT = "autopilot"  # the daemon promoted it
    APPROVAL = "approval"  # a person approved it (`autopilot approve`, or promoting it in ZenML)
    ROLLBACK = "rollback"  # `autopilot rollback`, or the daemon's ROLLBACK_ON_FAILURE
    EXTERNAL = "external"  # anything else: ZenML's CLI or dashboard, a self-promoting pipeline


@dataclass(frozen=True)
class ProductionRecord:
    """One production change, as recorded on the version that became production."""

    seq: int
    stint: int
    previous_version_id: str | None
    previous_number: int | None
    changed_by: str
    by: str | None
    at: str  # ISO 8601, UTC, of the writer's clock: for people, never compared
    reason: str | None = None
    rolled_back_from: str | None = None
    failed_run_id: str | None = None  # a rollback on failure: the run that failed

    def as_dict(self) -> dict[str, Any]:
        """Every field, None included: a later write of this stint replaces each one."""
        return asdict(self)

    @property
    def replaced(self) -> str | None:
        """The version this change took production from. A rollback's `previous_version_id`
        is where a next rollback goes (further back), not the version it replaced."""
        if self.changed_by == ChangedBy.ROLLBACK.value:
            return self.rolled_back_from
        return self.previous_version_id

    @classmethod
    def from_dict(cls, value: object) -> ProductionRecord | None:
        """A record as stored, or None when it is not one (written by hand, damaged)."""
        if not isinstance(value, Mapping):
            return None
        seq, stint = value.get("seq"), value.get("stint")
        if not _positive_int(seq) or not _positive_int(stint):
            return None
        number = value.get("previous_number")
        return cls(
            seq=seq,
            stint=stint,
            previous_version_id=_text(value.get("previous_version_id")),
            previous_number=number if _positive_int(number) else None,
            changed_by=str(value.get("changed_by") or ChangedBy.EXTERNAL.value),
            by=_text(value.get("by")),
            at=str(value.get("at") or ""),
            reason=_text(value.get("reason")),
            rolled_back_from=_text(value.get("rolled_back_from")),
            failed_run_id=_text(value.get("failed_run_id")),
        )


def records(metadata: Mapping[str, object]) -> dict[int, ProductionRecord]:
    """A version's production records by stint, from its run metadata."""
    stored = metadata.get(PRODUCTION_KEY)
    found: dict[int, ProductionRecord] = {}
    if isinstance(stored, Mapping):
        for value in stored.values():
            record = ProductionRecord.from_dict(value)
            if record is not None:
                found[record.stint] = record
    return found


def latest_record(metadata: Mapping[str, object]) -> ProductionRecord | None:
    """The record of a version's latest stint in production, or None if it has none."""
    found = records(metadata)
    return found[max(found)] if found else None


def record_metadata(record: ProductionRecord) -> dict[str, Any]:
    """What a production record is written as on its version."""
    return {PRODUCTION_KEY: {str(record.stint): record.as_dict()}}


def next_stint(latest: ProductionRecord | None, served_before: bool) -> int:
    """The stint of a version's next time in production. A version with no record that was
    served before records existed (an inference keyed `infer:<id>` in the ledger or the store)
    is returning: its second stint, so that it is served again."""
    if latest is not None:
        return latest.stint + 1
    return 2 if served_before else 1


def stint_key(kind: ActionKind, version_id: str, stint: int) -> str:
    """The key of a version's deployment or inference in one stint: `infer:<id>` for the
    first (the keys of before stints), `infer:<id>@<stint>` after."""
    return action_key(kind, version_id, qualifier=None if stint <= 1 else str(stint))


def stint_of(key: str) -> int | None:
    """The stint a deployment or inference key serves (1 for an unqualified key); None for a
    key with another qualifier (an inference of another kind) or another kind."""
    parsed = parse_action_key(key)
    if parsed.kind not in (ActionKind.INFER, ActionKind.DEPLOY):
        return None
    if parsed.qualifier is None:
        return 1
    return int(parsed.qualifier) if parsed.qualifier.isdigit() else None


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- the next record -------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionHistory:
    """What the history needs of one model version: its id, number and metadata."""

    id: str
    number: int | None
    metadata: Mapping[str, object]

    @property
    def latest(self) -> ProductionRecord | None:
        return latest_record(self.metadata)

    def rollback_of(self, stint: int) -> dict[str, Any] | None:
        """The rollback recorded as ending this version's `stint`, if any."""
        stored = self.metadata.get(ROLLBACK_KEY)
        found = stored.get(str(stint)) if isinstance(stored, Mapping) else None
        return dict(found) if isinstance(found, Mapping) else None


def following(
    version: VersionHistory,
    seq_before: int,
    previous: tuple[str | None, int | None],
    changed_by: ChangedBy,
    by: str | None,
    served_before: bool,
    at: str,
    reason: str | None = None,
    rolled_back_from: str | None = None,
    failed_run_id: str | None = None,
    in_flight: bool = False,
) -> ProductionRecord:
    """The record of `version` becoming production after the change numbered `seq_before`
    (0: none recorded), replacing `previous` (id, number; None, None: no production).

    `in_flight`: the version's latest record was written for this very change, which never
    took effect (its writer died before the stage change): its stint is kept, so the change
    is made once, whoever completes it."""
    latest = version.latest
    stint = latest.stint if in_flight and latest is not None else next_stint(latest, served_before)
    return ProductionRecord(
        seq=seq_before + 1,
        stint=stint,
        previous_version_id=previous[0],
        previous_number=previous[1],
        changed_by=changed_by.value,
        by=by,
        at=at,
        reason=reason,
        rolled_back_from=rolled_back_from,
        failed_run_id=failed_run_id,
    )


def seq_of(version: VersionHistory | None) -> int:
    """The number of the production change that made `version` production (0: none recorded)."""
    latest = version.latest if version is not None else None
    return latest.seq if latest is not None else 0


def is_in_flight(record: ProductionRecord | None, production: VersionHistory | None) -> bool:
    """A record written for a change from `production` that has not taken effect yet: it
    follows production's own latest record and names production as the version before."""
    if record is None:
        return False
    before = production.latest if production else None
    return record.seq == (before.seq if before else 0) + 1 and record.previous_version_id == (
        production.id if production else None
    )


# -- rollback --------------------------------------------------------------------------------


class NoRollbackTarget(ValueError):
    """Nothing to roll back to: the message says why and what to do instead."""


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback writes: the rollback on the version rolled back from (under the stint it
    ends), then the restored version's production record; then production changes."""

    from_id: str
    from_number: int | None
    to_id: str
    to_number: int | None
    record: ProductionRecord  # the restored version's
    rollback: dict[str, Any]  # on the version rolled back from, under `ending_stint`
    ending_stint: int
    resumed: bool  # completes a rollback recorded before (its writer died midway)

    def rollback_metadata(self) -> dict[str, Any]:
        return {ROLLBACK_KEY: {str(self.ending_stint): self.rollback}}


def rollback_target(current: VersionHistory, label: str) -> str:
    """The version production goes back to: the one recorded as production before the
    current one's stint. Never "number - 1": a version's number says nothing of its past."""
    recorded = current.rollback_of(current.latest.stint) if current.latest else None
    if recorded is not None and recorded.get("to"):
        return str(recorded["to"])  # a rollback recorded and not carried out: complete it
    latest = current.latest
    if latest is None:
        raise NoRollbackTarget(
            f"{label} has no production record (it became production before the autopilot "
            "recorded production changes): name the version to go back to with --to VERSION"
        )
    if latest.previous_version_id is None:
        raise NoRollbackTarget(
            f"no version is recorded as production before {label} (production change "
            f"{latest.seq}, {latest.changed_by}): name the version to go back to with --to VERSION"
        )
    return latest.previous_version_id


def plan_rollback(
    current: VersionHistory,
    target: VersionHistory,
    explicit: bool,
    by: str | None,
    reason: str | None,
    at: str,
    served_before: bool,
    failed_run_id: str | None = None,
) -> RollbackPlan:
    """Roll `current` (production) back to `target`.

    The restored version's record names as its previous the version its own last record
    named, so that a second rollback walks further back instead of returning to `current`.
    A target with no record (never production as far as records go) named with `--to` gets
    `current` as its previous. A rollback recorded on `current`'s stint and not carried out
    is completed as it was recorded, with the same stint for the target."""
    ending = current.latest.stint if current.latest else 1
    recorded = current.rollback_of(ending)
    resumed = recorded is not None and recorded.get("to") == target.id
    if resumed and recorded is not None:  # who asked for it, and why, as recorded then
        by, reason = _text(recorded.get("by")), _text(recorded.get("reason"))
        failed_run_id = _text(recorded.get("failed_run_id"))
    target_latest = target.latest
    if target_latest is not None:
        previous = (target_latest.previous_version_id, target_latest.previous_number)
    else:
        previous = (current.id, current.number) if explicit else (None, None)
    before = seq_of(current)
    if (
        resumed
        and target_latest is not None
        and target_latest.rolled_back_from == current.id
        and target_latest.seq == before + 1
    ):  # written by the rollback being completed
        record = target_latest
    else:
        record = following(
            target,
            before,
            previous,
            ChangedBy.ROLLBACK,
            by,
            served_before,
            at,
            reason=reason,
            rolled_back_from=current.id,
            failed_run_id=failed_run_id,
        )
    rollback = (
        recorded
        if resumed and recorded is not None
        else {
            "from": current.id,
            "from_number": current.number,
            "to": target.id,
            "to_number": target.number,
            "by": by,
            "reason": reason,
            "at": at,
            "failed_run_id": failed_run_id,
        }
    )
    return RollbackPlan(
        from_id=current.id,
        from_number=current.number,
        to_id=target.id,
        to_number=target.number,
        record=record,
        rollback=rollback,
        ending_stint=ending,
        resumed=resumed,
    )


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: object) -> str | None:
    return None if value is None else str(value)
