"""Runs on an orchestrator that is not local: the test-only `detached` flavor
(tests/remote_orchestrator) submits each run to a process of its own and returns at once, as a
remote orchestrator does, so a run goes on whatever happens to the daemon and its workers.

- The chain on that stack, across a daemon killed while its training goes on: the new daemon
  watches the run (never launches it again) and records it when it completes.
- A run past `AUTOPILOT_RUN_TIMEOUT_SECONDS` is stopped on the orchestrator and closed in the
  store before it is retried, so the original and the retry never both complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.remote_orchestrator.flavor import HOLD, alive, kill_all, live_runs, pid_of
from tests.support import PROJECT_ROOT, daemon_settings, http_get_text, wait_for

pytestmark = pytest.mark.e2e
STACK = "detached"


@pytest.fixture
def detached(zenml_store, tmp_path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The `detached` stack in the test's store, a daemon environment running on it, and the
    folder its runs live in (`hold` in it makes a submitted run wait). No run outlives the test."""
    from tests.remote_orchestrator.flavor import register_stack

    root = tmp_path / "detached"
    register_stack(zenml_store.client, root, STACK)
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_STACK": STACK,
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_MAX_CONCURRENT_RUNS": "1",
        # The daemon stops a run through its orchestrator: the flavor must import there, as an
        # installed orchestrator integration does.
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    try:
        yield root, environment
    finally:
        kill_all(root)


def _runs(key: str) -> list[Any]:
    from zenml.client import Client

    return list(Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items)


def test_the_chain_on_a_remote_orchestrator_across_a_restart_while_its_run_goes_on(
    detached, daemon_factory
):
    root, environment = detached
    (root / HOLD).touch()
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=11)
    key = f"train:{dataset.training_id}"
    start = daemon_factory(environment)

    first = start("daemon.log")
    run_id = first.wait_event("training.submitted", key=key)["run_id"]  # the worker returned
    wait_for(lambda: run_id in live_runs(root), timeout=30, what="the run's own process")
    first.kill()
    assert run_id in live_runs(root)  # the run goes on without the daemon

    second = start("daemon-restarted.log")
    second.wait_event("recovery.watching", key=key, run_id=run_id)
    wait_for(lambda: len(second.find("tick.completed")) >= 3, timeout=30, what="three ticks")
    (root / HOLD).unlink()
    succeeded = second.wait_event("training.succeeded", key=key)
    assert (succeeded["run_id"], succeeded["attempt"]) == (run_id, 1)
    promoted = second.wait_event("model.promoted", dataset_version_id=str(dataset.training_id))
    served_key = f"infer:{promoted['model_version_id']}"
    second.wait_event("inference.succeeded", key=served_key)
    assert second.stop() == 0

    assert second.find("training.launched") == []  # watched, never launched again
    for tagged in (key, served_key):
        runs = _runs(tagged)
        assert [(r.status.value, r.stack.name) for r in runs] == [("completed", STACK)], tagged


def test_a_timed_out_remote_run_is_stopped_before_it_is_retried(detached, daemon_factory):
    """The first daemon times the held run out (10 s), stops it and schedules the retry; a
    second daemon (the default timeout, so a slow machine cannot time the retry out too)
    submits the retry. Only then may runs go on: the original's process has ended, and one run
    completed, the retry (without the stop, the original completes too)."""
    from zenml.client import Client

    root, environment = detached
    (root / HOLD).touch()
    timing_out = {
        **environment,
        "AUTOPILOT_RUN_TIMEOUT_SECONDS": "10",
        "AUTOPILOT_RETRY_BACKOFF_SECONDS": "5",
    }
    start = daemon_factory(timing_out)
    first = start("daemon.log")
    _wait_warm(first)  # so that the worker submits the run well within the timeout
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=12)
    key = f"train:{dataset.training_id}"
    original = first.wait_event("training.submitted", key=key, attempt=1)["run_id"]
    wait_for(lambda: original in live_runs(root), timeout=30, what="the run's own process")
    pid = pid_of(root, original)
    failed = first.wait_event("training.attempt_failed", key=key, attempt=1, timeout=60)
    assert failed["run_id"] == original
    assert first.stop() == 0

    second = daemon_factory(environment)("daemon-retry.log")
    second.wait_event("training.submitted", key=key, attempt=2)
    (root / HOLD).unlink()  # whatever still runs may complete from now on: the retry, only
    retried = second.wait_event("training.succeeded", key=key)
    assert retried["attempt"] == 2 and retried["run_id"] != original
    wait_for(lambda: not alive(pid), timeout=60, what="the original run's process to end")
    assert second.stop() == 0

    completed = [r for r in _runs(key) if r.status.value == "completed"]
    assert [str(r.id) for r in completed] == [retried["run_id"]]
    assert Client().get_pipeline_run(original).status.value == "stopped"
    # Stopped on the orchestrator before the attempt was recorded as failed.
    events = [(e["event"], e.get("key")) for e in first.events()]
    assert events.index(("training.run_stopped", key)) < events.index(
        ("training.attempt_failed", key)
    )
    stopped = first.find("training.run_stopped", key=key)
    assert [(e["run_id"], e["on_orchestrator"]) for e in stopped] == [(original, True)]


def _wait_warm(daemon: Any) -> None:
    port = daemon.environment["AUTOPILOT_HTTP_PORT"]
    daemon.wait_event("daemon.started", timeout=120)
    wait_for(
        lambda: (
            "autopilot_worker_template_ready 1.0"
            in http_get_text(f"http://127.0.0.1:{port}/metrics")
        ),
        timeout=120,
        what="the worker template warm",
    )
