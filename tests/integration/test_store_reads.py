"""How many store calls the adapter's run reads make, against a real embedded store: each is a
look-up the daemon repeats per dataset's producer, per claimed action and per report, so a
second fetch is a second round trip over REST. Counted, never timed (BENCHMARKS.md times it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def counted_get_run(zenml_store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """The real store's `get_run`, recording each call's `hydrate`."""
    from zenml.client import Client

    store_class = type(Client().zen_store)  # a pydantic model: patched on its class
    calls: list[bool] = []
    real_get_run = store_class.get_run

    def get_run(self: Any, run_id: Any, hydrate: bool = True, **kwargs: Any) -> Any:
        calls.append(hydrate)
        return real_get_run(self, run_id, hydrate=hydrate, **kwargs)

    monkeypatch.setattr(store_class, "get_run", get_run)
    yield calls


def test_a_producer_run_is_read_in_one_call_with_its_times(counted_get_run: list[bool]) -> None:
    from zenml.client import Client

    from pipelines import TRAINING_DATASET
    from pipelines.feature_engineering import launch_feature_engineering
    from service.store import StoreAdapter

    launch_feature_engineering(random_state=0)
    dataset = Client().get_artifact_version(TRAINING_DATASET)
    counted_get_run.clear()

    version = StoreAdapter().dataset_version(str(dataset.id))

    assert version is not None and version.producer is not None
    assert version.producer.start_time is not None and version.producer.end_time is not None
    assert len(counted_get_run) == 1, f"get_run called {len(counted_get_run)} times"


def test_a_listed_run_is_not_fetched_again_for_its_times(counted_get_run: list[bool]) -> None:
    from zenml.client import Client

    from pipelines.feature_engineering import launch_feature_engineering
    from service.store import StoreAdapter

    launch_feature_engineering(random_state=0)
    (run,) = Client().list_pipeline_runs().items
    token = run.name.rsplit("-", 1)[1]  # an attempt's run is found by the end of its name
    counted_get_run.clear()

    found = StoreAdapter().attempt_run(token)

    assert found is not None and found.id == str(run.id) and found.end_time is not None
    assert counted_get_run == [], f"get_run called {len(counted_get_run)} times"
