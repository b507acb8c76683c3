"""Restarts and crashes against a real store: a claim left behind is resolved by what the store
says, never by launching blindly."""

from __future__ import annotations

import os
import signal

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionState
from service.core.records import RunStatus
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import wait_for

pytestmark = pytest.mark.integration


def _settled(engine, key):
    action = engine.ledger.action(key)
    return action is not None and action.state in (ActionState.SUCCEEDED, ActionState.FAILED)


def test_run_orphaned_by_a_crash_is_closed_and_retried_once(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=21)
    key = f"train:{approved.training_id}"
    crashed = make_engine(tmp_path / "state")
    crashed.tick()
    # The run exists and is going: kill its worker, as a crash of the whole daemon would.
    running = wait_for(
        lambda: [r for r in runs_for(crashed, key) if r.status is RunStatus.IN_PROGRESS],
        timeout=60,
        interval=0.05,
        what="the run to start",
    )
    worker = crashed.executor._workers[key].process
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    crashed.ledger.close()

    restarted = make_engine(tmp_path / "state")  # start() resolves the open claim
    (orphan,) = [r for r in runs_for(restarted, key) if r.id == running[0].id]
    assert orphan.status is RunStatus.FAILED  # the store no longer claims it is running
    tick_until(restarted, lambda: _settled(restarted, key), "the retry")
    action = restarted.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 2)
    statuses = [r.status for r in runs_for(restarted, key)]
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED]


def test_claim_whose_launch_never_reached_the_store_is_launched_once(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=22)
    key = f"train:{approved.training_id}"
    first = make_engine(tmp_path / "state")
    first.tick()
    worker = first.executor._workers[key].process
    os.kill(worker.pid, signal.SIGKILL)  # killed while importing: no run was ever created
    worker.join()
    assert runs_for(first, key) == []
    first.ledger.close()

    restarted = make_engine(tmp_path / "state")
    assert restarted.ledger.action(key).state is ActionState.PENDING
    tick_until(restarted, lambda: _settled(restarted, key), "the relaunch")
    assert restarted.ledger.action(key).state is ActionState.SUCCEEDED
    assert len(runs_for(restarted, key)) == 1


def test_run_that_finished_while_the_daemon_was_down_is_recorded_not_rerun(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=23)
    key = f"train:{approved.training_id}"
    first = make_engine(tmp_path / "state")
    first.tick()
    wait_for(
        lambda: [r for r in runs_for(first, key) if r.status is RunStatus.SUCCEEDED],
        timeout=120,
        what="the run to succeed",
    )
    first.executor._workers.clear()  # the daemon died before it read the worker's report
    first.ledger.close()

    restarted = make_engine(tmp_path / "state")
    assert restarted.ledger.action(key).state is ActionState.SUCCEEDED
    restarted.tick()
    assert len(runs_for(restarted, key)) == 1
