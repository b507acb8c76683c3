"""The shape of the store adapter's version reads (core/polling): a sweep filters on `created`
alone; a fast read adds a number bound that ZenML's `(artifact_id, version_number)` index
answers, and reads the unnumbered versions (custom names) apart. Speed is measured in
BENCHMARKS.md, never asserted: these tests pin the queries that make it."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from service.core.polling import PollGroup, Seen
from service.store import StoreAdapter

T = datetime(2026, 11, 27, 12, 0, 0)


def _artifact(version: str, created: datetime) -> SimpleNamespace:
    return SimpleNamespace(
        id=uuid4(),
        artifact=SimpleNamespace(name="iris"),
        version=version,
        created=created,
        tags=[],
        producer_pipeline_run_id=None,
        save_type=SimpleNamespace(value="manual"),
    )


class FakeClient:
    """Answers list calls from a list of versions, filtering on what the reads use."""

    def __init__(self, versions: list[SimpleNamespace]) -> None:
        self.versions = versions
        self.calls: list[dict[str, Any]] = []

    def list_artifact_versions(self, page: int, size: int, **filters: Any) -> SimpleNamespace:
        self.calls.append(filters)
        number = filters.get("version_number")
        items = [v for v in self.versions if _matches(v, number)]
        if "created" in filters:
            since = datetime.strptime(filters["created"], "gte:%Y-%m-%d %H:%M:%S")
            items = [v for v in items if v.created >= since]
        items.sort(key=lambda v: v.created)
        return SimpleNamespace(items=items, total_pages=1)


def _matches(version: SimpleNamespace, condition: str | None) -> bool:
    if condition is None:
        return True
    if condition == "isnull:":
        return not version.version.isdigit()
    return version.version.isdigit() and int(version.version) >= int(condition.split(":")[1])


def _read(client: FakeClient, group: PollGroup) -> list[str]:
    store = StoreAdapter(client=client)  # type: ignore[arg-type]
    found = store.dataset_versions_since(group, Seen(), lambda name, id: False)
    return [version.version for version in found]


def test_a_sweep_filters_on_created_alone():
    client = FakeClient([_artifact("1", T), _artifact("2", T + timedelta(seconds=1))])
    assert _read(client, PollGroup(("iris",), T)) == ["1", "2"]
    (call,) = client.calls
    assert call["created"] == "gte:2026-11-27 12:00:00" and "version_number" not in call


def test_a_fast_read_is_a_numbered_range_and_the_unnumbered_versions_merged_oldest_first():
    versions = [
        _artifact("7", T + timedelta(seconds=1)),
        _artifact("custom", T + timedelta(seconds=2)),
        _artifact("8", T + timedelta(seconds=3)),
        _artifact("3", T + timedelta(seconds=4)),  # an explicit number below the bound
    ]
    client = FakeClient(versions)
    assert _read(client, PollGroup(("iris",), T, min_number=5)) == ["7", "custom", "8"]
    numbers = sorted(call["version_number"] for call in client.calls)
    assert numbers == ["gte:5", "isnull:"]
    assert all(call["created"] == "gte:2026-11-27 12:00:00" for call in client.calls)


def test_every_number_read_raises_the_names_highest():
    client = FakeClient([_artifact("41", T), _artifact("custom", T)])
    seen = Seen()
    store = StoreAdapter(client=client)  # type: ignore[arg-type]
    list(store.dataset_versions_since(PollGroup(("iris",), T), seen, lambda name, id: False))
    assert seen.top("iris") == 41
