"""The status page in a real browser (headless Chromium), served by the daemon's HTTP server
over a ledger of 1,000 judged versions: it renders, with the newest 20 candidates on the chart
and 10 chains, and no bigger than a page of a few. The page of a real daemon after a chain and
with an empty ledger: tests/e2e/scenario.py; through a store outage: test_store_outage.py."""

from __future__ import annotations

import pytest

from service.http import HealthServer
from service.ledger import Ledger
from service.observe.board import StatusBoard
from service.settings import load_settings
from tests.browser import Dom, dump_dom, screenshot
from tests.ledger_history import write_history
from tests.unit.test_status_page import Health


@pytest.fixture
def served(tmp_path):
    """A status page per ledger, served as the daemon serves it."""
    servers = []

    def serve(values: list[float]) -> str:
        state = tmp_path / f"state-{len(servers)}"
        settings = load_settings({"AUTOPILOT_STATE_DIR": str(state)})
        ledger = Ledger(settings.ledger_path)
        write_history(ledger, values)
        ledger.close()
        board = StatusBoard(settings.automations, settings.ledger_path, Health())
        server = HealthServer(Health(), "127.0.0.1", 0, board).start()
        servers.append(server)
        host, port = server.address
        return f"http://{host}:{port}/"

    yield serve
    for server in servers:
        server.stop()


def test_a_thousand_judged_versions_render_in_a_browser_as_a_page_of_twenty(served, tmp_path):
    values = [0.90 + (i * 37 % 100) / 1000 for i in range(1000)]
    url = served(values)
    dom_text = dump_dom(url)
    dom = Dom(dom_text)
    points = dom.all("circle", "point")
    assert [p["data-version"] for p in points] == [str(n) for n in range(981, 1001)]
    assert [float(p["data-value"]) for p in points] == values[-20:]
    assert len(dom.all("tr", "chain")) == 10
    (production,) = dom.all("div", "production")
    rings = dom.all("circle", "production-ring")
    numbers = [p["data-version"] for p in points]
    if production["data-number"] in numbers:  # ringed when among the last twenty
        assert [r["data-version"] for r in rings] == [production["data-number"]]
    few = Dom(dump_dom(served(values[:5])))
    assert len(few.all("circle", "point")) == 5
    assert len(dom_text) < 64_000  # bounded: a page of the newest only
    shot = screenshot(url, tmp_path / "thousand.png")
    assert shot.stat().st_size > 10_000
