"""Integration tests build real engines; none may leave worker processes behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.logs import configure
from tests.integration.engine_harness import stop_engines


@pytest.fixture(autouse=True)
def _stop_engines() -> Iterator[None]:
    # The daemon's log goes to this test's stdout: an earlier test's stream is closed by now.
    configure("json", "INFO")
    yield
    stop_engines()
