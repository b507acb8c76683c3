"""Static checks of the Docker deployment: docker-compose.yml, .env.example, Dockerfile, lock file.

No Docker engine is needed: the compose file is validated with `docker-compose config` (Debian's
v1 `docker-compose` package, which parses and interpolates without a daemon) and the rest is read
as text/YAML. `make compose-tools` installs the binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from service.settings import (
    EXTRA_KNOWN_VARIABLES,
    SINGLE_FORM_FIELDS,
    Settings,
    env_name,
    known_variables,
    load_settings,
)
from tests.support import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DAEMON_ENV = PROJECT_ROOT / "daemon.env"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
LOCK_FILE = PROJECT_ROOT / "requirements.lock"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"

SERVICES = {"mysql", "zenml", "bootstrap", "daemon", "producer", "prometheus"}
KEY_FILE = "/run/autopilot-secrets/api_key"
DEV_ONLY = {"pytest", "pytest-timeout", "ruff", "mypy", "mypy-extensions", "pathspec", "iniconfig"}
# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?err}` ... and `$NAME`, not `$$`.
INTERPOLATION = re.compile(
    r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))"
)
AUTOPILOT_NAME = re.compile(r"\bAUTOPILOT_[A-Z0-9_]+")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY$", re.IGNORECASE)
# A secret is required, never defaulted: `${NAME:?message}`, the message naming the way out.
REQUIRED = re.compile(r"^\$\{([A-Z0-9_]+):\?([^}]*)\}$")
PASSWORDS = ("MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "ZENML_ADMIN_PASSWORD")
TEST_PASSWORDS = "".join(f"{name}=test-{name.lower()}\n" for name in PASSWORDS)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
# docker-compose.yml's own wiring of the daemon: its `environment:` (which wins over `env_file:`)
# sets these and nothing else, so the daemon's env file sets every other setting.
FIXED_BY_COMPOSE = {
    "ZENML_STORE_URL": "http://zenml:8080",
    "AUTOPILOT_ZENML_API_KEY_FILE": KEY_FILE,
    "AUTOPILOT_STATE_DIR": "/var/lib/autopilot",
    "AUTOPILOT_HTTP_HOST": "0.0.0.0",
    "AUTOPILOT_HTTP_PORT": "8765",
}
# daemon.env's lines: `# NAME=default` (a setting shown with its default), `#   NAME=value` (the
# named automations' example).
SHOWN_DEFAULT = re.compile(r"^# (AUTOPILOT_[A-Z0-9_]+)=(.*)$", re.MULTILINE)
NAMED_EXAMPLE = re.compile(r"^#   (AUTOPILOT_[A-Z0-9_]+)=(.*)$", re.MULTILINE)


# -- helpers ------------------------------------------------------------------------------------


def compose_config_result(env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of the project's compose file, interpolated from `env_file` only."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose (Debian's v1 package) is not installed, so docker-compose.yml cannot "
            "be validated: run `make compose-tools` (apt-get install -y docker-compose)"
        )
    # Only env_file may feed the interpolation: drop whatever the developer's shell exports.
    read = compose_variables() | {"COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES"}
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k not in read},
        capture_output=True,
        text=True,
        timeout=120,
    )


def docker_compose_config(env_file: Path) -> dict[str, Any]:
    result = compose_config_result(env_file)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as `docker-compose config` resolves it with only the three required
    passwords set (every other value: its default)."""
    passwords = tmp_path_factory.mktemp("compose") / "passwords.env"
    passwords.write_text(TEST_PASSWORDS)
    return docker_compose_config(passwords)


