# ZenML Autopilot. Two commands do all the set-up on a fresh machine:
#   make run    the daemon + a demo producer on an embedded ZenML store inside this folder
#   make test   the whole test suite (what .ci/run runs, then make test-compose)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The demo's embedded store and ledger live in this folder, never in the user's ZenML config.
DEMO_ENV := ZENML_CONFIG_PATH=$(CURDIR)/.zenml-home \
	AUTOPILOT_STATE_DIR=$(CURDIR)/.autopilot \
	AUTOPILOT_START_FROM=$${AUTOPILOT_START_FROM:-beginning} \
	AUTOPILOT_POLL_INTERVAL_SECONDS=$${AUTOPILOT_POLL_INTERVAL_SECONDS:-2} \
	AUTOPILOT_SCORING_DATASET_NAMES=$${AUTOPILOT_SCORING_DATASET_NAMES-iris_scoring_dataset} \
	ZENML_ANALYTICS_OPT_IN=false ZENML_LOGGING_VERBOSITY=WARN ZENML_ENABLE_RICH_TRACEBACK=false

.PHONY: install run test test-fast test-e2e soak lint clean compose-tools mariadb monitoring-tools \
	browser-tools env container-engine standins test-compose

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Daemon in the foreground, producer beside it; Ctrl-C reaches both (same process group).
# The daemon makes its state dir (.autopilot) itself, private: made here it would be 0755.
run: $(STAMP)
	@mkdir -p .zenml-home
	@$(DEMO_ENV) $(PY) -m pipelines.producer --interval 20 --start-delay 5 & \
	producer=$$!; \
	trap 'kill -INT $$producer 2>/dev/null; wait $$producer' EXIT; \
	$(DEMO_ENV) $(VENV)/bin/autopilot run

lint: $(STAMP)
	$(VENV)/bin/ruff check service pipelines tests bench examples
	$(VENV)/bin/ruff format --check service pipelines tests bench examples
	$(VENV)/bin/mypy service pipelines
	cd examples/diabetes && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml .

# The 15 slowest tests are listed at the end: the suite's time is a budget (docs/testing.md).
# Two test processes (pytest-xdist), a test file each at a time: the e2e tests mostly wait on
# their daemons, so two share this 2-core machine well (15 min serial, under 9 in two).
test: $(STAMP) lint compose-tools mariadb monitoring-tools browser-tools
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

test-fast: $(STAMP) monitoring-tools browser-tools
	$(PY) -m pytest -q -m "not e2e and not soak and not compose"

test-e2e: $(STAMP) monitoring-tools browser-tools
	$(PY) -m pytest -q -m e2e

# 30+ datasets while the daemon is SIGKILLed at random 10+ times; SOAK_SEED replays a run.
soak: $(STAMP)
	$(PY) -m pytest -q -s -m soak

# Debian's docker-compose (v1) parses and validates docker-compose.yml without a Docker engine.
compose-tools:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq docker-compose; }

# Debian's MariaDB server and client binaries, no service (10.11, as the Compose stand-in for
# MySQL): tests/integration/test_store_dialects.py runs a throw-away server of its own on them.
mariadb:
	@command -v mariadb-install-db >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq --no-install-recommends mariadb-server-core mariadb-client-core; }

# Debian's prometheus package brings promtool: the alert rules' checks and unit tests
# (monitoring/; tests/unit/test_monitoring.py). Its Prometheus server is not started.
monitoring-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }

# Debian's Chromium, headless: the status page in a real browser (tests/browser.py).
browser-tools:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# A .env for docker compose with random passwords (Compose refuses to start without them).
env:
	scripts/new-env.sh

# podman's Docker API on a unix socket (installed and started if needed); prints the DOCKER_HOST
# to export for docker-compose. It keeps running afterwards, as does its healthcheck runner.
container-engine:
	@scripts/container-engine.sh

# Stand-ins for python:3.11-slim, mysql:8.0, zenmldocker/zenml-server and prom/prometheus, built
# once and cached.
standins:
	@eval "$$(scripts/container-engine.sh)" && tests/compose/standins/build.sh

# docker-compose.yml for real: build, up, the demo chain counted in the store, stop/restart,
# an outage, down/up, secrets, a user's project (tests/compose/). Not part of `make test`.
# -x: the tests are steps on one deployment; after a failed step the rest cannot pass.
test-compose: $(STAMP) standins
	eval "$$(scripts/container-engine.sh)" && $(PY) -m pytest -q -s -x -m compose

clean:
	rm -rf .zenml-home .autopilot .pytest_cache .mypy_cache .ruff_cache
