"""The metric names the shipped monitoring (monitoring/: the Grafana dashboard and the alert
rules) uses, and the names a `/metrics` scrape holds, to compare them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
DASHBOARD = MONITORING / "grafana" / "autopilot.json"
_NAME = re.compile(r"\bautopilot_[a-z_]+\b")
# Grafana's variables, replaced by what a query with every value selected means.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$job": "autopilot",
    "$instance": ".*",
    "$automation": ".*",
}


def dashboard_queries(path: Path = DASHBOARD) -> list[str]:
    """Every panel query of the dashboard, with Grafana's variables filled in."""
    dashboard = json.loads(path.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            queries.append(query)
    return queries


def names_used() -> set[str]:
    """Every `autopilot_*` metric the dashboard and the alert rules read."""
    texts = [ALERTS.read_text(), *dashboard_queries()]
    dashboard = json.loads(DASHBOARD.read_text())
    texts += [v.get("definition", "") for v in dashboard["templating"]["list"]]
    return {name for text in texts for name in _NAME.findall(text)}


def names_scraped(exposition: str) -> set[str]:
    """Every sample name in a Prometheus text exposition (`_bucket`, `_total`, ... included)."""
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