def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml interpolates (comment lines are not interpolated)."""
    lines = COMPOSE_FILE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return {a or b for a, b in INTERPOLATION.findall(text)}


def env_example() -> dict[str, str]:
    values = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example line {number} is not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def zenml_pin_in_pyproject() -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for line in dependencies:
        requirement = Requirement(line)
        if requirement.name == "zenml":
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"zenml must be pinned exactly in pyproject: {line}"
            return spec.version
    raise AssertionError("zenml is not a dependency in pyproject.toml")


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock line is not pinned with ==: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


# -- (a) the compose file parses and wires the services as documented ---------------------------


def test_compose_config_parses_with_all_services(config):
    assert set(config["services"]) >= SERVICES


def test_services_start_in_order(config):
    services = config["services"]

    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("zenml") == {"mysql": "service_healthy"}
    assert conditions("bootstrap") == {"zenml": "service_healthy"}
    after_bootstrap = {"zenml": "service_healthy", "bootstrap": "service_completed_successfully"}
    assert conditions("daemon") == after_bootstrap
    assert conditions("producer") == after_bootstrap


def test_daemon_restarts_and_has_a_healthcheck_on_healthz(config):
    daemon = config["services"]["daemon"]
    assert daemon["restart"] == "unless-stopped"
    test = daemon["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "/healthz" in " ".join(test)
    assert daemon["ports"] == ["127.0.0.1:8765:8765/tcp"], "the health port stays on loopback"


def test_mysql_and_zenml_have_healthchecks(config):
    services = config["services"]
    assert "mysqladmin" in services["mysql"]["healthcheck"]["test"]
    assert "http://localhost:8080/health" in " ".join(services["zenml"]["healthcheck"]["test"])


def test_bootstrap_writes_the_key_the_daemon_reads(config):
    services = config["services"]
    bootstrap, daemon, producer = services["bootstrap"], services["daemon"], services["producer"]
    assert bootstrap["command"] == ["autopilot", "bootstrap", "--key-file", KEY_FILE]
    assert bootstrap["restart"] == "no"
    assert environment(daemon)["AUTOPILOT_ZENML_API_KEY_FILE"] == KEY_FILE
    assert "autopilot-secrets:/run/autopilot-secrets:rw" in bootstrap["volumes"]
    assert "autopilot-secrets:/run/autopilot-secrets:ro" in daemon["volumes"]
    assert "autopilot-secrets:/run/autopilot-secrets:ro" in producer["volumes"]
    # The admin's password goes to bootstrap only; daemon and producer use the API key.
    assert "ZENML_STORE_PASSWORD" in environment(bootstrap)
    for name in ("daemon", "producer"):
        assert not {"ZENML_STORE_PASSWORD", "ZENML_STORE_USERNAME"} & set(
            environment(services[name])
        )
    assert KEY_FILE in " ".join(producer["command"])


def test_one_image_for_bootstrap_daemon_and_producer(config):
    services = config["services"]
    images = {services[name]["image"] for name in ("bootstrap", "daemon", "producer")}
    assert len(images) == 1
    assert Path(services["bootstrap"]["build"]["context"]) == PROJECT_ROOT
    assert services["producer"]["profiles"] == ["demo"]


def test_daemon_keeps_its_ledger_on_a_volume_and_listens_on_all_interfaces(config):
    daemon = config["services"]["daemon"]
    env = environment(daemon)
    assert env["AUTOPILOT_STATE_DIR"] == "/var/lib/autopilot"
    assert "autopilot-state:/var/lib/autopilot:rw" in daemon["volumes"]
    assert env["AUTOPILOT_HTTP_HOST"] == "0.0.0.0"
    assert env["ZENML_STORE_URL"] == "http://zenml:8080"
    assert set(config["volumes"]) >= {"mysql-data", "autopilot-secrets", "autopilot-state"}


def test_the_monitoring_profile_runs_prometheus_on_the_shipped_rules(config):
    """`--profile monitoring`: Prometheus on loopback, scraping the daemon with the rules of
    monitoring/prometheus/ (checked by promtool in tests/unit/test_monitoring.py)."""
    prometheus = config["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["ports"] == ["127.0.0.1:9090:9090/tcp"]
    rules = PROJECT_ROOT / "monitoring" / "prometheus"
    assert f"{rules}:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scraped = yaml.safe_load((rules / "prometheus.yml").read_text())
    (job,) = scraped["scrape_configs"]
    daemon_port = config["services"]["daemon"]["ports"][0].split(":")[-1].split("/")[0]
    assert job["job_name"] == "autopilot"
    assert job["static_configs"] == [{"targets": [f"daemon:{daemon_port}"]}]
    assert scraped["rule_files"] == ["alerts.yml"]
    assert "prometheus" not in config["services"]["daemon"].get("depends_on", {})


def test_env_example_gives_the_same_config_as_the_defaults(config, tmp_path):
    example = tmp_path / "example.env"
    example.write_text(ENV_EXAMPLE.read_text() + TEST_PASSWORDS)
    assert docker_compose_config(example) == config


def test_without_the_passwords_compose_refuses_and_says_what_to_do(tmp_path):
    """No known default password: an empty .env, or .env.example copied as is, is refused
    with a message naming every password and the script that generates them."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    for env_file in (empty, ENV_EXAMPLE):
        result = compose_config_result(env_file)
        assert result.returncode != 0
        for name in PASSWORDS:
            assert name in result.stderr
        assert "scripts/new-env.sh" in result.stderr


