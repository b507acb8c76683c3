"""Stopping a run that goes on by itself (the test-only `detached` orchestrator, see
tests/remote_orchestrator): through its orchestrator where ZenML can, and in any case closed in
the store, so that it never completes. The daemon's side of it is in
tests/e2e/test_remote_orchestrator.py."""

from __future__ import annotations

from uuid import UUID

from pipelines.feature_engineering import launch_feature_engineering
from pipelines.training import launch_training
from service.core.records import RunStatus
from service.store import StoreAdapter
from tests.remote_orchestrator.flavor import (
    HOLD,
    DetachedOrchestrator,
    alive,
    kill_all,
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
