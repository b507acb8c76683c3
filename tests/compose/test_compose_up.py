"""`docker compose up daemon` for real: images built, containers started, counted in the store.

`make test-compose` runs this module (marker `compose`, deselected from `make test`) after
`scripts/container-engine.sh` has started podman's Docker API and `tests/compose/standins/build.sh`
has put stand-ins for the three registry images under their registry names. docker-compose.yml
and the Dockerfile are used unmodified, from a copy of the project in a temporary folder (its
`.env` is the test's own, made by `scripts/new-env.sh`, never the developer's).

The tests run in file order on one deployment and each relies on the ones before it: the first
failure makes the rest fail too. Counting is done as the other e2e tests count (RELIABILITY.md):
completed runs tagged with an action key, `autopilot_decision` metadata on model versions, read
through the published ZenML port with the admin credentials from the generated `.env`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml

from tests.monitoring_names import dashboard_queries, names_used
from tests.support import PROJECT_ROOT, diabetes_automation, files_holding, free_port, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///run/podman/podman.sock")
PASSWORDS = ("MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "ZENML_ADMIN_PASSWORD")
KEY_FILE = "/run/autopilot-secrets/api_key"
IMAGE = "zenml-autopilot:latest"
# Every optional service too, so that listing, logs and `down` reach all of them.
PROFILES = ("--profile", "demo", "--profile", "monitoring")
MODEL = "iris_classifier"
DATASET = "iris_training_dataset"
# What the image needs to build and what a user mounts; no venv, VCS, caches or state.
COPIED = [
    "Dockerfile",
    "docker-compose.yml",
    ".dockerignore",
    ".env.example",
    "daemon.env",
    "requirements.lock",
    "pyproject.toml",
    "README.md",
    "service",
    "pipelines",
    "scripts",
    "examples",
    "monitoring",
]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".zen", ".mypy_cache", ".ruff_cache")
# How long each phase may take on a loaded 2-core CI machine (measured runs are far shorter).
UP_TIMEOUT = 600
ALERT_RULES = "monitoring/prometheus/alerts.yml"
CHAIN_TIMEOUT = 600
# Fast polls for the test, set where a user sets the daemon's settings: its env file.
FAST_DAEMON = {
    "AUTOPILOT_POLL_INTERVAL_SECONDS": "2",
    "AUTOPILOT_RECONCILE_INTERVAL_SECONDS": "20",
    "AUTOPILOT_RETRY_BACKOFF_SECONDS": "2",
}


@dataclass
class Deployment:
    """The project copy, the environment docker-compose runs in, and what the tests learnt."""

    root: Path
    environment: dict[str, str]
    zenml_port: int
    daemon_port: int
    prometheus_port: int
    facts: dict[str, Any] = field(default_factory=dict)

    def compose(
        self, *args: str, check: bool = True, timeout: float = UP_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker-compose", *args],
            cwd=self.root,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, (
                f"docker-compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def podman(self, *args: str) -> str:
        """podman's own CLI on the same engine (through the same socket)."""
        result = subprocess.run(
            ["podman", "--url", DOCKER_HOST, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
        return result.stdout

    def container(self, service: str) -> dict[str, Any]:
        """`inspect` of the service's (only) container, running or not."""
        ids = self.compose(*PROFILES, "ps", "-a", "-q", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        (info,) = json.loads(self.podman("container", "inspect", ids[0]))
        return dict(info)

    def health(self, service: str) -> str:
        state = self.container(service)["State"]
        return str((state.get("Health") or state.get("Healthcheck") or {}).get("Status", ""))

    def wait_healthy(self, *services: str, timeout: float = UP_TIMEOUT) -> None:
        for service in services:
            wait_for(
                lambda s=service: self.health(s) == "healthy",  # type: ignore[misc]
                timeout=timeout,
                interval=2,
                what=f"{service} healthy by its compose healthcheck",
            )

    def logs(self, *services: str) -> str:
        return self.compose(*PROFILES, "logs", "--no-color", *services).stdout

    def daemon_events(self) -> list[dict[str, Any]]:
        """The daemon container's JSON log lines (every start of the container)."""
        raw = self.compose("logs", "--no-color", "--no-log-prefix", "daemon").stdout
        events = []
        for line in raw.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "event" in event:
                events.append(event)
        return events

    def exec_daemon(self, command: str) -> str:
        return self.compose("exec", "-T", "daemon", "sh", "-c", command).stdout

    def write_daemon_env(self, name: str, variables: dict[str, str]) -> None:
        """The daemon's env file (DAEMON_ENV_FILE), with the test's fast polls. Compose keeps
        quotes in an env_file: values go in bare."""
        values = {**FAST_DAEMON, **variables}
        text = "".join(f"{key}={value}\n" for key, value in values.items())
        (self.root / name).write_text(text)
        self.environment["DAEMON_ENV_FILE"] = f"./{name}"

    def copy_out(self, service: str, path: str, into: Path) -> None:
        """`path` of the service's container (running or not) copied into the folder `into`."""
        into.mkdir(parents=True, exist_ok=True)
        self.podman("cp", f"{self.container(service)['Id']}:{path}", str(into))

    def env_value(self, name: str) -> str:
        for line in (self.root / ".env").read_text().splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1]
        raise AssertionError(f"{name} is not in .env")

    def admin_environment(self) -> dict[str, str]:
        return {
            "ZENML_STORE_URL": f"http://127.0.0.1:{self.zenml_port}",
            "ZENML_STORE_USERNAME": self.env_value("ZENML_ADMIN_USERNAME"),
            "ZENML_STORE_PASSWORD": self.env_value("ZENML_ADMIN_PASSWORD"),
        }


def _copy_project(destination: Path) -> None:
    destination.mkdir()
    for name in COPIED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=IGNORED)
        else:
            shutil.copy2(source, destination / name)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: run `make test-compose` (or make container-engine)")
    root = tmp_path_factory.mktemp("compose") / "project"
    _copy_project(root)
    zenml_port, daemon_port, prometheus_port = free_port(), free_port(), free_port()
    # The developer's shell must not configure this deployment: only .env and what is set here.
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ZENML_", "AUTOPILOT_", "MYSQL_", "COMPOSE_", "DAEMON_"))
    }
    environment = {
        **clean,
        "DOCKER_HOST": DOCKER_HOST,
        # Variables set in the shell win over .env: a project of its own, free ports.
        "COMPOSE_PROJECT_NAME": f"autopilot-test-{os.getpid()}",
        "ZENML_PUBLISH_PORT": str(zenml_port),
        "DAEMON_HTTP_PORT": str(daemon_port),
        "PROMETHEUS_PUBLISH_PORT": str(prometheus_port),
        "ZENML_DASHBOARD_URL": f"http://127.0.0.1:{zenml_port}",
    }
    deployment = Deployment(root, environment, zenml_port, daemon_port, prometheus_port)
    deployment.write_daemon_env("test-daemon.env", {})  # daemon.env as shipped, polls fast
    deployment.facts["volumes_before"] = set(deployment.podman("volume", "ls", "-q").split())
    try:
        yield deployment
    finally:
        # Whatever happened, leave no container, volume or network behind.
        if (root / ".env").exists():
            deployment.compose(*PROFILES, "down", "-v", "-t", "10", check=False)