def test_new_env_script_writes_a_private_env_that_compose_accepts(tmp_path):
    target = tmp_path / "generated.env"
    subprocess.run([str(PROJECT_ROOT / "scripts" / "new-env.sh"), str(target)], check=True)
    assert target.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in target.read_text().splitlines() if "=" in line)
    passwords = [values[name] for name in PASSWORDS]
    assert len(set(passwords)) == 3 and all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in passwords)
    mysql = docker_compose_config(target)["services"]["mysql"]
    assert mysql["environment"]["MYSQL_PASSWORD"] == values["MYSQL_PASSWORD"]
    # Never overwritten: the servers keep the passwords they were first started with.
    again = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "new-env.sh"), str(target)], capture_output=True
    )
    assert again.returncode != 0
    assert (
        dict(line.split("=", 1) for line in target.read_text().splitlines() if "=" in line)
        == values
    )


# -- (b) variables ------------------------------------------------------------------------------


def test_every_autopilot_variable_is_one_the_daemon_knows():
    known = known_variables()
    for path in (COMPOSE_FILE, ENV_EXAMPLE, DAEMON_ENV):
        names = set(AUTOPILOT_NAME.findall(path.read_text()))
        named_automations = {n for n in names if n.startswith("AUTOPILOT_AUTOMATIONS__")}
        unknown = sorted(names - named_automations - known)
        assert not unknown, f"{path.name} uses AUTOPILOT_* variables the daemon does not know"


def test_every_daemon_setting_can_be_set_from_env():
    daemon = environment(raw_compose()["services"]["daemon"])
    daemon_env = DAEMON_ENV.read_text()
    fields = set(Settings.model_fields) - {"automations"}
    missing = sorted(
        name
        for name in {env_name(field) for field in fields}
        | {env_name(f) for f in SINGLE_FORM_FIELDS}
        if name not in daemon and name not in daemon_env
    )
    assert not missing, f"neither docker-compose.yml's daemon nor daemon.env has {missing}"


def test_the_daemon_env_file_example_is_a_valid_configuration(tmp_path):
    """Uncommented, daemon.env's example of named automations loads: its variables are the
    daemon's own."""
    example = dict(NAMED_EXAMPLE.findall(DAEMON_ENV.read_text()))
    example["AUTOPILOT_SOURCE_ROOT"] = str(tmp_path)  # the user's project, mounted
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "training.yaml").write_text("model: {name: churn_model}\n")
    names = [a.name for a in load_settings(example).automations]
    assert names == ["churn", "iris"]


def test_the_daemon_env_file_shows_every_setting_it_may_set_with_its_default():
    shown = dict(SHOWN_DEFAULT.findall(DAEMON_ENV.read_text()))
    settable = known_variables() - EXTRA_KNOWN_VARIABLES - set(FIXED_BY_COMPOSE)
    # A secret is never written in the file: it lists the variable naming the secret's file.
    settable -= {"AUTOPILOT_NOTIFY_WEBHOOK_SECRET"}
    assert set(shown) | {"AUTOPILOT_SOURCE_ROOT"} == settable  # the root is in the example
    assert shown.pop("AUTOPILOT_LOG_FORMAT") == "json"  # the image's default (Dockerfile ENV)
    assert "AUTOPILOT_LOG_FORMAT=json" in " ".join(
        arguments for keyword, arguments in dockerfile_instructions() if keyword == "ENV"
    )
    assert load_settings(shown) == load_settings({})  # every other one: the daemon's own


