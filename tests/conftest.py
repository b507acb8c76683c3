from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import isolated_zenml


@pytest.fixture
def zenml_store(tmp_path: Path) -> Iterator[Path]:
    """A fresh embedded ZenML store for one test (see tests/support.py)."""
    with isolated_zenml(tmp_path / "zenml") as path:
        yield path
