"""The production history kept on model versions (`core/production_history.py`) and what a
version awaiting approval has become (`core/approval.py`): pure, no store."""

from __future__ import annotations

import pytest

from service.core.actions import ActionKind
from service.core.approval import (
    ApprovalRecord,
    Outcome,
    Step,
    judge_waiting,
    refusal,
)
from service.core.production_history import (
    PRODUCTION_KEY,
    ChangedBy,
    NoRollbackTarget,
    ProductionRecord,
    VersionHistory,
    following,
    latest_record,
    plan_rollback,
    record_metadata,
    rollback_target,
    seq_of,
    stint_key,
    stint_of,
)

AT = "2026-12-08T09:00:00+00:00"


def merged(*writes: dict) -> dict:
    """Run metadata as ZenML shows it after several writes: dict values of one key merged,
    the later write's keys winning (`resolve_metadata_collection`)."""
    shown: dict = {}
    for write in writes:
        for key, value in write.items():
            if isinstance(value, dict) and isinstance(shown.get(key), dict):
                shown[key] = {**shown[key], **value}
            else:
                shown[key] = value
    return shown


class Store:
    """Versions and their metadata, written as the daemon and the commands write them."""

    def __init__(self) -> None:
        self.metadata: dict[str, dict] = {}

    def history(self, id: str) -> VersionHistory:
        return VersionHistory(id, int(id.removeprefix("v")), self.metadata.get(id, {}))

    def write(self, id: str, values: dict) -> None:
        self.metadata[id] = merged(self.metadata.get(id, {}), values)

    def promote(self, id: str, production: str | None, by: ChangedBy = ChangedBy.AUTOPILOT):
        before = self.history(production) if production else None
        record = following(
            self.history(id),
            seq_of(before),
            (before.id, before.number) if before else (None, None),
            by,
            None,
            served_before=False,
            at=AT,
        )
        self.write(id, record_metadata(record))
        return record

    def roll_back(self, current: str, to: str | None = None):
        target = to or rollback_target(self.history(current), current)
        plan = plan_rollback(
            self.history(current),
            self.history(target),
            explicit=to is not None,
            by="alice",
            reason="bad",
            at=AT,
            served_before=False,
        )
        self.write(current, plan.rollback_metadata())
        self.write(target, record_metadata(plan.record))
        return plan


def test_every_stint_of_a_version_is_kept_whatever_order_zenml_merges_its_writes_in():
    first = ProductionRecord(1, 1, None, None, "autopilot", None, AT)
    second = ProductionRecord(4, 2, "v1", 1, "rollback", "alice", AT, rolled_back_from="v3")
    for order in ((first, second), (second, first)):  # MySQL: two writes in one second
        shown = merged(*(record_metadata(r) for r in order))
        assert latest_record(shown) == second
    assert set(merged(record_metadata(first), record_metadata(second))[PRODUCTION_KEY]) == {
        "1",
        "2",
    }
    assert latest_record({PRODUCTION_KEY: {"1": {"seq": "x"}}}) is None  # not a record


def test_a_first_stint_keeps_the_keys_of_before_stints_and_a_return_is_served_again():
    assert stint_key(ActionKind.INFER, "mv", 1) == "infer:mv"
    assert stint_key(ActionKind.DEPLOY, "mv", 3) == "deploy:mv@3"
    assert (stint_of("infer:mv"), stint_of("infer:mv@3"), stint_of("infer:mv@score:d")) == (
        1,
        3,
        None,
    )
    history = VersionHistory("v1", 1, {})
    # Served before records existed (an `infer:<id>` in the ledger or the store): a return.
    assert following(history, 5, ("v2", 2), ChangedBy.EXTERNAL, None, True, AT).stint == 2
    assert following(history, 5, ("v2", 2), ChangedBy.EXTERNAL, None, False, AT).stint == 1


def test_rolling_back_twice_walks_further_back_never_to_number_minus_one():
    store = Store()
    store.promote("v1", None)
    store.promote("v3", "v1")  # v2 was rejected: "number - 1" would be wrong
    store.promote("v7", "v3")
    plan = store.roll_back("v7")
    assert (plan.to_id, plan.record.stint, plan.record.seq) == ("v3", 2, 4)
    assert plan.record.rolled_back_from == "v7" and plan.record.previous_version_id == "v1"
    assert plan.rollback == {
        "from": "v7",
        "from_number": 7,
        "to": "v3",
        "to_number": 3,
        "by": "alice",
        "reason": "bad",
        "at": AT,
        "failed_run_id": None,
    }
    again = store.roll_back("v3")
    assert (again.to_id, again.record.stint, again.record.seq) == ("v1", 2, 5)
    with pytest.raises(NoRollbackTarget, match="--to VERSION"):
        store.roll_back("v1")  # nothing recorded before it


