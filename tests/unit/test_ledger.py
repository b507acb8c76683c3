import sqlite3

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
    assert first.claim("train:1", ActionKind.TRAIN, "1", {"artifact": "a"}, "default")
    assert not first.claim("train:1", ActionKind.TRAIN, "1", {}, "default")
    first.close()
    reopened = Ledger(tmp_path / "l.sqlite")
    assert not reopened.claim("train:1", ActionKind.TRAIN, "1", {}, "default")
    assert reopened.action("train:1").details == {"artifact": "a"}


def test_a_failed_transaction_leaves_neither_claim_nor_cursor(ledger):
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.claim("train:1", ActionKind.TRAIN, "1", {}, "default")
        ledger.set_cursor("dataset:a", "7")
        raise RuntimeError("crash in the middle of a batch")
    assert ledger.action("train:1") is None
    assert ledger.get_cursor("dataset:a") is None


def test_transitions_follow_the_life_cycle_and_merge_details(ledger):
    ledger.claim("infer:9", ActionKind.INFER, "9", {"model_version_number": 3}, "default")
    running = ledger.transition("infer:9", ActionState.RUNNING, attempts=1, started_at=1.0)
    assert (running.state, running.attempts) == (ActionState.RUNNING, 1)
    ledger.update_details("infer:9", {"run_id": "r"})
    done = ledger.transition("infer:9", ActionState.SUCCEEDED, run_id="r")
    assert done.details == {"model_version_number": 3, "run_id": "r"}
    with pytest.raises(IllegalTransition):
        ledger.transition("infer:9", ActionState.PENDING)


def test_final_judgements_never_change(ledger):
    ledger.note_subject(
        "default", "d1", "dataset", "a", "1", "skipped", "missing_tags", final=False
    )
    ledger.note_subject("default", "d1", "dataset", "a", "1", "selected", "selected", final=True)
    ledger.note_subject(
        "default", "d1", "dataset", "a", "1", "skipped", "missing_tags", final=False
    )
    subject = ledger.subject("default", "d1")
    assert (subject.status, subject.final) == ("selected", True)


def test_actions_are_listed_by_state_and_kind(ledger):
    ledger.claim("train:1", ActionKind.TRAIN, "1", {}, "default")
    ledger.claim("promote:2", ActionKind.PROMOTE, "2", {}, "default")
    assert [a.key for a in ledger.actions_in(ActionState.PENDING)] == ["train:1", "promote:2"]
    assert [a.key for a in ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE)] == [
        "promote:2"
    ]
    assert ledger.count_actions() == {"default": {"pending": 2}}


def test_one_dataset_version_is_judged_once_per_automation(ledger):
    ledger.note_subject("iris", "d1", "dataset", "a", "1", "selected", "selected", final=True)
    ledger.note_subject("churn", "d1", "dataset", "a", "1", "skipped", "missing_tags", final=False)
    assert ledger.subject("iris", "d1").status == "selected"
    assert ledger.subject("churn", "d1").status == "skipped"
    assert [s.automation for s in ledger.subjects("d1")] == ["churn", "iris"]


