"""Shared test support: an isolated embedded ZenML store per test, and waiting helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUIET_ZENML = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
}

T = TypeVar("T")


@contextmanager
def isolated_zenml(config_path: Path) -> Iterator[Path]:
    """Point ZenML (this process and every child it starts) at a fresh store in `config_path`.

    ZenML keeps its configuration and client in process-wide singletons, so they are cleared
    on the way in and out; the user's global ZenML config is never read or written.
    """
    saved = {name: os.environ.get(name) for name in ("ZENML_CONFIG_PATH", *QUIET_ZENML)}
    os.environ.update(QUIET_ZENML)
    os.environ["ZENML_CONFIG_PATH"] = str(config_path)
    _reset_zenml()
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    try:
        yield config_path
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_zenml()


def _reset_zenml() -> None:
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    Client._clear()  # type: ignore[attr-defined]
    GlobalConfiguration._clear()  # type: ignore[attr-defined]


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 120,
    interval: float = 0.3,
    between: Callable[[], object] | None = None,
    what: str = "condition",
) -> T:
    """Call `between` and poll `condition` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if between is not None:
            between()
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
