"""The whole chain on the embedded store, with `autopilot run` in its own process."""

from __future__ import annotations

from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from tests.e2e.scenario import (
    several_projects_in_one_daemon,
    the_whole_chain_exactly_once_across_a_restart,
)
from tests.support import (
    daemon_settings,
    diabetes_automation,
    iris_automation,
    self_promoting_automation,
)

pytestmark = pytest.mark.e2e


def test_the_whole_chain_exactly_once_across_a_restart(zenml_store, daemon_factory, tmp_path):
    environment = {"ZENML_CONFIG_PATH": str(zenml_store.config_path), **daemon_settings(tmp_path)}
    the_whole_chain_exactly_once_across_a_restart(daemon_factory(environment))


def test_a_finished_run_is_acted_on_when_it_reports_not_at_the_next_poll(
    zenml_store, daemon_factory, tmp_path
):
    """An hour between polls: the first poll launches the training, and everything after it
    (promotion, inference, settling) happens on the workers' reports, or not for an hour."""
    from zenml.client import Client

    dataset = launch_feature_engineering(training_tags=["approved"], random_state=11)
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        "AUTOPILOT_POLL_INTERVAL_SECONDS": "3600",
        "AUTOPILOT_START_FROM": "beginning",
    }
    daemon = daemon_factory(environment)("daemon.log")
    trained = daemon.wait_event("training.succeeded", key=f"train:{dataset.training_id}")
    promoted = daemon.wait_event("model.promoted", dataset_version_id=str(dataset.training_id))
    served = daemon.wait_event("inference.succeeded", key=f"infer:{promoted['model_version_id']}")
    assert daemon.stop() == 0

    # The warm worker answered ZenML's environment questions from its start-up look: the runs
    # still record the installed packages, as a run launched by hand would.
    for run_id in (trained["run_id"], served["run_id"]):
        run = Client().zen_store.get_run(UUID(run_id), include_python_packages=True)
        packages = run.client_environment["python_packages"]
        assert any(line.startswith("zenml==") for line in packages.splitlines()), packages


def test_two_projects_and_a_self_promoting_pipeline_in_one_daemon(
    zenml_store, daemon_factory, tmp_path
):
    environment = {
        "ZENML_CONFIG_PATH": str(zenml_store.config_path),
        **daemon_settings(tmp_path),
        **iris_automation(),
        **diabetes_automation(PROMOTION_MODE="approval"),
        **self_promoting_automation(),
    }
    several_projects_in_one_daemon(daemon_factory(environment))
