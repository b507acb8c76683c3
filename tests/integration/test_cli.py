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
    IMPORTS_ROOT,
    PINNED_ROOT,
    PROJECT_ROOT,
    QUIET_ZENML,
    daemon_settings,
    diabetes_automation,
    diabetes_evaluation,
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
        "--offline",  # no store here to ask about the watched names
        env={"ZENML_STORE_API_KEY": "ZENKEY_very_secret_value", "AUTOPILOT_MODEL_NAME": "m"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["automations"]["default"]["model_name"] == "m"
    assert shown["ZENML_STORE_API_KEY"] == "<redacted>"
    assert "ZENKEY_very_secret_value" not in result.stdout + result.stderr
    assert shown["warnings"] == [] and "warning" not in result.stderr  # trains on {{ dataset.id }}


@pytest.mark.integration
def test_check_config_names_the_watched_names_the_store_does_not_hold(zenml_store):
    """A typo watches nothing on SQLite (it compares names exactly): check-config says so, with
    the store's close match, and that the model does not exist yet (warnings: exit 0)."""
    from zenml import save_artifact

    save_artifact(pd.DataFrame({"x": [1]}), name="iris_training_dataset")
    result = autopilot("check-config", env={"AUTOPILOT_DATASET_NAMES": "iris_trainig_dataset"})
    assert result.returncode == 0, result.stderr
    typo = (
        "AUTOPILOT_DATASET_NAMES: the store has no artifact named 'iris_trainig_dataset' (yet): "
        "nothing is watched until one is created; did you mean 'iris_training_dataset'?"
    )
    model = "AUTOPILOT_MODEL_NAME: the store has no model named 'iris_classifier' (yet)"
    assert f"warning: {typo}" in result.stderr and model in result.stderr
    shown = json.loads(result.stdout)["names_not_in_store"]
    assert len(shown) == 2 and typo in shown


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


@pytest.mark.integration
def test_a_project_other_than_the_active_one_is_chosen_by_its_id(zenml_store, tmp_path):
    """The README's way to run the daemon on another ZenML project: ZENML_ACTIVE_PROJECT_ID in
    its environment. It watches that project's datasets alone and runs its pipelines there."""
    from zenml.client import Client

    other = zenml_store.client.create_project("churn-team", description="another team's")
    in_default = launch_feature_engineering(training_tags=["approved"], random_state=35)
    os.environ["ZENML_ACTIVE_PROJECT_ID"] = str(other.id)
    try:
        in_other = launch_feature_engineering(training_tags=["approved"], random_state=36)
    finally:
        del os.environ["ZENML_ACTIVE_PROJECT_ID"]
    assert Client().active_project.name == "default"
    env = {
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_LOG_FORMAT": "json",
        "ZENML_ACTIVE_PROJECT_ID": str(other.id),
    }
    ran = autopilot("run", "--once", env=env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    (finished,) = [e for e in events if e["event"] == "once.finished"]
    assert finished["launched"] == [f"train:{in_other.training_id}"]
    assert f"train:{in_default.training_id}" not in ran.stdout
    (succeeded,) = [e for e in events if e["event"] == "training.succeeded"]
    assert Client().get_pipeline_run(succeeded["run_id"]).project_id == other.id


NOISY_ROOT = PROJECT_ROOT / "tests" / "projects" / "noisy"


@pytest.mark.integration
def test_stdout_stays_one_json_event_per_line_and_errors_are_kept_redacted(zenml_store, tmp_path):
    """A project that writes to stdout when imported (tests/projects/noisy: ZenML's logger, a
    Python warning, a print) and whose training fails with an error quoting the store's API
    key and a URL with its password; ZenML itself warns when imported (a deprecated variable),
    in the daemon and in every process it starts."""
    import secrets

    api_key, password = f"ZENKEY_{secrets.token_hex(16)}", secrets.token_hex(8)
    state = tmp_path / "state"
    env = {
        "AUTOPILOT_STATE_DIR": str(state),
        "AUTOPILOT_START_FROM": "beginning",
        "AUTOPILOT_MAX_ATTEMPTS": "1",
        "AUTOPILOT_LOG_FORMAT": "json",
        "AUTOPILOT_SOURCE_ROOT": str(NOISY_ROOT),
        "AUTOPILOT_TRAINING_PIPELINE": "noisy_training:noisy_training",
        "AUTOPILOT_TRAINING_PARAMETERS": json.dumps({"dataset_version_id": "{{ dataset.id }}"}),
        "ZENML_LOGGING_FORMAT": "%(message)s",
        # A credential the daemon masks wherever it appears (an embedded store ignores it).
        "ZENML_STORE_API_KEY": api_key,
        "NOISY_TRAINING_ERROR": f"no postgresql://etl:{password}@db/x for key {api_key}",
    }
    dataset = launch_feature_engineering(training_tags=["approved"], random_state=34)
    run = autopilot("run", "--once", env=env)
    assert run.returncode == 1, run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines()]  # each line one object
    logged = [e["message"] for e in events if e["event"] == "zenml.log"]
    for noise in (
        "noisy project: a warning through ZenML's logger",
        "noisy project: a Python warning",
        "noisy project: a print",
        "The `ZENML_LOGGING_FORMAT` environment variable is deprecated",
    ):
        assert any(noise in message for message in logged), (noise, logged)
    (failed,) = [e for e in events if e["event"] == "training.failed"]
    assert "no postgresql://etl:***@db/x for key <redacted>" in failed["error"]

    key = f"train:{dataset.training_id}"
    explained = autopilot("explain", str(dataset.training_id), env=env)
    assert explained.returncode == 0, explained.stderr
    (action,) = json.loads(explained.stdout)["actions"]
    assert action["key"] == key and "postgresql://etl:***@db/x" in action["error"]
    status = autopilot("status", "--offline", env=env)
    assert json.loads(status.stdout)["recent_failures"][0]["key"] == key
    ledger = b"".join(path.read_bytes() for path in state.glob("ledger.sqlite*"))
    for secret in (api_key, password):
        in_ledger = secret.encode() in ledger
        assert not in_ledger, "a secret in the ledger"
        assert secret not in run.stdout + explained.stdout + status.stdout

    # check-config prints the configuration alone on stdout, what ZenML said on stderr.
    checked = autopilot("check-config", env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["pipelines"]["default"]["training"]["name"] == (
        "noisy_training"
    )
    assert "noisy project: a print" in checked.stderr


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
    diabetes = diabetes_automation(**diabetes_evaluation())
    result = autopilot("check-config", "--offline", env={**iris_automation(), **diabetes})
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["pipelines"]
    assert resolved["iris"]["training"]["file"] == str(PROJECT_ROOT / "pipelines" / "training.py")
    assert resolved["diabetes"]["training"]["file"] == str(
        EXAMPLE_ROOT / "pipelines" / "training.py"
    )
    assert resolved["diabetes"]["inference"]["name"] == "inference"
    assert resolved["diabetes"]["evaluation"]["file"] == str(
        EXAMPLE_ROOT / "pipelines" / "evaluation.py"
    )
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
            **diabetes_evaluation(EVALUATION_PARAMETERS="{}"),
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
        assert (
            f"{params}EVALUATION_PARAMETERS: pipeline evaluation needs parameter 'dataset_id'"
            in (text)
        )


def _imports_automation(training: str) -> dict[str, str]:
    """A project of tests/projects/imports as a named automation (the bundled inference)."""
    prefix = "AUTOPILOT_AUTOMATIONS__IMPORTS__"
    return {
        f"{prefix}SOURCE_ROOT": str(IMPORTS_ROOT),
        f"{prefix}DATASET_NAMES": "imports_dataset",
        f"{prefix}MODEL_NAME": "imports_model",
        f"{prefix}TRAINING_PIPELINE": training,
        f"{prefix}TRAINING_PARAMETERS": json.dumps({"dataset_version_id": "{{ dataset.id }}"}),
    }


@pytest.mark.integration
def test_the_start_up_check_imports_on_the_runs_stack_and_warns_of_a_training_without_dataset(
    zenml_store, tmp_path
):
    """`imports` reads the active stack when imported (ZenML's e2e template does); only the
    stack named by AUTOPILOT_STACK, not the active one, has what it reads. `fixed` trains every
    selected version with the same parameters: said, by name, and the daemon still starts."""
    client = zenml_store.client
    client.create_stack_component(
        name="registry",
        flavor="default",
        component_type="container_registry",
        configuration={"uri": "localhost:5000"},
    )
    client.create_stack(
        name="runs",
        components={
            "orchestrator": "default",
            "artifact_store": "default",
            "container_registry": "registry",
        },
    )
    assert client.active_stack_model.name == "default"
    fixed = "AUTOPILOT_AUTOMATIONS__FIXED__"
    env = {
        **_imports_automation("reads_stack:training"),
        f"{fixed}SOURCE_ROOT": str(PINNED_ROOT),
        f"{fixed}DATASET_NAMES": "fixed_dataset",
        f"{fixed}MODEL_NAME": "fixed_model",
        f"{fixed}TRAINING_PIPELINE": "pinned_training:training_into_v1",
        f"{fixed}TRAINING_PARAMETERS": json.dumps({"dataset_version_id": "one-for-all"}),
        "AUTOPILOT_STACK": "runs",
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_LOG_FORMAT": "json",
    }
    warning = f"{fixed}TRAINING_PARAMETERS: no {{{{ dataset.* }}}} placeholder"
    checked = autopilot("check-config", env=env)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert f"autopilot: warning: {warning}" in checked.stderr
    (shown,) = json.loads(checked.stdout)["warnings"]
    assert shown.startswith(warning)
    # The other automation passes its dataset: no such warning names it (the store's notes on
    # names it does not hold yet may).
    assert not any(
        "IMPORTS" in line and "placeholder" in line for line in checked.stderr.splitlines()
    )
    dry = autopilot("run", "--once", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    events = [json.loads(line) for line in dry.stdout.splitlines()]
    (logged,) = [e for e in events if e["event"] == "config.training_without_dataset"]
    assert (logged["automation"], logged["level"]) == ("fixed", "warning")
    assert logged["variable"] == f"{fixed}TRAINING_PARAMETERS"


def test_a_project_that_fails_to_import_is_named_with_the_file_and_line_that_raised():
    result = autopilot("check-config", env=_imports_automation("raises_at_import:training"))
    assert result.returncode == 2
    # The innermost frame in the project's own files, not pathlib's that raised.
    source = (IMPORTS_ROOT / "labels.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "read_text()" in text)
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'labels.txt'" in result.stderr
    assert f"(at labels.py:{line})" in result.stderr
    assert "Traceback" not in result.stderr


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
