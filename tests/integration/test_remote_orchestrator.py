"""Runs that go on by themselves (the test-only `detached` orchestrator, see
tests/remote_orchestrator): stopped through their orchestrator where ZenML can, and in any case
closed in the store, so that they never complete; watched by id, and adopted by a fresh
ledger. The daemon's side across restarts and timeouts is in
tests/e2e/test_remote_orchestrator.py."""

from __future__ import annotations

from uuid import UUID

from pipelines.feature_engineering import launch_feature_engineering
from pipelines.training import launch_training
from service.core.actions import ActionState
from service.core.records import RunStatus
from service.store import StoreAdapter
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.remote_orchestrator.flavor import (
    HOLD,
    DetachedOrchestrator,
    alive,
    kill_all,
    live_runs,
    pid_of,
    register_stack,
)
from tests.support import wait_for


def test_a_run_on_another_orchestrator_is_stopped_there_or_at_least_closed_in_the_store(
    zenml_store, tmp_path, monkeypatch
):
    from zenml.client import Client

    client = Client()
    root = tmp_path / "detached"
    register_stack(client, root, "detached")
    store = StoreAdapter(client)
    # Only runs of the local orchestrator execute inside the worker that launched them.
    assert store.orchestrator_runs_in_process(None) is True
    assert store.orchestrator_runs_in_process("detached") is False

    dataset = launch_feature_engineering(training_tags=["approved"], random_state=3)
    (root / HOLD).touch()  # submitted runs wait before their first step
    client.activate_stack("detached")
    try:
        stoppable, unstoppable = (
            str(launch_training(str(dataset.training_id), "iris_classifier", [tag]))
            for tag in ("first", "second")
        )  # each call returns once its run is submitted
        pids = {run: pid_of(root, run) for run in (stoppable, unstoppable)}
        assert all(alive(pid) for pid in pids.values())

        # Stopped on its orchestrator: its process is killed, the store says `stopped`.
        run, not_stopped = store.stop_run(stoppable, "timed out")
        assert not_stopped is None
        assert run is not None and run.status is RunStatus.FAILED
        assert client.get_pipeline_run(UUID(stoppable)).status.value == "stopped"
        assert not alive(pids[stoppable])

        # An orchestrator the daemon cannot reach (its flavor does not import there, say): the
        # run is closed as failed in the store, and its process honours that (it runs no step
        # once it is free to go on), as a remote run's steps see their run ended.
        def unreachable(self: DetachedOrchestrator, run: object, graceful: bool = False) -> None:
            raise ImportError("flavor not importable here")

        monkeypatch.setattr(DetachedOrchestrator, "stop_run", unreachable)
        run, not_stopped = store.stop_run(unstoppable, "timed out")
        assert not_stopped == "ImportError: flavor not importable here"
        assert run is not None and run.status is RunStatus.FAILED
        assert alive(pids[unstoppable])
        (root / HOLD).unlink()
        wait_for(lambda: not alive(pids[unstoppable]), timeout=60, what="the process to end")
        closed = client.get_pipeline_run(UUID(unstoppable))
        assert (closed.status.value, len(closed.steps)) == ("failed", 0)
    finally:
        kill_all(root)


def test_a_remote_run_is_watched_by_its_id_and_a_fresh_ledger_adopts_it(
    zenml_store, tmp_path, monkeypatch
):
    """A run that goes on on a remote orchestrator: every tick reads it by its id (a primary
    key), never by a scan of every run for the end of its name; and a daemon on a fresh
    ledger (the old one lost) adopts it, watches it and launches no second run."""
    from zenml.client import Client

    client = Client()
    root = tmp_path / "detached"
    register_stack(client, root, "detached")
    on_the_stack = {"ZENML_ACTIVE_STACK_ID": str(client.get_stack("detached").id)}
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=5)
    key = f"train:{dataset.training_id}"
    (root / HOLD).touch()  # the submitted run waits before its first step
    try:
        first = make_engine(tmp_path / "first", worker_environment=on_the_stack, stack="detached")
        run_id = tick_until(first, lambda: first.ledger.action(key).run_id, "the run submitted")
        wait_for(lambda: run_id in live_runs(root), timeout=60, what="the run's own process")

        reads = _counted_run_reads(monkeypatch, client)
        for _ in range(3):
            first.settle()
        assert reads == [("get_run", run_id)] * 3  # by id; no listing of runs
        monkeypatch.undo()
        first.ledger.close()

        fresh = make_engine(tmp_path / "fresh", worker_environment=on_the_stack, stack="detached")
        assert fresh.tick().launched == []
        action = fresh.ledger.action(key)
        assert (action.state, action.run_id) == (ActionState.RUNNING, run_id)  # adopted
        (root / HOLD).unlink()
        tick_until(
            fresh,
            lambda: fresh.ledger.action(key).state is ActionState.SUCCEEDED,
            "the adopted run to complete",
        )
        assert fresh.ledger.action(key).run_id == run_id
        assert [(r.id, r.status) for r in runs_for(fresh, key)] == [(run_id, RunStatus.SUCCEEDED)]
    finally:
        kill_all(root)


def _counted_run_reads(monkeypatch, client) -> list[tuple[str, str | None]]:
    """Every read of runs the store answers from now on: `get_run` with the id it was asked
    for, `list_runs` (a query over runs) with none."""
    store_class = type(client.zen_store)  # a pydantic model: patched on its class
    reads: list[tuple[str, str | None]] = []
    get_run, list_runs = store_class.get_run, store_class.list_runs

    def counted_get_run(self, run_id, *args, **kwargs):
        reads.append(("get_run", str(run_id)))
        return get_run(self, run_id, *args, **kwargs)

    def counted_list_runs(self, *args, **kwargs):
        reads.append(("list_runs", None))
        return list_runs(self, *args, **kwargs)

    monkeypatch.setattr(store_class, "get_run", counted_get_run)
    monkeypatch.setattr(store_class, "list_runs", counted_list_runs)
    return reads