def test_rollback_to_a_named_version_and_from_a_version_without_records():
    store = Store()
    store.promote("v1", None)
    store.promote("v2", "v1")
    plan = store.roll_back("v2", to="v5")  # never production: the next rollback returns to v2
    assert plan.record.previous_version_id == "v2" and plan.record.stint == 1
    with pytest.raises(NoRollbackTarget, match="no production record"):
        rollback_target(VersionHistory("v9", 9, {}), "model#9")


def test_a_rollback_recorded_and_not_carried_out_is_completed_as_recorded():
    """Its command died after writing the rollback (and maybe the restored version's record):
    run again, even as a bare `rollback`, it restores the same version in the same stint."""
    store = Store()
    store.promote("v1", None)
    store.promote("v2", "v1")
    first = store.roll_back("v2", to="v1")  # written, but production never changed
    again = plan_rollback(
        store.history("v2"),
        store.history(rollback_target(store.history("v2"), "v2")),
        explicit=False,
        by="bob",
        reason="retry",
        at="later",
        served_before=False,
    )
    assert again.resumed and again.to_id == "v1"
    assert again.record == first.record and again.rollback == first.rollback


def test_a_record_in_flight_is_told_from_a_taken_one():
    from service.core.production_history import is_in_flight

    store = Store()
    store.promote("v1", None)
    record = store.promote("v2", "v1", ChangedBy.APPROVAL)
    assert is_in_flight(record, store.history("v1"))  # written, v1 still production
    assert not is_in_flight(record, store.history("v2"))


# -- what a waiting version has become -----------------------------------------------------------


def approval(outcome: str, by: str | None = "alice") -> ApprovalRecord:
    return ApprovalRecord(outcome, by, AT)


@pytest.mark.parametrize(
    ("stage", "recorded", "took_effect", "waited", "step", "outcome"),
    [
        ("staging", None, False, 10, Step.WAIT, None),
        ("staging", None, False, 3600, Step.EXPIRE, Outcome.EXPIRED),
        ("production", None, False, 10, Step.RECORD_APPROVED, Outcome.APPROVED),  # in ZenML
        ("staging", "approved", False, 10, Step.CARRY_OUT_APPROVAL, Outcome.APPROVED),
        ("archived", "approved", True, 10, Step.RECORD_APPROVED, Outcome.APPROVED),  # since
        ("staging", "approved", True, 10, Step.CARRY_OUT_APPROVAL, Outcome.APPROVED),  # died
        ("staging", "rejected", False, 10, Step.CARRY_OUT_REJECTION, Outcome.REJECTED),
        ("archived", "rejected", False, 10, Step.RECORD_ENDED, Outcome.REJECTED),
        ("archived", None, False, 10, Step.RECORD_ENDED, Outcome.REJECTED),  # in ZenML
        ("staging", "superseded", False, 10, Step.CARRY_OUT_REJECTION, Outcome.SUPERSEDED),
    ],
)
def test_what_a_waiting_version_has_become(stage, recorded, took_effect, waited, step, outcome):
    record = ProductionRecord(1, 1, None, None, "approval", "alice", AT) if took_effect else None
    verdict = judge_waiting(stage, approval(recorded) if recorded else None, record, waited, 3600.0)
    assert (verdict.step, verdict.outcome) == (step, outcome)


def test_approve_and_reject_are_refused_with_why_unless_the_version_awaits_approval():
    awaiting = {"outcome": "awaiting_approval", "reason": "clears_threshold"}
    ok = refusal("m#3", awaiting, None, "staging", False, Outcome.APPROVED)
    assert ok is None
    assert "has no autopilot decision" in refusal(
        "m#3", None, None, "staging", False, Outcome.APPROVED
    )
    said = refusal(
        "m#3",
        {"outcome": "rejected", "reason": "below_threshold"},
        None,
        None,
        False,
        Outcome.APPROVED,
    )
    assert "decided rejected (below_threshold)" in said
    done = refusal("m#3", awaiting, approval("approved"), "production", True, Outcome.APPROVED)
    assert "approved by alice" in done
    # Recorded and not carried out (the command died): giving it again completes it.
    assert (
        refusal("m#3", awaiting, approval("approved"), "staging", False, Outcome.APPROVED) is None
    )
    assert "expired" in refusal(
        "m#3", awaiting, approval("expired", None), "archived", True, Outcome.APPROVED
    )
    assert "not staging" in refusal("m#3", awaiting, None, "archived", True, Outcome.REJECTED)


def test_a_resumed_rollback_keeps_who_asked_for_it_and_why():
    """Its command died after recording the rollback, before the restored version's record:
    whoever completes it (a bare `rollback`, someone else) records the first one's why."""
    store = Store()
    store.promote("v1", None)
    store.promote("v2", "v1")
    first = plan_rollback(
        store.history("v2"), store.history("v1"), False, "carol", "bad", AT, False
    )
    store.write("v2", first.rollback_metadata())  # and nothing more
    again = plan_rollback(store.history("v2"), store.history("v1"), False, "root", None, AT, False)
    assert again.resumed
    assert (again.record.by, again.record.reason) == ("carol", "bad")
