from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import DaemonProcess, free_port


def daemon_settings(tmp_path: Path) -> dict[str, str]:
    """Sub-second polling, so the chain takes seconds, not minutes."""
    return {
        "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
        "AUTOPILOT_POLL_INTERVAL_SECONDS": "0.5",
        "AUTOPILOT_RECONCILE_INTERVAL_SECONDS": "1",
        "AUTOPILOT_RETRY_BACKOFF_SECONDS": "1",
        "AUTOPILOT_START_FROM": "now",
        "AUTOPILOT_LOG_LEVEL": "DEBUG",
        "AUTOPILOT_HTTP_PORT": str(free_port()),
    }


@pytest.fixture
def daemon_factory(
    tmp_path: Path,
) -> Iterator[Callable[[dict[str, str]], Callable[[str], DaemonProcess]]]:
    """Start daemons with a given environment; every one is stopped at teardown."""
    started: list[DaemonProcess] = []

    def factory(environment: dict[str, str]) -> Callable[[str], DaemonProcess]:
        def start(log_name: str) -> DaemonProcess:
            daemon = DaemonProcess(tmp_path / log_name, environment).start()
            started.append(daemon)
            return daemon

        return start

    yield factory
    for daemon in started:
        daemon.close()
