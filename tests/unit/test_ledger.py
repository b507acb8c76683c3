import pytest

from service.core.actions import ActionKind, ActionState, IllegalTransition
from service.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "ledger.sqlite")
    yield opened
    opened.close()


def test_a_key_is_claimed_once_ever_even_after_reopening(tmp_path):
    first = Ledger(tmp_path / "l.sqlite")
    assert first.claim("train:1", ActionKind.TRAIN, "1", {"artifact": "a"})
    assert not first.claim("train:1", ActionKind.TRAIN, "1", {})
    first.close()
    reopened = Ledger(tmp_path / "l.sqlite")
    assert not reopened.claim("train:1", ActionKind.TRAIN, "1", {})
    assert reopened.action("train:1").details == {"artifact": "a"}


def test_a_failed_transaction_leaves_neither_claim_nor_cursor(ledger):
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.claim("train:1", ActionKind.TRAIN, "1", {})
        ledger.set_cursor("dataset:a", "7")
        raise RuntimeError("crash in the middle of a batch")
    assert ledger.action("train:1") is None
    assert ledger.get_cursor("dataset:a") is None


def test_transitions_follow_the_life_cycle_and_merge_details(ledger):
    ledger.claim("infer:9", ActionKind.INFER, "9", {"model_version_number": 3})
    running = ledger.transition("infer:9", ActionState.RUNNING, attempts=1, started_at=1.0)
    assert (running.state, running.attempts) == (ActionState.RUNNING, 1)
    ledger.update_details("infer:9", {"run_id": "r"})
    done = ledger.transition("infer:9", ActionState.SUCCEEDED, run_id="r")
    assert done.details == {"model_version_number": 3, "run_id": "r"}
    with pytest.raises(IllegalTransition):
        ledger.transition("infer:9", ActionState.PENDING)


def test_final_judgements_never_change(ledger):
    ledger.note_subject("d1", "dataset", "a", "1", "skipped", "missing_tags", final=False)
    ledger.note_subject("d1", "dataset", "a", "1", "selected", "selected", final=True)
    ledger.note_subject("d1", "dataset", "a", "1", "skipped", "missing_tags", final=False)
    subject = ledger.subject("d1")
    assert (subject.status, subject.final) == ("selected", True)


def test_actions_are_listed_by_state_and_kind(ledger):
    ledger.claim("train:1", ActionKind.TRAIN, "1", {})
    ledger.claim("promote:2", ActionKind.PROMOTE, "2", {})
    assert [a.key for a in ledger.actions_in(ActionState.PENDING)] == ["train:1", "promote:2"]
    assert [a.key for a in ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE)] == [
        "promote:2"
    ]
    assert ledger.count_actions() == {"pending": 2}
