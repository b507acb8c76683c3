"""The shipped monitoring (monitoring/): the alert rules pass `promtool check` and each alert's
unit test (`promtool test rules`), the Prometheus configuration loads them, and every query of
the Grafana dashboard is valid PromQL over metrics the daemon defines. That a real daemon's
scrape holds every one of those names is checked in the e2e chain (tests/e2e/scenario.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from service import metrics
from service.observe.gauges import LedgerGauges
from tests.monitoring_names import ALERTS, DASHBOARD, MONITORING, dashboard_queries, names_used

RULES = MONITORING / "prometheus"
ALERT_TESTS = [RULES / "alerts_test.yml", RULES / "alerts_test_days.yml"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make monitoring-tools` installs Debian's prometheus")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, cwd=RULES
    )


def test_the_alert_rules_are_valid_and_every_alert_passes_its_unit_tests():
    checked = promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", *(path.name for path in ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    tested_alerts = {
        case["alertname"]
        for path in ALERT_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")  # shown firing, not only quiet
    }
    assert alerts == tested_alerts
    assert {"AutopilotDown", "AutopilotNotTicking", "AutopilotStoreUnreachable"} <= alerts


def test_the_prometheus_configuration_loads_the_rules():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_every_dashboard_query_is_valid_promql(tmp_path: Path):
    """Each query, its variables filled in, compiled by promtool as a recording rule."""
    queries = dashboard_queries()
    assert len(queries) >= 12
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": query}
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_a_grafana_dashboard_over_a_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job", "instance", "automation"}
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Decisions per outcome",
        "Runs per kind and result",
        "Run durations",
        "Queue depth",
        "Detection lag",
        "Tick duration",
        "Store errors",
    ):
        assert wanted in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_the_dashboard_and_the_rules_read_only_metrics_the_daemon_defines():
    families = [*metrics.REGISTRY.collect(), *LedgerGauges(_no_ledger, []).describe()]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    defined = {family.name + suffix for family in families for suffix in suffixes[family.type]}
    assert names_used() - defined == set()


@contextmanager
def _no_ledger() -> Iterator[None]:
    yield None