@pytest.fixture(scope="module")
def store(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This test process as the ZenML admin, through the published port (opened on first use)."""
    from tests.conftest import _isolated_zenml

    with pytest.MonkeyPatch.context() as patch:
        tmp = tmp_path_factory.mktemp("zenml-client")
        with _isolated_zenml(tmp, patch, deployment.admin_environment()) as isolated:
            assert isolated.client.zen_store.type.value == "rest"
            yield isolated.client


# -- counting, as tests/e2e and RELIABILITY.md count ----------------------------------------------


def completed_runs(client: Any, key: str) -> int:
    runs = client.list_pipeline_runs(tags=f"equals:{key}", size=100).items
    return sum(1 for run in runs if value_of(run.status) == "completed")


def value_of(field: Any) -> str:
    """An enum's value or a plain string (ZenML returns either, depending on the model)."""
    return str(getattr(field, "value", field))


def iris_datasets(client: Any) -> tuple[list[str], list[str]]:
    """Ids of the published iris datasets: (approved, not approved)."""
    versions = client.list_artifact_versions(artifact=DATASET, size=100).items
    approved = [str(v.id) for v in versions if "approved" in {t.name for t in v.tags}]
    others = [str(v.id) for v in versions if str(v.id) not in approved]
    return approved, others


def chain_counts(client: Any) -> dict[str, int]:
    """Completed runs per action key, for every dataset and model version in the store."""
    approved, others = iris_datasets(client)
    counts = {f"train:{d}": completed_runs(client, f"train:{d}") for d in approved + others}
    for version in client.list_model_versions(model=MODEL, size=100).items:
        decision = version.run_metadata.get("autopilot_decision")
        outcome = decision.get("outcome") if isinstance(decision, dict) else None
        counts[f"decision:{version.id}"] = 1 if outcome else 0
        if outcome == "promoted":
            counts[f"infer:{version.id}"] = completed_runs(client, f"infer:{version.id}")
    return counts


def assert_exactly_once(client: Any, counts: dict[str, int]) -> None:
    approved, others = iris_datasets(client)
    expected = {f"train:{d}": 1 for d in approved} | {f"train:{d}": 0 for d in others}
    expected |= {key: 1 for key in counts if key.startswith(("decision:", "infer:"))}
    assert counts == expected
    versions = client.list_model_versions(model=MODEL, size=100).items
    assert len(versions) == len(approved), "one model version per approved dataset"
    assert len(client.list_model_versions(model=MODEL, stage="production").items) == 1


def chain_done(client: Any) -> dict[str, int] | None:
    """The counts once every published dataset has gone all the way, else None."""
    counts = chain_counts(client)
    try:
        assert_exactly_once(client, counts)
    except AssertionError:
        return None
    return counts


def launches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = ("training.launched", "inference.launched", "model.promoted", "model.rejected")
    return [e for e in events if e["event"] in kinds]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


# -- 0. no known default password -------------------------------------------------------------


def test_without_env_compose_refuses_and_names_the_passwords(deployment):
    refused = deployment.compose("up", "-d", "daemon", check=False, timeout=120)
    assert refused.returncode != 0
    for name in PASSWORDS:
        assert name in refused.stderr
    assert "scripts/new-env.sh" in refused.stderr
    assert project_containers(deployment) == [], "nothing may start without the passwords"


def test_new_env_writes_random_passwords_readable_by_its_owner_only(deployment):
    subprocess.run(["scripts/new-env.sh"], cwd=deployment.root, check=True, timeout=30)
    env = deployment.root / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    values = [deployment.env_value(name) for name in PASSWORDS]
    assert all(len(value) >= 32 for value in values) and len(set(values)) == 3
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert all(value not in example for value in values)
    again = subprocess.run(
        ["scripts/new-env.sh"], cwd=deployment.root, capture_output=True, text=True, timeout=30
    )
    assert again.returncode != 0 and "exists" in again.stderr, "never overwrites a .env"


def project(deployment: Deployment) -> str:
    return deployment.environment["COMPOSE_PROJECT_NAME"]


def project_containers(deployment: Deployment) -> list[str]:
    label = f"label=com.docker.compose.project={project(deployment)}"
    return deployment.podman("ps", "-a", "-q", "--filter", label).split()


# -- 1. the image -----------------------------------------------------------------------------


def test_build_makes_the_image_from_the_dockerfile_running_as_uid_10001(deployment):
    started = time.monotonic()
    deployment.compose("build", timeout=1500)
    deployment.facts["build_seconds"] = round(time.monotonic() - started)
    (image,) = json.loads(deployment.podman("image", "inspect", IMAGE))
    assert image["Config"]["User"] == "autopilot"
    assert image["Config"]["Cmd"] == ["autopilot", "run"]
    ids = deployment.compose("run", "--rm", "--no-deps", "-T", "daemon", "sh", "-c", "id -u; id -g")
    assert ids.stdout.split()[-2:] == ["10001", "10001"]


# -- 2. up: mysql -> zenml -> bootstrap -> daemon, each healthy by its own check -----------------


def test_up_daemon_starts_the_chain_in_order_each_healthy(deployment):
    started = time.monotonic()
    deployment.compose("up", "-d", "daemon")
    deployment.wait_healthy("mysql", "zenml", "daemon")
    deployment.facts["up_seconds"] = round(time.monotonic() - started)

    bootstrap = deployment.container("bootstrap")["State"]
    assert bootstrap["Status"] == "exited" and bootstrap["ExitCode"] == 0
    assert '"outcome": "created_account_and_key"' in deployment.logs("bootstrap")

    def started_at(service: str) -> datetime:
        return parse_time(deployment.container(service)["State"]["StartedAt"])

    # depends_on: each one started only after the one before was healthy (or, for the
    # one-shot bootstrap, had finished).
    assert started_at("mysql") < started_at("zenml") < started_at("bootstrap")
    assert parse_time(bootstrap["FinishedAt"]) <= started_at("daemon")
    health_log = deployment.container("zenml")["State"]["Health"]["Log"]
    assert any(entry["ExitCode"] == 0 for entry in health_log)

    assert http_status(f"http://127.0.0.1:{deployment.daemon_port}/healthz") == 200
    assert http_status(f"http://127.0.0.1:{deployment.daemon_port}/readyz") == 200
    assert http_status(f"http://127.0.0.1:{deployment.zenml_port}/health") == 200


def parse_time(value: str) -> datetime:
    """podman's UTC times with nanoseconds (2026-11-27T14:24:39.932700868Z), to the µs."""
    assert value.endswith("Z"), value
    head, _, fraction = value.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{fraction[:6].ljust(6, '0')}+00:00")


# -- 3. the demo producer: the whole chain, exactly once, followed with jq ----------------------


def test_demo_datasets_are_trained_promoted_and_inferred_exactly_once(deployment, store):
    started = time.monotonic()
    deployment.compose("--profile", "demo", "up", "-d", "producer")
    # The producer's first three cases: approved (promoted), unapproved (skipped), approved
    # (promoted again, a better accuracy): two productions, two inferences.
    wait_for(
        lambda: len(iris_datasets(store)[0]) >= 2,
        timeout=CHAIN_TIMEOUT,
        interval=5,
        what="two approved demo datasets",
    )
    deployment.compose("--profile", "demo", "stop", "producer")
    counts = wait_for(
        lambda: chain_done(store), timeout=CHAIN_TIMEOUT, interval=5, what="the chain to finish"
    )
    deployment.facts["chain_seconds"] = round(time.monotonic() - started)
    approved, others = iris_datasets(store)
    assert len(approved) >= 2 and len(others) >= 1
    assert sum(1 for key in counts if key.startswith("infer:")) >= 2, "production moved twice"
    deployment.facts["counts"] = counts

    # One dataset followed through the daemon's log with the README's jq line.
    first = min((store.get_artifact_version(UUID(d)) for d in approved), key=lambda v: v.created)
    followed = subprocess.run(
        'docker-compose logs --no-log-prefix daemon | jq -cR --arg id "$ID" '
        "'fromjson? | select(.dataset_version_id == $id) "
        "| {timestamp, event, run_id, model_version_id}'",
        shell=True,
        cwd=deployment.root,
        env={**deployment.environment, "ID": str(first.id)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert followed.returncode == 0, followed.stderr
    chain = [json.loads(line)["event"] for line in followed.stdout.splitlines()]
    for event in (
        "dataset.selected",
        "training.launched",
        "training.succeeded",
        "model.promoted",
        "inference.launched",
        "inference.succeeded",
    ):
        assert chain.count(event) == 1, (event, chain)


# -- 3b. the status page, and the monitoring profile: Prometheus with the alert rules ---------


def test_the_status_page_and_prometheus_with_the_alert_rules_loaded(deployment, store):
    """The daemon's page on its published port shows the chain just run, its runs linked to
    the dashboard on the published ZenML port; `--profile monitoring` starts Prometheus, which
    scrapes the daemon and has every alert rule of monitoring/prometheus/alerts.yml loaded."""
    page = f"http://127.0.0.1:{deployment.daemon_port}"
    with urllib.request.urlopen(f"{page}/api/status", timeout=10) as response:
        status = json.loads(response.read())
    (automation,) = status["automations"]
    assert automation["production"]["changed_by"] == "autopilot"
    run_url = next(
        c["training"]["run_url"] for c in automation["chains"] if c["training"]["run_id"]
    )
    assert run_url.startswith(f"http://127.0.0.1:{deployment.zenml_port}/projects/default/runs/")
    assert http_status(run_url) == 200
    assert http_status(f"{page}/") == 200

    deployment.compose("--profile", "monitoring", "up", "-d", "prometheus")
    api = f"http://127.0.0.1:{deployment.prometheus_port}/api/v1"
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((deployment.root / ALERT_RULES).read_text())["groups"]
        for rule in group["rules"]
    }
    loaded = wait_for(
        lambda: prometheus_alerts(api), timeout=UP_TIMEOUT, interval=3, what="rules loaded"
    )
    assert set(loaded) == shipped and len(shipped) == 6
    wait_for(
        lambda: daemon_target_health(api) == "up",
        timeout=120,
        interval=3,
        what="the daemon scraped",
    )
    # Every rule evaluates without error on the real series, and every metric the dashboard
    # and the rules read is in Prometheus.
    wait_for(
        lambda: set(prometheus_alerts(api).values()) == {"ok"},
        timeout=120,
        interval=3,
        what="every rule evaluated",
    )
    series = prometheus_get(api, "label/__name__/values")
    assert names_used() - set(series) == set()
    for query in dashboard_queries():  # each of the Grafana dashboard's, as Grafana asks it
        assert prometheus_get(api, f"query?query={urllib.parse.quote(query)}") is not None, query
    deployment.compose("--profile", "monitoring", "stop", "prometheus")


def prometheus_get(api: str, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"{api}/{path}", timeout=5) as response:
            body = json.loads(response.read())
    except OSError:
        return None
    assert body["status"] == "success", body
    return body["data"]


def daemon_target_health(api: str) -> str | None:
    targets = (prometheus_get(api, "targets") or {}).get("activeTargets") or [{}]
    return str(targets[0].get("health"))


def prometheus_alerts(api: str) -> dict[str, str]:
    """Alert rules Prometheus has loaded, by name, with their health."""
    data = prometheus_get(api, "rules?type=alert")
    if not data:
        return {}
    return {rule["name"]: rule["health"] for group in data["groups"] for rule in group["rules"]}


# -- 4. stop, start again, a store outage, down/up, down -v -----------------------------------


def test_stop_exits_0_within_the_grace_period_and_up_again_runs_nothing_twice(deployment, store):
    before = len(launches(deployment.daemon_events()))
    started = time.monotonic()
    deployment.compose("stop", "daemon", timeout=180)
    stopped_in = time.monotonic() - started
    state = deployment.container("daemon")["State"]
    assert state["ExitCode"] == 0 and stopped_in < 60, (state, stopped_in)
    assert "daemon.stopped" in [e["event"] for e in events_of_last_start(deployment)]
    deployment.facts["stop_seconds"] = round(stopped_in, 1)

    deployment.compose("up", "-d", "daemon")
    deployment.wait_healthy("daemon")
    wait_for_ticks(deployment, 5)
    assert len(launches(deployment.daemon_events())) == before
    assert chain_counts(store) == deployment.facts["counts"]


def events_of_last_start(deployment: Deployment) -> list[dict[str, Any]]:
    events = deployment.daemon_events()
    starts = [i for i, e in enumerate(events) if e["event"] == "daemon.configured"]
    return events[starts[-1] :] if starts else []


def wait_for_ticks(deployment: Deployment, count: int) -> None:
    """`count` more polls of the store by the running daemon (its /metrics count them; the
    `tick.completed` log lines are DEBUG, below the compose file's INFO)."""
    url = f"http://127.0.0.1:{deployment.daemon_port}/metrics"

    def polls() -> float:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("autopilot_poll_duration_seconds_count "):
                return float(line.split()[1])
        return 0.0

    target = polls() + count
    wait_for(lambda: polls() >= target, timeout=180, interval=2, what=f"{count} polls")


def test_a_restart_of_the_zenml_server_is_ridden_out(deployment, store):
    daemon_started = deployment.container("daemon")["State"]["StartedAt"]
    deployment.compose("restart", "zenml", timeout=180)
    deployment.wait_healthy("zenml")
    # The daemon reconnects on its own: ready again, never restarted by Docker.
    wait_for(
        lambda: http_status(f"http://127.0.0.1:{deployment.daemon_port}/readyz") == 200,
        timeout=180,
        interval=2,
        what="the daemon ready again",
    )
    assert deployment.container("daemon")["State"]["StartedAt"] == daemon_started
    # A dataset published after the outage goes through, once.
    known = set(iris_datasets(store)[0])
    deployment.compose("--profile", "demo", "start", "producer")
    wait_for(
        lambda: set(iris_datasets(store)[0]) - known,
        timeout=CHAIN_TIMEOUT,
        interval=5,
        what="a dataset after the outage",
    )
    deployment.compose("--profile", "demo", "stop", "producer")
    counts = wait_for(
        lambda: chain_done(store), timeout=CHAIN_TIMEOUT, interval=5, what="the chain again"
    )
    assert len(counts) > len(deployment.facts["counts"])
    deployment.facts["counts"] = counts


def test_names_spelt_in_another_case_match_on_the_compose_mysql(deployment):
    """The compose store is MySQL (MariaDB here), which compares names ignoring case: watched as
    `IRIS_Training_Dataset` and `IRIS_Classifier`, the demo's artifact and model are named with
    the store's spelling by check-config, and a dry run judges their versions under the names it
    watches (they once raised KeyError in every tick: `tick.failed`, exit 1)."""
    names = (
        "AUTOPILOT_AUTOMATIONS__CASE__DATASET_NAMES=IRIS_Training_Dataset "
        "AUTOPILOT_AUTOMATIONS__CASE__MODEL_NAME=IRIS_Classifier"
    )
    checked = deployment.compose(
        "exec", "-T", "daemon", "sh", "-c", f"{names} autopilot check-config", timeout=300
    )
    assert "the store's artifact is spelt 'iris_training_dataset'" in checked.stderr
    assert "the store's model is spelt 'iris_classifier'" in checked.stderr
    dry = deployment.compose(
        "exec", "-T", "daemon", "sh", "-c",
        f"{names} AUTOPILOT_START_FROM=beginning autopilot run --once --dry-run",
        check=False, timeout=600,
    )  # fmt: skip
    events = [json.loads(line) for line in dry.stdout.splitlines() if line.startswith("{")]
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert not [e for e in events if e["event"] == "tick.failed"]
    selected = [e for e in events if e["event"] == "dataset.selected"]
    assert selected and {e["artifact"] for e in selected} == {"IRIS_Training_Dataset"}
    decided = [e for e in events if e["event"] == "model.decision_found_in_store"]
    assert decided and {e["automation"] for e in decided} == {"case"}


# -- 5. secrets -------------------------------------------------------------------------------


def test_no_secret_in_any_log_the_key_file_or_the_image(deployment):
    key = deployment.exec_daemon(f"cat {KEY_FILE}").strip()
    assert key.startswith("ZENKEY_")
    assert deployment.exec_daemon(f"stat -c '%a %u %g' {KEY_FILE}").split() == [
        "600",
        "10001",
        "10001",
    ]
    secrets = {"the API key": key} | {name: deployment.env_value(name) for name in PASSWORDS}
    logs = deployment.logs() + deployment.exec_daemon("cat /var/lib/autopilot/runs/*.log")
    assert len(logs.splitlines()) > 100
    image = deployment.podman("history", "--no-trunc", IMAGE) + deployment.podman(
        "image", "inspect", IMAGE
    )
    for what, secret in secrets.items():
        assert secret not in logs, f"{what} is in a container's log"
        assert secret not in image, f"{what} is in the image"
    listing = deployment.compose(
        "run", "--rm", "--no-deps", "-T", "bootstrap",
        "sh", "-c", "ls -A /app /home/autopilot; ls -A /run/autopilot-secrets | wc -l",
    ).stdout  # fmt: skip
    assert ".env" not in listing.split()
    assert listing.split()[-1] == "1", "the secrets volume holds the key and nothing else"


def test_no_credential_on_disk_in_any_container(deployment, tmp_path):
    """ZenML caches the credentials it is given in clear (~/.config/zenml/credentials.yaml)
    unless told not to: nothing bootstrap (the admin's password), the daemon, its runs or the
    producer (the API key) wrote holds one, in their homes, /app (its .zen) or /tmp."""
    key = deployment.exec_daemon(f"cat {KEY_FILE}").strip()
    secrets = {"the API key": key} | {name: deployment.env_value(name) for name in PASSWORDS}
    for service in ("bootstrap", "daemon", "producer"):
        for path in ("/home/autopilot", "/app", "/tmp"):  # into <service>/autopilot, /app, /tmp
            deployment.copy_out(service, path, tmp_path / service)
    assert (tmp_path / "daemon" / "autopilot" / ".config" / "zenml").is_dir()  # ZenML's config
    assert files_holding(tmp_path, secrets) == []


# -- 6. a user's own pipelines in the container ----------------------------------------------------


def test_a_users_project_mounted_as_source_root_runs_its_automation(deployment, store):
    """The README's way: the project mounted read-only, AUTOPILOT_SOURCE_ROOT and the named
    automation in the daemon's env file; its datasets published from a container too."""
    mount = "/srv/diabetes"
    (deployment.root / "docker-compose.override.yml").write_text(
        f"services:\n  daemon:\n    volumes: ['./examples/diabetes:{mount}:ro']\n"
    )
    variables = {"AUTOPILOT_SOURCE_ROOT": mount, **diabetes_automation(SOURCE_ROOT=mount)}
    deployment.write_daemon_env("diabetes.env", variables)
    deployment.compose("up", "-d", "daemon")  # recreated: new volumes and variables
    deployment.wait_healthy("daemon")
    configured = [e for e in events_of_last_start(deployment) if e["event"] == "daemon.configured"]
    assert list(configured[0]["automations"]) == ["diabetes"], configured
    wait_for_ticks(deployment, 2)

    script = Path(__file__).with_name("publish_example.py")
    published = deployment.compose(
        "--profile", "demo", "run", "--rm", "--no-deps", "-T",
        "-v", f"{deployment.root / 'examples' / 'diabetes'}:{mount}:ro",
        "-v", f"{script}:/srv/publish_example.py:ro",
        "producer", "sh", "-c",
        f'ZENML_STORE_API_KEY="$(cat {KEY_FILE})" exec python /srv/publish_example.py {mount}',
        timeout=600,
    ).stdout  # fmt: skip
    ids = json.loads(published.strip().splitlines()[-1])
    train_key = f"train:diabetes:{ids['train_id']}"

    def served() -> str | None:
        promoted = store.list_model_versions(model="diabetes_regressor", stage="production").items
        if promoted and completed_runs(store, f"infer:{promoted[0].id}") == 1:
            return str(promoted[0].id)
        return None

    version_id = wait_for(served, timeout=CHAIN_TIMEOUT, interval=5, what="diabetes served")
    assert completed_runs(store, train_key) == 1
    version = store.get_model_version("diabetes_regressor", UUID(version_id))
    assert version.run_metadata["autopilot_decision"]["outcome"] == "promoted"
    assert "diabetes_predictions" in version.data_artifact_ids
    # Nothing of the iris history ran again under the new configuration.
    assert chain_counts(store) == deployment.facts["counts"]


def test_down_then_up_keeps_the_ledger_and_the_key(deployment, store):
    key_hash = deployment.exec_daemon(f"sha256sum {KEY_FILE}").split()[0]
    before = {
        "counts": chain_counts(store),
        "diabetes": len(store.list_model_versions(model="diabetes_regressor").items),
    }
    deployment.compose(*PROFILES, "down", timeout=300)
    assert project_containers(deployment) == []
    deployment.compose("up", "-d", "daemon")
    deployment.wait_healthy("zenml", "daemon")
    assert '"outcome": "kept_existing_key"' in deployment.logs("bootstrap")
    assert deployment.exec_daemon(f"sha256sum {KEY_FILE}").split()[0] == key_hash
    wait_for_ticks(deployment, 5)
    # A new container, the old ledger: it launches nothing and decides nothing again; the
    # server came back on the same database (same admin, same runs).
    assert launches(deployment.daemon_events()) == []
    after = {
        "counts": chain_counts(store),
        "diabetes": len(store.list_model_versions(model="diabetes_regressor").items),
    }
    assert after == before


def test_down_v_leaves_nothing_behind(deployment):
    deployment.compose(*PROFILES, "down", "-v", timeout=300)
    label = f"label=com.docker.compose.project={project(deployment)}"
    assert project_containers(deployment) == []
    assert deployment.podman("volume", "ls", "-q", "--filter", label).split() == []
    # Anonymous volumes too (they carry no compose label): none made by this test remains.
    volumes = set(deployment.podman("volume", "ls", "-q").split())
    assert volumes <= deployment.facts["volumes_before"], volumes
    networks = deployment.podman("network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.startswith(project(deployment))]
    timings = {k: v for k, v in deployment.facts.items() if k.endswith("_seconds")}
    print(f"\ncompose timings (s): {timings}; final counts: {len(deployment.facts['counts'])}")
