"""Stop the real ZenML server for 30+ seconds under the daemon while a training is in flight: it
logs the outage once, stays alive (and says so: /healthz, the liveness probe, stays green while
it waits), turns /readyz red then green, records the training in flight exactly once, and
catches up with nothing lost, doubled or left `running`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.browser import Dom, dump_dom
from tests.e2e.test_server_e2e import with_service_account_key
from tests.support import Receiver, http_get, slow_training, wait_for

pytestmark = pytest.mark.e2e
OUTAGE_SECONDS = 32
TRAINING_SECONDS = 10  # the training in flight is still in its step when the server stops


def _runs(key: str, status: str) -> list:
    from zenml.client import Client

    runs = Client().list_pipeline_runs(tags=f"equals:{key}").items
    return [r for r in runs if r.status.value == status]


def _running_actions(state_dir: Path) -> list[str]:
    with sqlite3.connect(state_dir / "ledger.sqlite") as ledger:
        rows = ledger.execute("SELECT key FROM actions WHERE state = 'running'").fetchall()
    return [key for (key,) in rows]


def the_status_page_shows_the_outage(port: str, trained_before: Any, in_flight: Any) -> None:
    """The page (in a real browser) and its JSON, built from the ledger while the store is
    away: the outage and its error on top, and below it the chains, newest claim first: the
    training in flight, then the one done before the outage."""
    chains = [str(in_flight.training_id), str(trained_before.training_id)]
    status, body = http_get(f"http://127.0.0.1:{port}/api/status")
    assert status == 200
    assert body["daemon"]["store_reachable"] is False and body["daemon"]["store_error"]
    assert [c["dataset"]["id"] for c in body["automations"][0]["chains"]] == chains
    dom = Dom(dump_dom(f"http://127.0.0.1:{port}/"))
    assert dom.one("header")["data-store-reachable"] == "false"
    assert "The store does not answer" in dom.one("div", id="store-outage").text
    assert [row["data-dataset-version-id"] for row in dom.all("tr", "chain")] == chains


def test_store_outage_is_ridden_out_with_nothing_lost_or_doubled(
    zenml_server, zenml_rest_store, daemon_factory, tmp_path
):
    receiver = Receiver().start()  # notifications: the outage, and a run's dashboard link
    environment = {
        **with_service_account_key(zenml_server, zenml_rest_store, tmp_path),
        "AUTOPILOT_PROMOTION_MUST_BEAT_PRODUCTION": "false",
        "AUTOPILOT_NOTIFY_WEBHOOK_URLS": receiver.url,
        "AUTOPILOT_NOTIFY_EVENTS": "default,training.succeeded",
        "AUTOPILOT_NOTIFY_OUTAGE_AFTER_SECONDS": "10",
        **slow_training(seconds=TRAINING_SECONDS),
    }
    daemon = daemon_factory(environment)("daemon.log")
    ready = f"http://127.0.0.1:{environment['AUTOPILOT_HTTP_PORT']}/readyz"
    alive = f"http://127.0.0.1:{environment['AUTOPILOT_HTTP_PORT']}/healthz"
    daemon.wait_event("daemon.started", timeout=90)
    before = launch_feature_engineering(training_tags=["approved"], random_state=51)
    daemon.wait_event("training.succeeded", key=f"train:{before.training_id}", timeout=240)
    in_flight = launch_feature_engineering(training_tags=["approved"], random_state=54)
    in_flight_key = f"train:{in_flight.training_id}"
    wait_for(lambda: _runs(in_flight_key, "running"), timeout=120, what="a training in flight")

    zenml_server.stop()
    outage_started = time.monotonic()
    # Probed once a second through the outage (ZenML's client retries for ~30 s before the
    # first tick fails), and for 10 probes at least once /readyz is red.
    probes: list[tuple[int, int]] = []  # (/healthz, /readyz)
    while time.monotonic() - outage_started < OUTAGE_SECONDS or (
        [ready_status for _, ready_status in probes].count(503) < 10
    ):
        assert time.monotonic() - outage_started < 180, f"/readyz never turned red: {probes}"
        probes.append((http_get(alive)[0], http_get(ready)[0]))
        time.sleep(1)
    daemon.wait_event("store.unavailable", timeout=5)
    the_status_page_shows_the_outage(
        environment["AUTOPILOT_HTTP_PORT"], trained_before=before, in_flight=in_flight
    )
    # Liveness is not the store: a probe must not restart a daemon that is correctly waiting.
    assert {alive_status for alive_status, _ in probes} == {200}, probes
    readiness = [ready_status for _, ready_status in probes]
    red_from = readiness.index(503)
    assert set(readiness[red_from:]) == {503}, probes  # and stays red until the store is back
    assert daemon.process.poll() is None  # alive through the outage
    zenml_server.start()

    # What producers buffered during the outage is written now.
    after = [
        launch_feature_engineering(training_tags=["approved"], random_state=seed)
        for seed in (52, 53)
    ]
    daemon.wait_event("store.available", timeout=180)
    wait_for(lambda: http_get(ready)[0] == 200, timeout=60, what="/readyz to turn green")
    assert http_get(alive)[0] == 200
    for key in (in_flight_key, *(f"train:{dataset.training_id}" for dataset in after)):
        daemon.wait_event("training.succeeded", key=key, timeout=240)
    assert _running_actions(Path(environment["AUTOPILOT_STATE_DIR"])) == []
    assert daemon.stop() == 0

    for dataset in (before, in_flight, *after):
        assert len(_runs(f"train:{dataset.training_id}", "completed")) == 1
    # The training in flight: its outcome recorded once, whatever the outage did to its run.
    assert len(daemon.find("training.succeeded", key=in_flight_key)) == 1
    outage_lines = [e for e in daemon.events() if e["event"] == "store.unavailable"]
    assert len([e for e in outage_lines if e["level"] == "error"]) == 1  # logged once

    # Told once that the store was away (recorded in the local ledger while it was), then
    # once that it is back; a run's notification links to it in the server's dashboard.
    receiver.stop()
    notified = receiver.events()
    outage = [n for n in notified if n["event"].startswith("store.")]
    assert [n["event"] for n in outage] == ["store.unreachable", "store.recovered"]
    assert outage[0]["values"]["since"] == outage[1]["values"]["since"]
    assert outage[1]["values"]["down_seconds"] >= OUTAGE_SECONDS
    trained = next(n for n in notified if n["event"] == "training.succeeded")
    run_id = trained["runs"]["training"]
    assert trained["links"] == {
        "training_run": f"{zenml_server.url}/projects/default/runs/{run_id}"
    }
