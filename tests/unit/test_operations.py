import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import operations
from service.core.actions import ActionKind, ActionState, parse_action_key
from service.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "ledger.sqlite")
    yield opened
    opened.close()


def _failed(ledger, key="train:d1"):
    parsed = parse_action_key(key)
    ledger.claim(key, ActionKind.TRAIN, parsed.subject_id, {}, parsed.automation)
    ledger.transition(key, ActionState.RUNNING, attempts=3)
    ledger.transition(key, ActionState.FAILED, error="ValueError: no target column")


def test_replay_starts_a_failed_action_again_from_its_first_attempt(ledger):
    _failed(ledger)
    action = operations.replay(ledger, "train:d1")
    assert (action.state, action.attempts, action.error) == (ActionState.PENDING, 0, None)
    assert action.details["replayed_from"] == "failed"


def test_only_failed_skipped_or_superseded_actions_replay(ledger):
    ledger.claim("train:d2", ActionKind.TRAIN, "d2", {}, "default")
    with pytest.raises(operations.OperationError, match="only failed, skipped or superseded"):
        operations.replay(ledger, "train:d2")
    ledger.transition("train:d2", ActionState.SUPERSEDED)  # a training gate passed it over
    assert operations.replay(ledger, "train:d2").details["replayed_from"] == "superseded"
    with pytest.raises(operations.OperationError, match="no action"):
        operations.replay(ledger, "train:nope")


def test_skip_works_before_the_daemon_sees_the_version_and_is_then_final(ledger):
    action = operations.skip(ledger, "train:future")
    assert action.state is ActionState.SKIPPED
    assert not ledger.claim("train:future", ActionKind.TRAIN, "future", {}, "default")  # never done
    assert operations.replay(ledger, "train:future").state is ActionState.PENDING


def test_running_action_cannot_be_skipped(ledger):
    ledger.claim("infer:m", ActionKind.INFER, "m", {}, "default")
    ledger.transition("infer:m", ActionState.RUNNING, attempts=1)
    with pytest.raises(operations.OperationError, match="running"):
        operations.skip(ledger, "infer:m")


def test_malformed_key_is_refused():
    with pytest.raises(operations.OperationError, match="unknown action kind"):
        operations.skip(None, "retrain:x")  # type: ignore[arg-type]


def test_status_reports_lag_open_actions_and_failures(ledger):
    floor = "2026-11-27T12:00:00.000000"
    ledger.set_cursor("default/dataset:iris", floor)
    ledger.set_cursor("default/production:m", "mv-1")
    ledger.claim("train:open", ActionKind.TRAIN, "open", {}, "default")
    ledger.note_subject("default", "judged", "dataset", "iris", "8", "skipped", "x", True)
    _failed(ledger)
    # three versions above the floor in the store, one of them judged
    report = operations.status(ledger, {"default/dataset:iris": ["judged", "new-1", "new-2"]})
    expected = {
        "automation": "default",
        "stream": "default/dataset:iris",
        "cursor": floor,
        "above_floor": 3,
        "not_judged_yet": 2,
    }
    assert expected in report["cursors"]
    assert report["production"] == {"default/production:m": "mv-1"}
    assert report["actions_by_automation"]["default"]["pending"] == 1
    assert [a["key"] for a in report["open"]] == ["train:open"]
    assert report["open"][0]["automation"] == "default"
    assert report["recent_failures"][0]["error"] == "ValueError: no target column"


def test_explain_says_which_tags_were_missing(ledger):
    ledger.note_subject(
        "churn",
        "d9",
        "dataset",
        "iris",
        "4",
        "skipped",
        "missing_tags",
        False,
        {"tags": ["draft"], "missing_tags": ["approved"]},
    )
    explanation = operations.explain(ledger, "d9")
    (judgement,) = explanation["judgements"]
    assert judgement["automation"] == "churn"
    assert judgement["reason"] == "missing_tags"
    assert judgement["seen"]["missing_tags"] == ["approved"]
    assert explanation["actions"] == []
    with pytest.raises(operations.OperationError, match="not in the ledger"):
        operations.explain(ledger, "unknown")


