"""The `autopilot` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.support import (
    EXAMPLE_ROOT,
    PROJECT_ROOT,
    QUIET_ZENML,
    daemon_settings,
    diabetes_automation,
    iris_automation,
)

AUTOPILOT = str(Path(sys.executable).parent / "autopilot")


def autopilot(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPILOT_")}
    return subprocess.run(
        [AUTOPILOT, *args],
        env={**clean, **QUIET_ZENML, **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_configuration_exits_2_naming_every_bad_variable():
    result = autopilot(
        "check-config",
        env={
            "AUTOPILOT_POLL_INTERVAL_SECONDS": "-5",
            "AUTOPILOT_MAX_ATTEMPTS": "lots",
            "AUTOPILOT_START_FROM": "last tuesday",
            "AUTOPILOT_PROMOTION_TRESHOLD": "0.5",
        },
    )
    assert result.returncode == 2
    for name in (
        "AUTOPILOT_POLL_INTERVAL_SECONDS",
        "AUTOPILOT_MAX_ATTEMPTS",
        "AUTOPILOT_START_FROM",
        "AUTOPILOT_PROMOTION_TRESHOLD",
    ):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_refuses_to_start_on_bad_configuration_too(tmp_path):
    result = autopilot("run", env={"AUTOPILOT_MAX_CONCURRENT_RUNS": "0"})
    assert result.returncode == 2
    assert "AUTOPILOT_MAX_CONCURRENT_RUNS='0'" in result.stderr


def test_check_config_prints_the_effective_configuration_without_secrets():
    result = autopilot(
        "check-config",
        env={"ZENML_STORE_API_KEY": "ZENKEY_very_secret_value", "AUTOPILOT_MODEL_NAME": "m"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["automations"]["default"]["model_name"] == "m"
    assert shown["ZENML_STORE_API_KEY"] == "<redacted>"
    assert "ZENKEY_very_secret_value" not in result.stdout + result.stderr


@pytest.mark.integration
def test_unknown_stack_exits_2(zenml_store, tmp_path):
    result = autopilot(
        "run",
        "--once",
        env={"AUTOPILOT_STACK": "no-such-stack", "AUTOPILOT_STATE_DIR": str(tmp_path / "s")},
    )
    assert result.returncode == 2
    assert "AUTOPILOT_STACK='no-such-stack': no such stack" in result.stderr


@pytest.mark.integration
def test_run_once_exits_0_when_all_it_launched_succeeded_and_1_otherwise(zenml_store, tmp_path):
    """Three approved datasets on two worker slots: `run --once` also waits for the third,
    launched once a slot is free (it used to exit then and kill it, leaving it `running`)."""
    from zenml import save_artifact
    from zenml.client import Client

    env = {
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_MAX_ATTEMPTS": "1",
        "AUTOPILOT_MAX_CONCURRENT_RUNS": "2",
        "AUTOPILOT_LOG_FORMAT": "json",
        "AUTOPILOT_SQLITE_WAL": "false",
    }
    good = [
        launch_feature_engineering(training_tags=["approved"], random_state=seed)
        for seed in (31, 36, 37)
    ]
    ok = autopilot("run", "--once", env=env)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    events = [json.loads(line) for line in ok.stdout.splitlines()]
    (finished,) = [e for e in events if e["event"] == "once.finished"]
    keys = [f"train:{dataset.training_id}" for dataset in good]
    assert sorted(finished["launched"]) == sorted(keys)
    for key in keys:
        runs = Client().list_pipeline_runs(tags=f"equals:{key}").items
        assert [r.status.value for r in runs] == ["completed"], key
    assert _actions_in(tmp_path / "state", "running") == []
    assert Client().list_model_versions(model="iris_classifier").total == 3  # none by a kill

    broken = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})  # no `target` column
    bad = save_artifact(broken, name="iris_training_dataset", tags=["approved"])
    failed = autopilot("run", "--once", env=env)
    assert failed.returncode == 1
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    (error,) = [e for e in events if e["event"] == "training.failed"]
    assert error["dataset_version_id"] == str(bad.id)
    assert "target" in error["error"]

    # An operator sees why, replays it once, and the daemon does it again.
    explained = json.loads(autopilot("explain", str(bad.id), env=env).stdout)
    assert explained["judgements"][0]["status"] == "selected"
    assert explained["actions"][0]["state"] == "failed"
    assert "target" in explained["actions"][0]["error"]
    status = json.loads(autopilot("status", env=env).stdout)
    assert status["recent_failures"][0]["key"] == f"train:{bad.id}"
    (stream,) = [
        s for s in status["cursors"] if s["stream"].endswith("/dataset:iris_training_dataset")
    ]
    assert stream["not_judged_yet"] == 0 and stream["above_floor"] >= 1
    assert autopilot("replay", f"train:{bad.id}", env=env).returncode == 0
    again = autopilot("run", "--once", env=env)
    assert f"train:{bad.id}" in again.stdout and again.returncode == 1
    assert _journal_mode(zenml_store) == "delete"  # turned off: the store's mode left alone


def _actions_in(state_dir: Path, state: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(state_dir / "ledger.sqlite") as ledger:
        rows = ledger.execute("SELECT key FROM actions WHERE state = ?", (state,)).fetchall()
    return [key for (key,) in rows]


def _journal_mode(store) -> str:
    import sqlite3

    path = store.client.zen_store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as database:
        return str(database.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.integration
def test_dry_run_logs_what_it_would_do_and_changes_nothing(zenml_store, tmp_path):
    from zenml.client import Client

    env = {
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_LOG_FORMAT": "json",
    }
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=32)
    dry = autopilot("run", "--once", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    events = [json.loads(line) for line in dry.stdout.splitlines()]
    (launched,) = [e for e in events if e["event"] == "training.launched"]
    assert launched["dry_run"] is True
    assert launched["dataset_version_id"] == str(dataset.training_id)
    assert not (tmp_path / "state" / "ledger.sqlite").exists()  # the real ledger is untouched
    assert Client().list_pipeline_runs(tags="equals:autopilot").items == []
    assert _journal_mode(zenml_store) == "delete"

    real = autopilot("run", "--once", env=env)  # the dry run claimed nothing
    assert real.returncode == 0
    assert f"train:{dataset.training_id}" in real.stdout
    # A local SQLite store is switched to write-ahead logging, which stays with the file.
    events = [json.loads(line) for line in real.stdout.splitlines()]
    (changed,) = [e for e in events if e["event"] == "store.journal_mode_changed"]
    assert (changed["before"], changed["after"]) == ("delete", "wal")
    assert _journal_mode(zenml_store) == "wal"


def test_check_config_imports_each_projects_own_pipelines_side_by_side():
    """The example project has its own `pipelines` package: both resolve, neither shadows."""
    result = autopilot("check-config", env={**iris_automation(), **diabetes_automation()})
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["pipelines"]
    assert resolved["iris"]["training"]["file"] == str(PROJECT_ROOT / "pipelines" / "training.py")
    assert resolved["diabetes"]["training"]["file"] == str(
        EXAMPLE_ROOT / "pipelines" / "training.py"
    )
    assert resolved["diabetes"]["inference"]["name"] == "inference"
    assert "test_dataset_id: str" in resolved["diabetes"]["training"]["signature"]


def test_pipelines_that_cannot_run_as_configured_exit_2_naming_each_variable(tmp_path):
    bad = {
        **diabetes_automation(
            "typo", MODEL_NAME="m1", TRAINING_PIPELINE="pipelines.trainin:training"
        ),
        **diabetes_automation("step", MODEL_NAME="m2", TRAINING_PIPELINE="steps:train_model"),
        **diabetes_automation(
            "params",
            MODEL_NAME="m3",
            TRAINING_PARAMETERS=json.dumps({"train_dataset_id": "{{ dataset.id }}", "bogus": 1}),
            INFERENCE_PARAMETERS="{}",
        ),
    }
    for command in ("check-config", "run"):
        result = autopilot(command, env={**bad, "AUTOPILOT_STATE_DIR": str(tmp_path / "s")})
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        text = result.stderr
        assert (
            "AUTOPILOT_AUTOMATIONS__TYPO__TRAINING_PIPELINE='pipelines.trainin:training': "
            "cannot be imported" in text
        )
        assert "No module named 'pipelines.trainin'" in text
        assert "AUTOPILOT_AUTOMATIONS__STEP__TRAINING_PIPELINE='steps:train_model': is a " in text
        assert "not a ZenML pipeline" in text
        params = "AUTOPILOT_AUTOMATIONS__PARAMS__"
        assert f"{params}TRAINING_PARAMETERS: pipeline training does not accept parameter " in (
            text
        )
        assert f"{params}TRAINING_PARAMETERS: pipeline training needs parameter " in text
        assert f"{params}INFERENCE_PARAMETERS: pipeline inference needs parameter 'dataset_id'" in (
            text
        )


def test_the_bundled_pipelines_take_exactly_the_parameters_the_start_up_check_assumes():
    """`autopilot run` skips importing the bundled pipelines when they run as shipped: that is
    only sound while their signatures are what `BUNDLED_PARAMETERS` says."""
    import inspect

    from service.runtime.checks import BUNDLED_PARAMETERS
    from service.runtime.sources import load_attribute

    for reference, parameters in BUNDLED_PARAMETERS.items():
        signature = inspect.signature(load_attribute(reference).entrypoint).parameters
        assert set(signature) == parameters, reference


STORE_PASSWORD = "s3cr3t-pw"
STORE_URL_WITH_PASSWORD = f"mysql://autopilot:{STORE_PASSWORD}@127.0.0.1:1/zenml"


def test_check_config_shows_the_store_url_without_its_password(tmp_path):
    result = autopilot(
        "check-config",
        env={
            "ZENML_STORE_URL": STORE_URL_WITH_PASSWORD,
            "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        },
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["ZENML_STORE_URL"] == "mysql://autopilot:***@127.0.0.1:1/zenml"
    assert STORE_PASSWORD not in result.stdout + result.stderr


def test_the_daemons_log_names_the_store_it_waits_for_without_its_password(
    daemon_factory, tmp_path
):
    """Nothing listens on port 1: the daemon waits for the store, saying which one."""
    daemon = daemon_factory(
        {
            "ZENML_STORE_URL": STORE_URL_WITH_PASSWORD,
            "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
            **daemon_settings(tmp_path),
        }
    )("daemon.log")
    waiting = daemon.wait_event("store.unavailable", timeout=120, attempt=2)
    assert waiting["store_url"] == "mysql://autopilot:***@127.0.0.1:1/zenml"
    assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    assert "store.unavailable" in log and "zenml.log" in log  # ZenML's own lines are in it too
    assert STORE_PASSWORD not in log + daemon.stderr()
