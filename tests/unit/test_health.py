"""Liveness is the loop, readiness is the store: `/healthz` stays green while the daemon waits
out a store outage (a probe must not restart it), and turns red only when the loop stops
ticking; `/readyz` is red while the store does not answer."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.daemon import Daemon
from service.http import HealthServer
from service.logs import configure
from tests.support import http_get


class _Executor:
    def template_ready(self) -> bool:
        return False


class _StoreDownEngine:
    """An engine whose every tick finds the store away, as ZenML's client reports it."""

    executor = _Executor()

    def tick(self, observe: bool = True) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def daemon():
    configure("json", "INFO")  # to this test's stdout: an earlier test's stream may be closed
    daemon = Daemon(poll_interval=0.05, grace_seconds=1)
    daemon.engine = _StoreDownEngine()  # type: ignore[assignment]
    server = HealthServer(daemon, "127.0.0.1", 0).start()
    host, port = server.address
    try:
        yield daemon, f"http://{host}:{port}"
    finally:
        server.stop()


def test_a_daemon_waiting_out_a_store_outage_is_alive_but_not_ready(daemon):
    daemon, url = daemon
    daemon.until_store_answers(lambda: None, "start-up")  # it answered once: store up
    daemon.safe_tick()  # the first also imports what tells a store outage from other errors
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # ticks keep coming; every one finds the store away
        daemon.safe_tick()
        time.sleep(0.02)
    assert daemon.consecutive_failures >= 3
    status, body = http_get(f"{url}/healthz")
    assert status == 200, body
    assert body["seconds_since_last_successful_poll"] > 20 * daemon.poll_interval
    status, body = http_get(f"{url}/readyz")
    assert status == 503 and "ConnectionRefusedError" in body["store_error"]
    # The same in /metrics, for the alert rules: the store down, the loop ticking.
    with urllib.request.urlopen(f"{url}/metrics") as response:
        exposed = {
            s.name: s.value
            for f in text_string_to_metric_families(response.read().decode())
            for s in f.samples
        }
    assert exposed["autopilot_store_up"] == 0.0
    assert time.time() - exposed["autopilot_last_tick_timestamp_seconds"] < 60


def test_a_loop_that_stopped_ticking_is_not_alive(daemon):
    daemon, url = daemon
    daemon.liveness_limit = 0.3
    daemon.safe_tick()
    assert http_get(f"{url}/healthz")[0] == 200
    time.sleep(0.5)  # no tick began since: the loop is stuck
    status, body = http_get(f"{url}/healthz")
    assert status == 503 and body["seconds_since_loop_activity"] > 0.3
