"""The daemon's life as an operator lives it: one daemon per state dir, and a graceful stop
(a deploy, `docker compose stop`) that costs a long run nothing but time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.faults import PAUSE_ENV
from tests.support import (
    PROJECT_ROOT,
    QUIET_ZENML,
    DaemonProcess,
    daemon_settings,
    free_port,
    slow_training,
    wait_for,
)

pytestmark = pytest.mark.e2e
AUTOPILOT = str(Path(sys.executable).parent / "autopilot")


def _autopilot(*args: str, env: dict[str, str], timeout: float = 120):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    return subprocess.run(
        [AUTOPILOT, *args],
        env={**clean, **QUIET_ZENML, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _runs(key: str) -> list:
    from zenml.client import Client

    return Client().list_pipeline_runs(tags=f"equals:{key}", size=50).items


def _running(key: str) -> list:
    return [r for r in _runs(key) if not r.status.is_finished]


def test_one_daemon_per_state_dir_and_graceful_stops_that_cost_no_attempt(
    zenml_store, daemon_factory, tmp_path
):
    """One store and one slow training for both: while a daemon runs it, a second daemon on its
    state dir exits 2 and touches nothing; then two graceful stops interrupt it, a deploy of
    `run` and a SIGTERM to `run --once`, and the third start completes it at attempt 1
    although only one attempt is allowed."""
    from zenml.client import Client

    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        # Long enough to be still going after the checks of a second daemon on a loaded
        # machine (8 s was not, at a load of 10); the final start trains in 1 s.
        **slow_training(seconds=20),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_MAX_ATTEMPTS": "1",  # one counted interruption would fail it for good
        "AUTOPILOT_SHUTDOWN_GRACE_SECONDS": "1",
    }
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=52)
    key = f"train:{dataset.training_id}"
    start = daemon_factory(environment)

    for deploy, args in enumerate([(), ("--once",)]):  # two stops mid-way through one training
        stopped = start(f"stopped-{deploy}.log", *args)
        stopped.wait_event("training.launched", key=key)
        (live,) = wait_for(lambda: _running(key), timeout=60, what="the slow run to be running")
        if deploy == 0:
            _a_second_daemon_is_refused(environment, stopped, key, str(dataset.training_id))
            assert [r.id for r in _running(key)] == [live.id]  # never taken for an orphan
        # `run` exits 0 when stopped; `run --once`, 1: what it launched did not succeed.
        assert stopped.stop() == (1 if args else 0)
        assert not stopped.find("recovery.action_found")
        (interrupted,) = stopped.find("training.interrupted", key=key)
        assert interrupted["run_id"] == str(live.id)
        assert interrupted["attempt_counted"] is False
        run = Client().get_pipeline_run(live.id)
        assert run.status.value == "failed"  # the store does not claim it still runs
        assert "interrupted" in (run.get_body().status_reason or "")
        assert not stopped.find("training.failed") and not stopped.find("training.attempt_failed")

    final = daemon_factory({**environment, **slow_training(seconds=1)})("final.log")
    succeeded = final.wait_event("training.succeeded", key=key)
    assert succeeded["attempt"] == 1  # the interrupted attempts were not counted
    statuses = sorted(r.status.value for r in _runs(key))
    assert statuses == ["completed", "failed", "failed"]
    assert not final.find("training.failed")

    # A daemon killed outright (its workers die with it) leaves the state dir free at once.
    final.kill()
    second = {**environment, "AUTOPILOT_HTTP_PORT": str(free_port())}
    after = _autopilot("run", "--once", env=second)
    assert after.returncode == 0, after.stderr[-2000:]


def _a_second_daemon_is_refused(
    environment: dict[str, str], first: DaemonProcess, key: str, dataset_id: str
) -> None:
    """`run --once` and `run` beside a live daemon exit 2 at once, naming the state dir and the
    holder's pid, having logged nothing; ledger-only commands work."""
    state_dir = environment["AUTOPILOT_STATE_DIR"]
    # Its own HTTP port: a port in use must not be why it exits.
    second = {**environment, "AUTOPILOT_HTTP_PORT": str(free_port())}
    for args in (("run", "--once"), ("run",)):
        started = time.monotonic()
        try:
            result = _autopilot(*args, env=second, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"autopilot {' '.join(args)} ran beside a live daemon on its state dir")
        took = time.monotonic() - started
        assert result.returncode == 2, (args, result.stdout[-2000:], result.stderr[-2000:])
        assert first.process is not None
        assert state_dir in result.stderr and str(first.process.pid) in result.stderr
        assert "Traceback" not in result.stderr
        assert took < 10, f"{args} took {took:.1f}s to refuse"
        assert result.stdout == ""  # no event: it neither recovered nor launched anything
    status = _autopilot("status", "--offline", env=environment)
    assert status.returncode == 0, status.stderr
    assert key in status.stdout
    explain = _autopilot("explain", dataset_id, env=environment)
    assert explain.returncode == 0, explain.stderr
    assert key in explain.stdout


def test_a_sigterm_during_start_up_ends_the_daemon_cleanly(zenml_store, tmp_path):
    """A stop asked for while the daemon starts (the soak's final daemon got one), after the
    worker template is forked and the logs configured, before the daemon's own signal handlers
    are in place: it exits 0, with no traceback, having launched nothing, the state dir free."""
    from service.lock import StateDirLock

    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_START_FROM": "beginning",
        PAUSE_ENV: "before_signal_handlers",
    }
    state_dir = Path(environment["AUTOPILOT_STATE_DIR"])
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=53)
    key = f"train:{dataset.training_id}"  # what it would train, had it started
    daemon = DaemonProcess(tmp_path / "daemon.log", environment).start()
    try:
        process = daemon.process
        assert process is not None and process.stderr is not None
        said = []
        for line in process.stderr:  # until it holds in the window
            said.append(line.decode(errors="replace"))
            if line.strip() == b"autopilot: paused at before_signal_handlers":
                break
        else:
            pytest.fail(f"exited with {process.wait(30)} before the pause: {''.join(said)}")
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        said.append(process.stderr.read().decode(errors="replace"))
    finally:
        daemon.close()
    stderr = "".join(said)
    assert code == 0, stderr[-3000:]  # not -15: the signal did not kill it
    assert "Traceback" not in stderr
    # Its log is empty: no traceback, and no event, since it had not connected to the store
    # (`daemon.configured`), let alone claimed or launched anything.
    assert daemon.log_path.read_text() == ""
    assert _runs(key) == []
    assert not (state_dir / "ledger.sqlite").exists()  # no ledger: nothing claimed
    StateDirLock(state_dir).release()  # the state dir is free again
