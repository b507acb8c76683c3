"""The deployment topology of docker-compose.yml, as real local processes: a ZenML server,
the bootstrap step that gives the daemon its API key, and the daemon connected over REST."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    several_projects_in_one_daemon,
    the_whole_chain_exactly_once_across_a_restart,
)
from tests.support import (
    PROJECT_ROOT,
    DaemonProcess,
    daemon_settings,
    diabetes_automation,
    files_holding,
    free_port,
    project_process_environment,
    self_promoting_automation,
)

pytestmark = pytest.mark.e2e
AUTOPILOT = str(Path(sys.executable).parent / "autopilot")


def bootstrap(server, key_file: Path) -> subprocess.CompletedProcess[str]:
    """The compose file's bootstrap service: admin credentials in, the daemon's key file out."""
    return subprocess.run(
        [AUTOPILOT, "bootstrap", "--key-file", str(key_file)],
        env=project_process_environment(
            server.admin_environment(), {"ZENML_CONFIG_PATH": str(key_file.parent)}
        ),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def with_service_account_key(server, rest_store, tmp_path) -> dict[str, str]:
    """A daemon's environment on `server` with a key `autopilot bootstrap` made, sharing the
    test's artifact store (a local folder under its config path; in compose, a volume)."""
    key_file = tmp_path / "secrets" / "api_key"
    assert bootstrap(server, key_file).returncode == 0
    return {
        "ZENML_STORE_URL": server.url,
        "AUTOPILOT_ZENML_API_KEY_FILE": str(key_file),
        "ZENML_CONFIG_PATH": str(rest_store.config_path),
        **daemon_settings(tmp_path),
    }


def test_the_whole_chain_over_rest_with_a_service_account_key(
    zenml_server, zenml_rest_store, daemon_factory, tmp_path
):
    key_file = tmp_path / "secrets" / "api_key"
    first = bootstrap(zenml_server, key_file)
    assert first.returncode == 0, first.stderr
    assert '"outcome": "created_account_and_key"' in first.stdout
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    again = bootstrap(zenml_server, key_file)  # every `docker compose up` runs it again
    assert '"outcome": "kept_existing_key"' in again.stdout

    environment = {
        "ZENML_STORE_URL": zenml_server.url,
        "AUTOPILOT_ZENML_API_KEY_FILE": str(key_file),
        # The default stack's artifact store is a local folder under the client's config path:
        # the daemon's runs must see the folder the test's runs wrote to (in compose: a volume).
        "ZENML_CONFIG_PATH": str(zenml_rest_store.config_path),
        **daemon_settings(tmp_path),
    }
    start = daemon_factory(environment)
    the_whole_chain_exactly_once_across_a_restart(start, then_lose_the_ledger=True)

    key = key_file.read_text().strip()
    for log in tmp_path.glob("daemon*.log"):
        assert key not in log.read_text()
    assert key not in (tmp_path / "state" / "ledger.sqlite").read_bytes().decode(errors="ignore")

    # The other processes that authenticate with the key: `status` and the demo producer.
    for command in (
        [AUTOPILOT, "status"],
        [sys.executable, "-m", "pipelines.producer", "--count", "1", "--interval", "0"],
    ):
        with_key = {"ZENML_STORE_API_KEY": key} if "pipelines.producer" in command else {}
        done = subprocess.run(
            command,
            env=project_process_environment(environment, with_key),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    # ZenML caches the credentials it is given in clear under its config dir unless told not
    # to: no file any of them wrote (bootstrap's config dir is the key's folder; every other
    # process's the test's) holds the key or a password. The server's own files aside.
    secrets = {"the API key": key, "the admin's password": zenml_server.admin_password}
    assert files_holding(tmp_path, secrets, skip=(key_file, zenml_server.root)) == []


def test_a_users_project_over_rest_beside_a_self_promoting_one(
    zenml_server, zenml_rest_store, daemon_factory, tmp_path
):
    """The example project (its own `pipelines` and `steps`) and a self-promoting automation of
    it, driven over REST with the service account's key, as in the embedded-store test."""
    environment = {
        **with_service_account_key(zenml_server, zenml_rest_store, tmp_path),
        **diabetes_automation(PROMOTION_MODE="approval"),
        **self_promoting_automation(),
    }
    several_projects_in_one_daemon(daemon_factory(environment), with_iris=False)


def test_wrong_api_key_exits_2_with_a_clear_message(zenml_server, tmp_path):
    key_file = tmp_path / "bad_key"
    key_file.write_text("ZENKEY_" + "0" * 80 + "\n")
    result = subprocess.run(
        [AUTOPILOT, "run"],
        env={
            **_plain_env(),
            "ZENML_STORE_URL": zenml_server.url,
            "AUTOPILOT_ZENML_API_KEY_FILE": str(key_file),
            "ZENML_CONFIG_PATH": str(tmp_path / "zen"),
            "AUTOPILOT_STATE_DIR": str(tmp_path / "s"),
            "AUTOPILOT_HTTP_PORT": "0",
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "rejected the credentials" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "0" * 80 not in result.stderr + result.stdout


def test_unreachable_server_is_waited_for_and_logged_not_crashed(tmp_path):
    port = free_port()
    key_file = tmp_path / "key"
    key_file.write_text("ZENKEY_placeholder\n")
    daemon = DaemonProcess(
        tmp_path / "daemon.log",
        {
            "ZENML_STORE_URL": f"http://127.0.0.1:{port}",
            "AUTOPILOT_ZENML_API_KEY_FILE": str(key_file),
            "ZENML_CONFIG_PATH": str(tmp_path / "zen"),
            "AUTOPILOT_STATE_DIR": str(tmp_path / "s"),
            "AUTOPILOT_HTTP_PORT": "0",
        },
    ).start()
    try:
        unavailable = daemon.wait_event("store.unavailable", timeout=120)
        assert unavailable["during"] == "start-up"
        assert daemon.process.poll() is None  # still alive, waiting
        assert daemon.stop(timeout=90) == 0
    finally:
        daemon.close()
    assert len(daemon.find("store.unavailable")) == 1  # logged once, not once per retry


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "AUTOPILOT_"))}
