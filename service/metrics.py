"""Prometheus metrics, served at `/metrics` on the health server."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

POLL_DURATION = Histogram(
    "autopilot_poll_duration_seconds",
    "Wall time of one tick's store work (observe, decide, record, dispatch).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LAG = Gauge(
    "autopilot_lag_seconds",
    "Seconds between a watched version's creation in the store and the daemon judging it, "
    "for the last version judged on each stream (`<automation>/dataset:<name>`).",
    ["stream"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "autopilot_actions_total",
    "Actions by kind (train, promote, infer) and outcome (succeeded, attempt_failed, failed, "
    "promoted, rejected, already_production, launched), per automation.",
    ["automation", "kind", "outcome"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "autopilot_run_duration_seconds",
    "Duration of the pipeline runs the daemon launched, from the store, by automation, kind "
    "and outcome.",
    ["automation", "kind", "outcome"],
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
TEMPLATE_READY = Gauge(
    "autopilot_worker_template_ready",
    "1 once the worker template has warmed up (imports, store connection), as of the last "
    "tick: every run is then a fork of it and starts at once; 0 while it warms (after start, "
    "or after it died and was replaced), when a run waits seconds for it.",
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "autopilot_store_errors_total",
    "Ticks or start-up attempts that failed because the store did not answer, or failed.",
    registry=REGISTRY,
)

NOTIFICATIONS = Counter(
    "autopilot_notifications_total",
    "Notification deliveries by destination (`webhook:<host>:<hash>`, `alerter`) and outcome: "
    "delivered, attempt_failed (retried), failed (not retried: a 4xx), dropped (too old).",
    ["destination", "outcome"],
    registry=REGISTRY,
)
NOTIFICATION_OUTBOX = Gauge(
    "autopilot_notification_outbox_depth",
    "Notifications recorded and not yet delivered (nor failed or dropped), per destination.",
    ["destination"],
    registry=REGISTRY,
)

LAST_TICK = Gauge(
    "autopilot_last_tick_timestamp_seconds",
    "Unix time the loop last began a tick, or (at start-up, or while the store is away) an "
    "attempt to reach the store: it stops moving only when the loop is stuck.",
    registry=REGISTRY,
)
STORE_UP = Gauge(
    "autopilot_store_up",
    "1 when the last poll (or start-up attempt) reached the store, else 0.",
    registry=REGISTRY,
)

# Every value of the labels the alert rules and the dashboard compare, so that a series exists
# (at 0) before its first event: Prometheus's increase() counts nothing for a series' first
# sample, and a rule cannot tell "never" from "not yet scraped".
ACTION_OUTCOMES = {
    "train": ("launched", "succeeded", "attempt_failed", "failed"),
    "infer": ("launched", "succeeded", "attempt_failed", "failed"),
    "deploy": ("launched", "succeeded", "attempt_failed", "failed"),
    "promote": ("promoted", "rejected", "already_production", "awaiting_approval"),
}


def initialise(automations: Iterable[str]) -> None:
    """Create every automation's action counters at 0."""
    for automation in automations:
        for kind, outcomes in ACTION_OUTCOMES.items():
            for outcome in outcomes:
                ACTIONS.labels(automation, kind, outcome)


def render() -> bytes:
    return generate_latest(REGISTRY)
