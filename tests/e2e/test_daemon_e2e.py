"""The whole chain on the embedded store, with `autopilot run` in its own process."""

from __future__ import annotations

import pytest

from tests.e2e.scenario import the_whole_chain_exactly_once_across_a_restart
from tests.support import daemon_settings

pytestmark = pytest.mark.e2e


def test_the_whole_chain_exactly_once_across_a_restart(zenml_store, daemon_factory, tmp_path):
    environment = {"ZENML_CONFIG_PATH": str(zenml_store.config_path), **daemon_settings(tmp_path)}
    the_whole_chain_exactly_once_across_a_restart(daemon_factory(environment))