def test_explain_and_status_mask_the_secrets_an_older_ledger_holds(tmp_path):
    """A ledger written before errors were stored redacted: what the commands print is masked
    (a URL's password, the store's API key), the stored text left as it was."""
    key = "ZENKEY_secret_api_key_value"
    ledger = Ledger(tmp_path / "ledger.sqlite")
    _failed(ledger)
    with ledger.transaction():  # as an older daemon wrote it
        ledger._execute(
            "UPDATE actions SET error = ? WHERE key = 'train:d1'",
            (f"OperationalError: mysql://u:pw-in-url@db/x refused {key}",),
        )
    ledger.close()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTOPILOT_", "ZENML_"))},
        "AUTOPILOT_STATE_DIR": str(tmp_path),
        "ZENML_STORE_API_KEY": key,
    }
    autopilot = str(Path(sys.executable).parent / "autopilot")
    for command in (["explain", "d1"], ["status", "--offline"]):
        shown = subprocess.run(
            [autopilot, *command], env=environment, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        text = json.dumps(json.loads(shown.stdout))
        assert "mysql://u:***@db/x refused <redacted>" in text
        assert "pw-in-url" not in shown.stdout and key not in shown.stdout


def test_replay_of_an_automations_failed_actions_requeues_each_and_nothing_else(
    ledger, tmp_path, monkeypatch, capsys
):
    for key in ("train:reload:d1", "train:reload:d2", "train:other:d1"):
        _failed(ledger, key)
    ledger.claim("train:reload:d3", ActionKind.TRAIN, "d3", {}, "reload")  # pending: left alone
    ledger.close()
    monkeypatch.setenv("AUTOPILOT_STATE_DIR", str(tmp_path))
    from service import cli

    assert cli.main(["replay", "--automation", "Reload", "--failed"]) == 0

    replayed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(e["key"] for e in replayed) == ["train:reload:d1", "train:reload:d2"]
    assert {e["event"] for e in replayed} == {"action.replayed"}
    reopened = Ledger(tmp_path / "ledger.sqlite")
    try:
        states = {a.key: (a.state, a.attempts) for a in reopened.actions_in(*ActionState)}
    finally:
        reopened.close()
    assert states["train:reload:d1"] == states["train:reload:d2"] == (ActionState.PENDING, 0)
    assert states["train:other:d1"] == (ActionState.FAILED, 3)
    assert states["train:reload:d3"] == (ActionState.PENDING, 0)
    assert cli.main(["replay", "--automation", "reload", "--failed"]) == 0  # none left: fine
    assert cli.main(["replay", "--automation", "typo", "--failed"]) == 1
    assert "no action of automation 'typo'" in capsys.readouterr().err
    assert cli.main(["replay", "--automation", "reload"]) == 1  # --failed says which ones


def test_rename_automation_carries_the_work_over_or_says_why_not(ledger):
    ledger.set_cursor("default/dataset:iris", "2026-01-01 00:00:00")
    ledger.claim("train:d1", ActionKind.TRAIN, "d1", {}, "default")
    configured = {"iris", "churn"}
    refusals = {
        ("default", "Iris!"): "not an automation name",
        ("default", "default"): "the same automation",
        ("iris", "churn"): "iris is still configured",
        ("default", "irsi"): "irsi is not configured",
        ("nothing", "iris"): "holds nothing of automation nothing",
    }
    for (old, new), why in refusals.items():
        with pytest.raises(operations.OperationError, match=why):
            operations.rename_automation(ledger, old, new, configured)
    ledger.claim("train:churn:d1", ActionKind.TRAIN, "d1", {}, "churn")
    with pytest.raises(operations.OperationError, match="churn has 1 actions of its own"):
        operations.rename_automation(ledger, "default", "churn", configured)
    assert ledger.action("train:d1").automation == "default"  # refused: nothing moved

    renamed = operations.rename_automation(ledger, "DEFAULT", "iris", configured)
    assert (renamed.old, renamed.new) == ("default", "iris")
    assert (renamed.carried_over.streams, renamed.carried_over.open_actions) == (1, 1)
    assert ledger.action("train:d1").automation == "iris"
    assert "iris/dataset:iris" in ledger.cursors()


def test_replay_of_a_failed_deployment_brings_back_the_inference_it_blocked(ledger):
    """A deployment failed for good fails the inference that runs after it (`blocked_by`);
    replaying the deployment replays that inference too, which then waits for it again."""
    ledger.claim("deploy:mv@2", ActionKind.DEPLOY, "mv", {}, "default")
    ledger.claim("infer:mv@2", ActionKind.INFER, "mv", {"after": "deploy:mv@2"}, "default")
    ledger.claim("infer:other", ActionKind.INFER, "other", {}, "default")
    ledger.transition("deploy:mv@2", ActionState.FAILED, error="server down")
    ledger.transition("infer:other", ActionState.FAILED, error="its own")
    ledger.transition(
        "infer:mv@2", ActionState.FAILED, error="not run", details={"blocked_by": "deploy:mv@2"}
    )
    operations.replay(ledger, "deploy:mv@2")
    assert ledger.action("deploy:mv@2").state is ActionState.PENDING
    inference = ledger.action("infer:mv@2")
    assert inference.state is ActionState.PENDING and inference.error is None
    assert inference.details["after"] == "deploy:mv@2" and inference.details["blocked_by"] is None
    assert ledger.action("infer:other").state is ActionState.FAILED  # not this one's


def test_status_and_explain_show_approvals_and_production_changes(ledger):
    ledger.note_subject("default", "mv-3", "model", "iris_classifier", "3", "decided", "x", True)
    ledger.stage_for_approval("default", "mv-3", "iris_classifier", 3, 1000.0, {"value": 0.97})
    ledger.set_cursor("default/production:iris_classifier", "mv-1")
    ledger.record_production_change(
        "default", "iris_classifier", "mv-1", 1, "mv-2", "rollback", {"by": "alice", "stint": 2}
    )
    shown = operations.status(ledger, timeouts={"default": 3600.0})
    (waiting,) = shown["awaiting_approval"]
    assert (waiting["model_version_id"], waiting["number"], waiting["state"]) == (
        "mv-3",
        3,
        "waiting",
    )
    assert waiting["waited_seconds"] > 3600 and waiting["expires_in_seconds"] == 0
    (change,) = shown["production_changes"]["default"]
    assert (change["changed_by"], change["by"], change["stint"]) == ("rollback", "alice", 2)

    explained = operations.explain(ledger, "iris_classifier", "3")  # explain MODEL VERSION
    assert explained["id"] == "mv-3" and explained["approval"][0]["state"] == "waiting"
    rolled = operations.explain(ledger, "mv-2")["production_changes"]  # the version replaced
    assert rolled[0]["previous_model_version_id"] == "mv-2"
    with pytest.raises(operations.OperationError, match="no version '9' of model"):
        operations.explain(ledger, "iris_classifier", "9")


def test_status_lists_candidates_waiting_for_their_evaluations_and_explain_shows_them(ledger):
    from service.core.evaluation import EVALUATING, EvaluationRecord
    from tests.unit.factories import dataset, model_version

    holdout = dataset(number=3)
    candidate, production = model_version(number=2), model_version(number=1)
    record = EvaluationRecord.start(holdout, candidate, production)
    promote = f"promote:{candidate.id}"
    details = {"phase": EVALUATING, "evaluation": record.as_details()}
    ledger.claim(promote, ActionKind.PROMOTE, candidate.id, details, "diabetes")
    for side in record.sides:
        facts = {"evaluation_dataset_version_id": holdout.id, "evaluation_dataset_name": "h"}
        ledger.claim(side.key, ActionKind.EVALUATE, side.model_version_id, facts, "diabetes")
    assert record.production is not None
    ledger.transition(record.production.key, ActionState.RUNNING, attempts=1)
    ledger.transition(record.production.key, ActionState.SUCCEEDED, run_id="run-p")

    (waiting,) = operations.status(ledger)["evaluating"]
    assert waiting["model_version_id"] == candidate.id and waiting["key"] == promote
    assert waiting["evaluation_dataset"] == f"iris_training_dataset:{holdout.version}"
    assert waiting["evaluations"] == [
        {"role": "candidate", "key": record.candidate.key, "state": "pending"},
        {"role": "production", "key": record.production.key, "state": "succeeded"},
    ]
    explained = {a["key"]: a for a in operations.explain(ledger, candidate.id)["actions"]}
    assert explained[promote]["phase"] == EVALUATING
    assert explained[promote]["evaluation"]["dataset_version_id"] == holdout.id
    assert explained[record.candidate.key]["evaluation_dataset_version_id"] == holdout.id
