"""Integration tests build real engines; none may leave worker processes behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.engine_harness import stop_engines


@pytest.fixture(autouse=True)
def _stop_engines() -> Iterator[None]:
    yield
    stop_engines()