def test_every_daemon_setting_comes_from_the_daemon_env_file_and_none_from_dotenv(tmp_path):
    """One place for the daemon's settings. Compose's `environment:` wins over `env_file:`, so
    a setting the compose file passed through from .env (`${AUTOPILOT_STACK:-}`) silently beat
    the daemon's env file; now whatever that file sets reaches the daemon, but the compose
    file's own wiring, and an AUTOPILOT_* in .env reaches it not at all."""
    names = sorted(
        known_variables() | set(FIXED_BY_COMPOSE) | {"AUTOPILOT_AUTOMATIONS__CHURN__MODEL_NAME"}
    )
    daemon_env = tmp_path / "my-daemon.env"
    daemon_env.write_text("".join(f"{name}=from-daemon-env\n" for name in names))
    dotenv = tmp_path / "dotenv"
    dotenv.write_text(
        ENV_EXAMPLE.read_text()
        + TEST_PASSWORDS
        + f"DAEMON_ENV_FILE={daemon_env}\n"
        + "".join(f"{name}=from-dotenv\n" for name in names if name.startswith("AUTOPILOT_"))
    )
    daemon = environment(docker_compose_config(dotenv)["services"]["daemon"])
    seen = {name: daemon.get(name) for name in names}
    assert seen == {name: FIXED_BY_COMPOSE.get(name, "from-daemon-env") for name in names}
    assert environment(raw_compose()["services"]["daemon"]).keys() == FIXED_BY_COMPOSE.keys()
    assert raw_compose()["services"]["daemon"]["env_file"] == ["${DAEMON_ENV_FILE:-./daemon.env}"]


def test_env_example_lists_exactly_the_variables_compose_reads():
    documented = set(env_example()) - {"COMPOSE_PROJECT_NAME"}
    read = compose_variables()
    missing, unused = sorted(read - documented), sorted(documented - read)
    assert not missing, f"read by docker-compose.yml, missing in .env.example: {missing}"
    assert not unused, f"in .env.example, never read by docker-compose.yml: {unused}"


# -- (c) one ZenML version everywhere -----------------------------------------------------------


def test_zenml_server_image_matches_the_pinned_client():
    pinned = zenml_pin_in_pyproject()
    image = raw_compose()["services"]["zenml"]["image"]
    assert image == f"zenmldocker/zenml-server:{pinned}"
    assert lock_pins()["zenml"] == pinned


def test_lock_pins_every_runtime_dependency_and_no_dev_tool():
    pins = lock_pins()
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for line in dependencies:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is missing from requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pins[name]}, pyproject wants {line}"
        )
    assert not DEV_ONLY & set(pins), "dev-only tools in requirements.lock"
    assert "setuptools" in pins, "zenml imports setuptools at run time"


# -- (d) no real secret in the compose file -----------------------------------------------------


def test_no_password_in_compose_and_none_defaulted():
    secrets = 0
    for name, service in raw_compose()["services"].items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                secrets += 1
                required = REQUIRED.match(value)
                assert required, f"{name}.{key} must be ${{VARIABLE:?message}}: {value!r}"
                assert required.group(1) in PASSWORDS
                assert "scripts/new-env.sh" in required.group(2)
    assert secrets == 5
    text = COMPOSE_FILE.read_text()
    assert not URL_WITH_PASSWORD.search(text), "a URL with an embedded password"


def test_env_example_has_no_password():
    secrets = {key: value for key, value in env_example().items() if SECRET_KEY.search(key)}
    assert secrets == dict.fromkeys(PASSWORDS, ""), "scripts/new-env.sh fills them in"


# -- (e) Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_runs_as_non_root_with_healthcheck_and_zenml_init():
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("root", "0"), "the last USER is root"
    assert keywords.index("USER") < keywords.index("CMD")
    healthchecks = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "zenml init" in runs
    assert "-r requirements.lock" in runs and "--no-deps" in runs


def test_dockerfile_base_command_and_layout():
    instructions = dict(reversed(dockerfile_instructions()))  # first occurrence wins
    assert instructions["FROM"] == "python:3.11-slim"
    assert instructions["WORKDIR"] == "/app"
    assert instructions["CMD"] == '["autopilot", "run"]'
    assert "8765" in instructions["EXPOSE"]
    text = DOCKERFILE.read_text()
    for directory in ("/var/lib/autopilot", "/run/autopilot-secrets"):
        assert directory in text, f"the image does not prepare {directory} for its volume"


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (".venv/", ".git/", ".zen/", ".zenml-home/", ".autopilot/", ".env"):
        assert entry in ignored
