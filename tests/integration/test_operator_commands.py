"""Operator commands against a real store and real runs: renaming an automation carries its
work over, and a key skipped then replayed before the daemon saw it is still carried out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service import operations
from service.core.actions import ActionState
from service.core.records import RunStatus
from service.lock import StateDirLock
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import PROJECT_ROOT, QUIET_ZENML, iris_automation, wait_for

pytestmark = pytest.mark.integration

MODEL = "iris_classifier"
AUTOPILOT = str(Path(sys.executable).parent / "autopilot")
DECISION_EVENTS = (
    "model.promoted",
    "model.rejected",
    "model.already_production",
    "model.decision_found_in_store",
)


def _state(engine, key):
    action = engine.ledger.action(key)
    return action.state if action else None


def _events(capsys) -> list[dict]:
    events = []
    for line in capsys.readouterr().out.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def _autopilot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    return subprocess.run(
        [AUTOPILOT, *args],
        env={**clean, **QUIET_ZENML, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _stop(engine) -> None:
    engine.executor.close()
    engine.ledger.close()


def test_a_renamed_automation_keeps_its_history_and_finishes_its_open_work(
    zenml_store, tmp_path, capsys
):
    """The README's two-project example renames the single `default` automation to `iris`.
    Done as it says (stop, rename in the configuration, `rename-automation`, start), with
    `AUTOPILOT_START_FROM=beginning`: nothing is trained or decided again, and the training
    `default` left open completes under `iris`."""
    from zenml.client import Client

    state = tmp_path / "state"
    first = launch_feature_engineering(training_tags=["approved"], random_state=31)
    default = make_engine(state)
    (served,) = tick_until(default, lambda: default.store.production_versions(MODEL), "promotion")
    tick_until(default, lambda: _state(default, f"infer:{served.id}") is ActionState.SUCCEEDED, "")
    second = launch_feature_engineering(training_tags=["approved"], random_state=32)
    default.datasets.tick()  # claimed, then the daemon is stopped: its training is left open
    open_key = f"train:{second.training_id}"
    assert _state(default, open_key) is ActionState.PENDING
    _stop(default)

    # Configured as `iris` and started before the rename: it says what is stranded and how to
    # carry it over (it has not acted yet, so the command still can).
    iris = {**iris_automation(), "AUTOPILOT_START_FROM": "beginning"}
    capsys.readouterr()
    _stop(make_engine(state, environ=iris))
    (stranded,) = [e for e in _events(capsys) if e["event"] == "startup.automation_not_configured"]
    assert (stranded["automation"], stranded["open_actions"]) == ("default", 1)
    assert "autopilot rename-automation default iris" in stranded["carry_over"]

    command = {"AUTOPILOT_STATE_DIR": str(state), **iris}
    held = StateDirLock(state)  # a daemon on this state dir
    try:
        refused = _autopilot("rename-automation", "default", "iris", env=command)
    finally:
        held.release()
    assert refused.returncode == 2 and f"pid {os.getpid()}" in refused.stderr
    renamed = _autopilot("rename-automation", "default", "iris", env=command)
    assert renamed.returncode == 0, renamed.stderr
    (logged,) = [json.loads(line) for line in renamed.stdout.splitlines()]
    assert (logged["event"], logged["automation"], logged["renamed_from"]) == (
        "automation.renamed",
        "iris",
        "default",
    )
    assert logged["carried_over"]["open_actions"] == 1

    capsys.readouterr()
    restarted = make_engine(state, environ=iris)
    tick_until(restarted, lambda: _state(restarted, open_key) is ActionState.SUCCEEDED, "it")
    (made,) = runs_for(restarted, open_key)
    tick_until(
        restarted,
        lambda: restarted.ledger.action(f"promote:{made.model_version_id}"),
        "its model version's decision",
    )
    for _ in range(3):  # and the polls after it: nothing else is done
        restarted.tick()
    events = _events(capsys)

    finished = restarted.ledger.action(open_key)
    assert (finished.automation, finished.attempts) == ("iris", 1)
    decided = restarted.ledger.action(f"promote:{made.model_version_id}")
    assert decided.automation == "iris"
    assert [e["key"] for e in events if e["event"] == "training.launched"] == [open_key]
    decided_now = [e["model_version_id"] for e in events if e["event"] in DECISION_EVENTS]
    assert decided_now == [made.model_version_id]
    # The first dataset is not trained again under the new name, nor its version decided.
    for key in (f"train:iris:{first.training_id}", f"train:iris:{second.training_id}"):
        assert restarted.ledger.action(key) is None and runs_for(restarted, key) == []
    assert len(runs_for(restarted, f"train:{first.training_id}")) == 1
    assert len(runs_for(restarted, f"infer:{served.id}")) == 1
    assert len(Client().list_model_versions(model=MODEL).items) == 2
    assert restarted.ledger.action(f"promote:{served.id}").automation == "iris"


def test_an_inference_skipped_then_replayed_before_the_daemon_saw_it_runs_once(
    zenml_store, tmp_path
):
    """`skip` then `replay` of the inference of a model version the daemon has not judged yet:
    the key belongs to no automation until the daemon claims it (at the promotion), which
    adopts it; the inference then runs, once."""
    approved = launch_feature_engineering(training_tags=["approved"], random_state=33)
    engine = make_engine(tmp_path / "state")
    train_key = f"train:{approved.training_id}"
    engine.datasets.tick()
    engine.actions.dispatch()
    wait_for(
        lambda: _state(engine, train_key) is ActionState.SUCCEEDED,
        between=engine.actions.settle,  # settled, not judged: its model version is not seen
        what="the training",
    )
    (trained,) = runs_for(engine, train_key)
    version = trained.model_version_id
    infer_key = f"infer:{version}"
    operations.skip(engine.ledger, infer_key)
    replayed = operations.replay(engine.ledger, infer_key)
    assert (replayed.state, replayed.automation) == (ActionState.PENDING, "")

    tick_until(engine, lambda: _state(engine, infer_key) is ActionState.SUCCEEDED, "inference")
    assert [v.id for v in engine.store.production_versions(MODEL)] == [version]
    inference = engine.ledger.action(infer_key)
    assert inference.automation == "default"
    assert inference.details["replayed_from"] == "skipped"  # the operator's record is kept
    assert inference.details["model_version_id"] == version  # and the daemon's facts added
    assert [r.status for r in runs_for(engine, infer_key)] == [RunStatus.SUCCEEDED]
