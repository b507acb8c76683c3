"""Restarts and crashes against a real store: a claim left behind is resolved by what the store
says, never by launching blindly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import AUTOPILOT_TAG, ActionState
from service.core.records import RunStatus
from service.stages import actions
from service.stages.actions import ATTEMPT_TOKEN
from tests.integration.engine_harness import (
    kill_worker,
    make_engine,
    runs_for,
    tick_until,
    wait_until_gone,
)
from tests.support import slow_training, wait_for

pytestmark = pytest.mark.integration
MODEL = "iris_classifier"


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
    kill_worker(crashed, key)
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
    kill_worker(first, key)  # killed while importing: no run was ever created
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


def _all_events(capsys) -> list[dict]:
    events = []
    for line in capsys.readouterr().out.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def _events(capsys, key: str) -> list[dict]:
    return [event for event in _all_events(capsys) if event.get("key") == key]


def test_a_lost_ledger_redoes_nothing_the_store_has_done(zenml_store, tmp_path, capsys):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=24)
    key = f"train:{approved.training_id}"
    first = make_engine(tmp_path / "lost")
    tick_until(first, lambda: _settled(first, key), "the first training")
    (done,) = runs_for(first, key)
    assert done.status is RunStatus.SUCCEEDED
    first.ledger.close()
    capsys.readouterr()

    fresh = make_engine(tmp_path / "fresh")  # the ledger is gone; the store is not
    fresh.tick()
    action = fresh.ledger.action(key)
    assert (action.state, action.run_id, action.attempts) == (ActionState.SUCCEEDED, done.id, 0)
    assert not fresh.executor.is_running(key)
    assert [r.id for r in runs_for(fresh, key)] == [done.id]  # one completed run, the old one
    events = [e["event"] for e in _events(capsys, key)]
    assert "training.found_in_store" in events and "training.launched" not in events


def test_a_lost_ledger_does_not_run_an_inference_the_store_has_done(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=29)
    first = make_engine(tmp_path / "lost")
    (version,) = tick_until(
        first, lambda: first.store.production_versions("iris_classifier"), "a promotion"
    )
    key = f"infer:{version.id}"
    tick_until(first, lambda: _settled(first, key), "the first inference")
    (done,) = runs_for(first, key)
    assert done.status is RunStatus.SUCCEEDED
    first.ledger.close()

    fresh = make_engine(tmp_path / "fresh")  # the ledger is gone; the store is not
    tick_until(fresh, lambda: _settled(fresh, key), "the inference key to be settled")
    action = fresh.ledger.action(key)
    assert (action.state, action.run_id, action.attempts) == (ActionState.SUCCEEDED, done.id, 0)
    assert [r.id for r in runs_for(fresh, key)] == [done.id]
    assert len(runs_for(fresh, f"train:{approved.training_id}")) == 1


def _store_clock_behind(run_id: str, seconds: float) -> None:
    """Stamp a run in the store's own database as a store whose clock is `seconds` behind the
    daemon's would have: its `created`, `updated` and `start_time` earlier than the attempt's
    launch time in the ledger. A recovery comparing clocks (runs of the key created since the
    launch) would not find it, and launch the action again beside it."""
    from zenml.client import Client

    database = Client().zen_store.url.removeprefix("sqlite:///")
    columns = ("created", "updated", "start_time")
    with sqlite3.connect(database) as db:
        row = db.execute(
            f"SELECT {', '.join(columns)} FROM pipeline_run WHERE id = ?",
            (UUID(run_id).hex,),
        ).fetchone()
        assert row is not None, f"run {run_id} not in {database}"
        shifted = [_shifted(value, -seconds) for value in row]
        db.execute(
            f"UPDATE pipeline_run SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            (*shifted, UUID(run_id).hex),
        )


def _shifted(stamp: str | None, seconds: float) -> str | None:
    if stamp is None:
        return None
    moved = datetime.fromisoformat(stamp) + timedelta(seconds=seconds)
    return moved.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_an_orphaned_run_is_found_whatever_the_clocks_say(zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=25)
    key = f"train:{approved.training_id}"
    crashed = make_engine(tmp_path / "state", environ=slow_training(seconds=5))
    crashed.tick()
    (running,) = wait_for(
        lambda: [r for r in runs_for(crashed, key) if r.status is RunStatus.IN_PROGRESS],
        timeout=60,
        what="the run to start",
    )
    kill_worker(crashed, key)  # the daemon dies with its worker
    launched = crashed.ledger.action(key).started_at
    crashed.ledger.close()
    _store_clock_behind(running.id, 3600)
    (skewed,) = runs_for(crashed, key)
    assert skewed.created is not None
    assert skewed.created.replace(tzinfo=UTC).timestamp() < launched - 3000  # as the store says

    restarted = make_engine(tmp_path / "state", environ=slow_training(seconds=0))
    (orphan,) = [r for r in runs_for(restarted, key) if r.id == running.id]
    assert orphan.status is RunStatus.FAILED  # found, closed, counted: not left running
    tick_until(restarted, lambda: _settled(restarted, key), "the retry")
    action = restarted.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 2)
    assert [r.status for r in runs_for(restarted, key)] == [RunStatus.FAILED, RunStatus.SUCCEEDED]


def test_a_run_killed_while_zenml_created_it_is_found_by_its_token_and_closed(
    zenml_store, tmp_path, monkeypatch
):
    """The daemon killed while ZenML created a training run (seen in `make soak`): the run is
    in the store, `initializing`, linked to its new model version, without tags yet. Recovery
    finds it by the attempt's token alone, closes it and retries; its model version is judged
    instead of waiting on it for ever."""
    from zenml.client import Client

    approved = launch_feature_engineering(training_tags=["approved"], random_state=30)
    key = f"train:{approved.training_id}"
    with monkeypatch.context() as patched:
        patched.setattr(actions, "LAUNCHER", "tests.support:launch_killed_before_run_tags")
        crashed = make_engine(tmp_path / "state")
        crashed.tick()
        pid = wait_for(lambda: crashed.executor.worker_pid(key), timeout=60, what="its worker")
        wait_until_gone(pid)  # killed inside ZenML's run creation, as the daemon's death would
    token = crashed.ledger.action(key).details[ATTEMPT_TOKEN]
    crashed.ledger.close()
    (orphan,) = Client().list_pipeline_runs(name=f"endswith:-{token}", hydrate=True).items
    assert orphan.status.value == "initializing" and orphan.tags == []  # the kill window
    assert orphan.model_version is not None  # its model version waits on it
    assert runs_for(crashed, key) == []  # nothing carries the key's tag

    restarted = make_engine(tmp_path / "state")  # start() resolves the open claim
    closed = Client().get_pipeline_run(orphan.id)
    assert closed.status.value == "failed"  # found by its token, closed
    assert "orphaned" in (closed.get_body().status_reason or "")
    action = restarted.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.RETRY_WAIT, 1)  # counted
    tick_until(restarted, lambda: _settled(restarted, key), "the retry")
    action = restarted.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 2)
    assert [r.status for r in runs_for(restarted, key)] == [RunStatus.SUCCEEDED]
    judged = tick_until(
        restarted,
        lambda: restarted.ledger.action(f"promote:{orphan.model_version.id}"),
        "the orphan's model version to be judged",
    )
    assert judged.details["decision"]["reason"] == "training_run_failed"


def _older_runs_for(key: str, count: int) -> None:
    """`count` failed runs tagged with `key` (replays, earlier attempts), written straight
    into the store: a real run per attempt would take ~10 s each."""
    from zenml.client import Client
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunRequest, PipelineRunUpdate

    client = Client()
    template = client.list_pipeline_runs(size=1, hydrate=True).items[0]
    for number in range(count):
        run, _ = client.zen_store.get_or_create_run(
            PipelineRunRequest(
                name=f"an-earlier-attempt-{number}",
                snapshot=template.snapshot.id,
                project=template.project_id,
                status=ExecutionStatus.RUNNING,
                tags=[AUTOPILOT_TAG, key],
            )
        )
        client.zen_store.update_run(run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED))


def _newest_runs(key: str) -> list:
    from zenml.client import Client

    return Client().list_pipeline_runs(tags=f"equals:{key}", sort_by="desc:created", size=5).items


@pytest.mark.parametrize("written_by", ["this daemon", "a daemon without attempt ids"])
def test_the_current_attempt_is_found_past_a_hundred_older_runs(written_by, zenml_store, tmp_path):
    approved = launch_feature_engineering(training_tags=["approved"], random_state=26)
    key = f"train:{approved.training_id}"
    _older_runs_for(key, 120)
    first = make_engine(tmp_path / "state")
    first.tick()
    (current,) = wait_for(
        lambda: [r for r in _newest_runs(key) if r.status.value == "completed"],
        timeout=120,
        what="the run to succeed",
    )
    first.executor._workers.clear()  # the daemon died before it read the worker's report
    first.ledger.close()
    if written_by != "this daemon":  # an action launched before runs carried attempt ids
        with sqlite3.connect(first.settings.ledger_path) as db:
            db.execute("UPDATE actions SET details = '{}' WHERE key = ?", (key,))

    restarted = make_engine(tmp_path / "state")  # start() resolves the open claim
    action = restarted.ledger.action(key)
    assert (action.state, action.run_id, action.attempts) == (
        ActionState.SUCCEEDED,
        str(current.id),
        1,
    )
    runs = runs_for(restarted, key)
    assert len(runs) == 121 and runs[-1].id == str(current.id)  # every run, the newest last


def test_worker_killed_mid_run_closes_its_run_and_retries_while_the_daemon_lives(
    zenml_store, tmp_path
):
    from zenml.client import Client

    approved = launch_feature_engineering(training_tags=["approved"], random_state=27)
    key = f"train:{approved.training_id}"
    engine = make_engine(tmp_path / "state", environ=slow_training(seconds=4))
    engine.tick()
    (running,) = wait_for(
        lambda: [r for r in runs_for(engine, key) if r.status is RunStatus.IN_PROGRESS],
        timeout=60,
        what="the run to start",
    )
    os.kill(engine.executor.worker_pid(key), signal.SIGKILL)  # the OOM killer

    tick_until(engine, lambda: _settled(engine, key), "the retry")
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 2)
    killed = Client().get_pipeline_run(running.id)
    assert killed.status.value == "failed"
    assert "worker process died" in killed.get_body().status_reason
    assert "SIGKILL" in killed.get_body().status_reason
    statuses = [r.status for r in runs_for(engine, key)]
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED]


def test_a_launch_that_raises_goes_back_to_pending_and_run_once_finishes(
    zenml_store, tmp_path, capsys, monkeypatch
):
    from service.daemon import Daemon

    approved = launch_feature_engineering(training_tags=["approved"], random_state=28)
    key = f"train:{approved.training_id}"
    engine = make_engine(tmp_path / "state")
    launch = engine.executor.launch
    calls = []

    def launch_failing_once(job):
        calls.append(job.key)
        if len(calls) == 1:
            raise OSError(24, "Too many open files")
        return launch(job)

    monkeypatch.setattr(engine.executor, "launch", launch_failing_once)
    capsys.readouterr()
    assert engine.tick().launched == []  # the tick goes on; nothing was launched
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.PENDING, 0)
    (failed,) = [e for e in _events(capsys, key) if e["event"] == "training.launch_failed"]
    assert "Too many open files" in failed["error"] and failed["attempt_counted"] is False

    daemon = Daemon(poll_interval=0.5, grace_seconds=5)
    daemon.engine = engine
    assert daemon.run_once() == 0  # launched again, waited for, done
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 1)
    assert [r.status for r in runs_for(engine, key)] == [RunStatus.SUCCEEDED]


def test_a_ledger_restored_from_before_a_promotion_does_not_promote_again(
    zenml_store, tmp_path, capsys, monkeypatch
):
    """A backup of the ledger taken while a promotion was decided but not carried out; the
    promotion completes, then production moves on to a newer version; the old backup is
    restored. The store shows the decision was carried out long ago: it is taken as it is,
    and the version is not promoted again (the policy alone would promote it: it clears the
    threshold and need not beat production)."""
    from service.stages import models

    state = tmp_path / "state"
    backup = tmp_path / "ledger-backup.sqlite"
    crashpoint = models.crashpoint

    def back_up_while_pending(point: str) -> None:
        if point == "after_promotion_decided" and not backup.exists():
            with sqlite3.connect(state / "ledger.sqlite") as live, sqlite3.connect(backup) as copy:
                live.backup(copy)
        crashpoint(point)

    monkeypatch.setattr(models, "crashpoint", back_up_while_pending)
    settings = {"promotion_must_beat_production": "false"}
    first = launch_feature_engineering(training_tags=["approved"], random_state=34)
    engine = make_engine(state, **settings)
    (promoted,) = tick_until(engine, lambda: engine.store.production_versions(MODEL), "promotion")
    assert backup.exists()
    second = launch_feature_engineering(training_tags=["approved"], random_state=35)
    newer = tick_until(
        engine,
        lambda: [v for v in engine.store.production_versions(MODEL) if v.id != promoted.id],
        "production to move on",
    )[0]
    for version in (promoted, newer):
        key = f"infer:{version.id}"
        tick_until(engine, lambda k=key: _settled(engine, k), "its inference")
    engine.executor.close()
    engine.ledger.close()
    for suffix in ("", "-wal", "-shm"):
        (state / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    os.replace(backup, state / "ledger.sqlite")  # the old backup, restored

    capsys.readouterr()
    restored = make_engine(state, **settings)
    assert restored.ledger.action(f"promote:{promoted.id}").state is ActionState.PENDING
    tick_until(
        restored, lambda: _settled(restored, f"promote:{promoted.id}"), "the pending promotion"
    )
    for _ in range(3):
        restored.tick()

    assert [v.id for v in restored.store.production_versions(MODEL)] == [newer.id]
    events = [e for e in _all_events(capsys) if e.get("model_version_id") == promoted.id]
    assert [e["event"] for e in events if e["event"].startswith("model.")] == [
        "model.decision_found_in_store"
    ]
    stored = restored.store.model_version(promoted.id).metadata["autopilot_decision"]
    assert restored.ledger.action(f"promote:{promoted.id}").details["decision"] == stored
    for dataset in (first, second):
        assert len(runs_for(restored, f"train:{dataset.training_id}")) == 1
    for version in (promoted, newer):
        assert len(runs_for(restored, f"infer:{version.id}")) == 1


def test_a_result_the_store_could_not_take_is_recorded_once_it_answers(
    zenml_store, tmp_path, monkeypatch, capsys
):
    """A worker ends while the store is down: recording its result fails with the tick, and
    the next tick records it once the store answers. Without keeping it, the action stayed
    `running` with no worker and no run for as long as the daemon lived."""
    from sqlalchemy.exc import OperationalError
    from zenml.client import Client

    approved = launch_feature_engineering(training_tags=["approved"], random_state=33)
    key = f"train:{approved.training_id}"
    with monkeypatch.context() as patched:  # the first attempt's worker fails before the store
        patched.setattr(actions, "LAUNCHER", "tests.support:launch_failing_before_the_store")
        engine = make_engine(tmp_path / "state")
        assert engine.tick().launched == [key]
    wait_for(engine.executor.has_results, timeout=120, interval=0.1, what="the worker to end")
    capsys.readouterr()

    def store_down(*args, **kwargs):
        raise OperationalError("SELECT", {}, ConnectionRefusedError("the store is down"))

    with monkeypatch.context() as outage:
        store_class = type(Client().zen_store)  # a pydantic model: patched on its class
        for read in ("get_run", "list_runs"):
            outage.setattr(store_class, read, store_down)
        with pytest.raises(OperationalError):
            engine.tick()  # the daemon logs the failed tick and retries it with backoff
    assert engine.ledger.action(key).state is ActionState.RUNNING

    tick_until(engine, lambda: _settled(engine, key), "the retry", timeout=120)
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 2)
    (failed,) = [e for e in _events(capsys, key) if e["event"] == "training.attempt_failed"]
    assert "did not answer before the run was created" in failed["error"]  # the worker's own
    assert [r.status for r in runs_for(engine, key)] == [RunStatus.SUCCEEDED]


def test_a_running_action_with_no_worker_and_no_run_is_launched_again_while_the_daemon_lives(
    zenml_store, tmp_path, monkeypatch
):
    """The backstop: a `running` action whose worker's end this process lost, however, and
    that has no run in the store goes back to pending without a restart, its attempt not
    counted; not before a grace period, in which a run its worker created may still show."""
    approved = launch_feature_engineering(training_tags=["approved"], random_state=34)
    key = f"train:{approved.training_id}"
    monkeypatch.setattr(actions, "UNTRACKED_GRACE_SECONDS", 2.0)
    with monkeypatch.context() as patched:
        patched.setattr(actions, "LAUNCHER", "tests.support:launch_failing_before_the_store")
        engine = make_engine(tmp_path / "state")
        assert engine.tick().launched == [key]
    wait_for(engine.executor.has_results, timeout=120, interval=0.1, what="the worker to end")
    engine.executor._workers.clear()  # its end is lost

    engine.tick()
    assert engine.ledger.action(key).state is ActionState.RUNNING  # within the grace period
    tick_until(engine, lambda: _settled(engine, key), "the relaunch", timeout=120)
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 1)  # uncounted
    assert [r.status for r in runs_for(engine, key)] == [RunStatus.SUCCEEDED]


def test_a_job_whose_template_died_warming_up_goes_back_to_pending_uncounted(
    zenml_store, tmp_path, capsys
):
    """No worker was ever forked for it, so no run can exist: like a launch that raised, it
    is launched again without using an attempt (here the only one allowed)."""
    approved = launch_feature_engineering(training_tags=["approved"], random_state=35)
    key = f"train:{approved.training_id}"
    engine = make_engine(tmp_path / "state", max_attempts=1)
    capsys.readouterr()
    assert engine.tick().launched == [key]  # handed to the template, which is still warming
    assert engine.executor.worker_pid(key) is None  # no worker forked yet
    os.kill(engine.executor._template.pid, signal.SIGKILL)  # the OOM killer, say

    tick_until(engine, lambda: _settled(engine, key), "the relaunch", timeout=120)
    action = engine.ledger.action(key)
    assert (action.state, action.attempts) == (ActionState.SUCCEEDED, 1)
    events = _events(capsys, key)
    (relaunched,) = [e for e in events if e["event"] == "training.launch_failed"]
    assert relaunched["attempt_counted"] is False
    assert "template process died" in relaunched["error"]
    assert not [e for e in events if e["event"] in ("training.attempt_failed", "training.failed")]
