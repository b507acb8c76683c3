"""Fixtures that run real pipelines against a throw-away embedded ZenML store.

How ``zenml_store`` isolates a test from the machine's ZenML setup:

* Environment first: ``ZENML_CONFIG_PATH`` points at a fresh ``tmp_path`` directory,
  so the global config, the SQLite store and the local artifact store all live there;
  analytics, rich tracebacks and chatty logging are switched off; and every inherited
  ``ZENML_STORE_*`` / ``ZENML_ACTIVE_*`` variable is removed so that a developer's
  server or stack can never be used. This happens before zenml is imported here (the
  test modules import zenml-dependent code inside the tests for the same reason). The
  test process caches no store credential on disk (``NO_CREDENTIALS_ON_DISK``), so a
  test can find any that the project's own processes leave.
* No ZenML repository: ``ZENML_REPOSITORY_PATH`` points at an empty temp directory,
  so the shared ``<repo>/.zen/config.yaml`` (active stack/project ids, rewritten by
  every process that opens it) is neither read nor written. Steps are still resolved
  against the project because the source root is set explicitly with
  ``source_utils.set_custom_source_root``.
* Singletons: zenml caches the ``GlobalConfiguration`` and the ``Client`` in class
  attributes, so if anything imported and used zenml earlier in the session they
  would still point at the old config. Both are reset on entry and again on exit.

The fixture is function-scoped: once zenml is imported a fresh store costs about
1-2.5 s per test (measured: ~3 s for the first store of a session including imports,
then 1.1 s for a bare reset and up to 2.5 s in pytest's setup timings), cheap enough
to buy full isolation instead of sharing one store across tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from zenml.client import Client

from tests.support import (
    NO_CREDENTIALS_ON_DISK,
    PROJECT_ROOT,
    QUIET_ZENML,
    DaemonProcess,
    MariaDB,
    ZenMLServer,
)

INHERITED_PREFIXES = ("ZENML_STORE_", "ZENML_ACTIVE_", "ZENML_SERVER")


@dataclass(frozen=True)
class ZenMLStore:
    """Handle on the isolated store a test runs against.

    It is also path-like (``Path(zenml_store)`` is the temp ``ZENML_CONFIG_PATH``), so
    tests can reach the SQLite file under ``local_stores/default_zen_store/``.
    """

    config_path: Path
    client: Client

    def __fspath__(self) -> str:
        return str(self.config_path)


def _reset_singletons() -> None:
    """Forget the cached global configuration and client so env changes take effect."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    GlobalConfiguration._reset_instance()
    Client._reset_instance()


@contextmanager
def _isolated_zenml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_environment: dict[str, str]
) -> Iterator[ZenMLStore]:
    """Point zenml at the given store (the embedded one when empty) with a fresh config."""
    for name in list(os.environ):
        if name.startswith(INHERITED_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in {**QUIET_ZENML, **NO_CREDENTIALS_ON_DISK, **store_environment}.items():
        monkeypatch.setenv(name, value)
    config_path = tmp_path / "zenml-config"
    no_repository = tmp_path / "no-repository"
    no_repository.mkdir()
    monkeypatch.setenv("ZENML_CONFIG_PATH", str(config_path))
    monkeypatch.setenv("ZENML_REPOSITORY_PATH", str(no_repository))

    from zenml.client import Client
    from zenml.utils import source_utils

    previous_root: Any = source_utils._CUSTOM_SOURCE_ROOT
    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    _reset_singletons()
    try:
        yield ZenMLStore(config_path=config_path, client=Client())
    finally:
        _reset_singletons()
        source_utils.set_custom_source_root(previous_root)


@pytest.fixture
def zenml_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ZenMLStore]:
    """Point zenml at a brand-new local store for the duration of one test."""
    with _isolated_zenml(tmp_path, monkeypatch, {}) as store:
        url = store.client.zen_store.url.removeprefix("sqlite:///")
        assert Path(url).is_relative_to(store.config_path)
        yield store


@pytest.fixture
def zenml_server(tmp_path: Path) -> Iterator[ZenMLServer]:
    """A real ZenML server process (uvicorn) on a free loopback port, auth enabled."""
    server = ZenMLServer(tmp_path / "server").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zenml_rest_store(
    zenml_server: ZenMLServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ZenMLStore]:
    """This test process connected to `zenml_server` over REST, as the admin user."""
    with _isolated_zenml(tmp_path, monkeypatch, zenml_server.admin_environment()) as store:
        assert store.client.zen_store.type.value == "rest"
        yield store


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A throw-away MariaDB server, shared by a module's tests (a database each)."""
    server = MariaDB(tmp_path_factory.mktemp("mariadb")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zenml_mysql_store(
    mariadb: MariaDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ZenMLStore]:
    """This test process on a fresh ZenML database in `mariadb` (a MySQL store, as Compose's)."""
    database = f"zenml_{os.urandom(4).hex()}"
    environment = {"ZENML_STORE_URL": mariadb.url(database)}
    with _isolated_zenml(tmp_path, monkeypatch, environment) as store:
        assert store.client.zen_store.get_store_info().database_type == "mysql"
        yield store


@pytest.fixture
def daemon_factory(
    tmp_path: Path,
) -> Iterator[Callable[[dict[str, str]], Callable[..., DaemonProcess]]]:
    """Start daemons with a given environment; every one is stopped at teardown."""
    started: list[DaemonProcess] = []

    def factory(environment: dict[str, str]) -> Callable[..., DaemonProcess]:
        def start(log_name: str, *args: str) -> DaemonProcess:  # args: `autopilot run`'s
            daemon = DaemonProcess(tmp_path / log_name, environment).start(*args)
            started.append(daemon)
            return daemon

        return start

    yield factory
    for daemon in started:
        daemon.close()