# The schema a single-automation daemon wrote (schema version 1, before automations).
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cursors (stream TEXT PRIMARY KEY, value TEXT, updated_at TEXT NOT NULL);
CREATE TABLE subjects (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    version TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, final INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL);
CREATE INDEX subjects_waiting ON subjects (kind, status);
CREATE TABLE actions (key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_id TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0,
    run_id TEXT, started_at REAL, error TEXT, details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX actions_state ON actions (state);
INSERT INTO cursors VALUES ('dataset:iris_training_dataset', '7', 't');
INSERT INTO cursors VALUES ('model:iris_classifier', '3', 't');
INSERT INTO cursors VALUES ('production:iris_classifier', 'mv-3', 't');
INSERT INTO subjects VALUES ('d7', 'dataset', 'iris_training_dataset', '7', 'selected',
    'selected', 1, '{}', 't');
INSERT INTO actions (key, kind, subject_id, state, attempts, run_id, details, created_at,
    updated_at) VALUES ('train:d7', 'train', 'd7', 'succeeded', 1, 'run-1', '{}', 't', 't');
INSERT INTO actions (key, kind, subject_id, state, attempts, details, created_at, updated_at)
    VALUES ('infer:mv-3', 'infer', 'mv-3', 'retry_wait', 1, '{}', 't', 't');
"""


def test_a_single_automation_ledger_is_upgraded_in_place(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)
    ledger = Ledger(path)
    assert ledger.upgraded_from == 1
    assert ledger.cursors() == {
        "default/dataset:iris_training_dataset": "7",
        "default/model:iris_classifier": "3",
        "default/production:iris_classifier": "mv-3",
    }
    assert ledger.subject("default", "d7").final
    done = ledger.action("train:d7")
    assert (done.automation, done.state, done.run_id) == ("default", ActionState.SUCCEEDED, "run-1")
    assert ledger.action("infer:mv-3").state is ActionState.RETRY_WAIT  # kept, not redone
    assert not ledger.claim("train:d7", ActionKind.TRAIN, "d7", {}, "default")
    ledger.close()
    upgraded = Ledger(path)
    assert upgraded.upgraded_from is None  # once
    assert upgraded.production_changes("default") == []


def _schema_2(path):
    """A ledger as a schema 2 daemon (automations, no production changes) left it."""
    v2 = Ledger(path)
    v2.claim("promote:mv-3", ActionKind.PROMOTE, "mv-3", {"decision": {}}, "default")
    v2.set_cursor("default/production:iris_classifier", "mv-3")
    v2.close()
    with sqlite3.connect(path) as db:
        db.executescript(
            "DROP TABLE production_changes; DROP INDEX actions_by_automation; "
            "DROP INDEX actions_last_change; "
            "PRAGMA user_version = 2;"
        )


def test_a_schema_2_ledger_is_upgraded_in_place_to_record_production_changes(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _schema_2(path)
    ledger = Ledger(path)
    assert ledger.upgraded_from == 2
    assert ledger.action("promote:mv-3").state is ActionState.PENDING  # kept as it was
    assert ledger.get_cursor("default/production:iris_classifier") == "mv-3"
    assert ledger.production_changes("default") == []  # not recorded before: not invented
    ledger.record_production_change("default", "iris_classifier", "mv-4", 4, "mv-3", "autopilot")
    ledger.close()
    reopened = Ledger(path)
    assert reopened.upgraded_from is None
    (change,) = reopened.production_changes("default")
    assert (change.model_version_id, change.model_version_number) == ("mv-4", 4)
    assert (change.previous_model_version_id, change.changed_by) == ("mv-3", "autopilot")
    reader = Ledger.reader(path)
    assert reader.production_changes("default") == [change]
    with pytest.raises(sqlite3.OperationalError):  # a reader cannot write
        reader.set_meta("x", "y")


def test_production_changes_are_listed_newest_first_per_automation(ledger):
    ledger.record_production_change("iris", "m1", "a", 1, None, "autopilot")
    ledger.record_production_change("churn", "m2", "x", 1, None, "external")
    ledger.record_production_change("iris", "m1", "b", 2, "a", "external", {"note": "by hand"})
    newest, oldest = ledger.production_changes("iris")
    assert (newest.model_version_id, newest.previous_model_version_id) == ("b", "a")
    assert newest.details == {"note": "by hand"} and oldest.model_version_id == "a"
    assert [c.model_version_id for c in ledger.production_changes("iris", limit=1)] == ["b"]


def test_a_key_an_operator_skipped_before_the_daemon_saw_it_is_adopted_by_its_claim(ledger):
    # `autopilot skip promote:m` before the daemon judged m: no automation, no decision.
    ledger.claim("promote:m", ActionKind.PROMOTE, "m", {"claimed_by": "operator"}, "")
    ledger.transition("promote:m", ActionState.SKIPPED)
    ledger.transition("promote:m", ActionState.PENDING)  # replayed
    decision = {"decision": {"outcome": "promoted"}}
    assert not ledger.claim("promote:m", ActionKind.PROMOTE, "m", decision, "iris")  # not first
    adopted = ledger.action("promote:m")
    assert (adopted.automation, adopted.state) == ("iris", ActionState.PENDING)
    assert adopted.details == {"claimed_by": "operator", "decision": {"outcome": "promoted"}}
    # An automation's key is never taken over by another's claim.
    ledger.claim("promote:m", ActionKind.PROMOTE, "m", {}, "churn")
    assert ledger.action("promote:m").automation == "iris"


def _automation_rows(ledger, name, dataset="d1"):
    ledger.set_cursor(f"{name}/dataset:iris", "2026-01-01 00:00:00")
    ledger.set_cursor(f"{name}/model:clf", None)
    ledger.note_subject(name, dataset, "dataset", "iris", "1", "selected", "selected", final=True)
    ledger.claim(f"train:{name}:{dataset}", ActionKind.TRAIN, dataset, {}, name)


def test_an_automation_is_renamed_with_its_streams_judgements_and_actions(ledger):
    _automation_rows(ledger, "default")
    ledger.claim("infer:m", ActionKind.INFER, "m", {}, "default")
    ledger.transition("infer:m", ActionState.RUNNING, attempts=1)
    _automation_rows(ledger, "default_2", dataset="d2")  # a name `default` is a prefix of
    ledger.set_cursor("iris/dataset:iris", "2026-06-01 00:00:00")  # a start under the new name
    ledger.note_subject("iris", "d9", "dataset", "iris", "9", "skipped", "predates_start", True)
    ledger.set_meta("required_tags/iris", '["reviewed"]')  # the new start's
    ledger.set_meta("required_tags/default", '["approved"]')
    ledger.set_meta("required_tags/default_2", '["other"]')
    ledger.record_production_change("default", "clf", "m", 1, None, "autopilot")
    ledger.stage_for_approval("default", "m2", "clf", 2, 1.0, {})  # waiting for a person
    ledger.set_meta("production_seen/default", '{"seq": 3}')
    rows = ledger.rows_by_automation()
    assert rows["default"].open_actions == 2 and rows["iris"].actions == 0

    ledger.rename_automation("default", "iris")

    assert ledger.cursors() == {
        "default_2/dataset:iris": "2026-01-01 00:00:00",
        "default_2/model:clf": None,
        "iris/dataset:iris": "2026-01-01 00:00:00",  # the old floor, not the new start's
        "iris/model:clf": None,
    }
    assert ledger.subject("iris", "d1").status == "selected"
    assert ledger.subject("iris", "d9") is None  # the new start's judgement is gone with it
    assert ledger.subject("default", "d1") is None
    # Keys stay as they are (runs in the store carry them); their automation changes.
    assert ledger.action("train:default:d1").automation == "iris"
    assert ledger.action("infer:m").automation == "iris"
    assert ledger.action("infer:m").state is ActionState.RUNNING
    assert ledger.action("train:default_2:d2").automation == "default_2"
    assert set(ledger.rows_by_automation()) == {"iris", "default_2"}
    # Its history and the tags it judged with go along; another automation's stay.
    assert [c.model_version_id for c in ledger.production_changes("iris")] == ["m"]
    assert ledger.get_meta("required_tags/iris") == '["approved"]'
    assert ledger.get_meta("required_tags/default") is None
    assert ledger.get_meta("required_tags/default_2") == '["other"]'
    # Its waits for approval and the production record it last saw (issue 18) go along too.
    assert [a.model_version_id for a in ledger.approvals_in("waiting", "iris")] == ["m2"]
    assert ledger.approvals_in("waiting", "default") == []
    assert ledger.get_meta("production_seen/iris") == '{"seq": 3}'


def test_a_versions_stints_are_read_by_key_range_and_a_wait_for_approval_ends_once(ledger):
    for key in ("infer:m", "infer:m@2", "infer:m@10", "infer:m2", "deploy:m@2"):
        ledger.claim(key, ActionKind(key.partition(":")[0]), "m", {}, "default")
    assert [a.key for a in ledger.stint_actions(ActionKind.INFER, "m")] == [
        "infer:m",
        "infer:m@2",
        "infer:m@10",
    ]
    assert ledger.stage_for_approval("default", "m", "clf", 1, 5.0, {"value": 0.9})
    assert not ledger.stage_for_approval("default", "m", "clf", 1, 9.0, {})  # staged once
    assert ledger.resolve_approval("default", "m", "approved", "alice", {"note": "ok"})
    assert not ledger.resolve_approval("default", "m", "rejected", "bob")  # ended once
    ended = ledger.approval("default", "m")
    assert (ended.state, ended.by, ended.staged_at) == ("approved", "alice", 5.0)
    assert ended.details == {"value": 0.9, "note": "ok"}
