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

    def list_artifact_versions(
        self, page: int = 1, size: int = 100, **filters: Any
    ) -> SimpleNamespace:
        self.calls.append({**filters, "size": size})
        number = filters.get("version_number")
        items = [v for v in self.versions if _matches(v, number)]
        if "created" in filters:
            since = datetime.strptime(filters["created"], "gte:%Y-%m-%d %H:%M:%S")
            items = [v for v in items if v.created >= since]
        items.sort(key=lambda v: v.created, reverse=filters.get("sort_by") == "desc:created")
        total = len(items)
        return SimpleNamespace(
            items=items[(page - 1) * size : page * size], total=total, total_pages=1
        )

    def listings(self) -> list[dict[str, Any]]:
        """The calls that list versions (not a fast read's page of one to check for new)."""
        return [call for call in self.calls if call["size"] > 1]


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
    numbers = sorted(call["version_number"] for call in client.listings())
    assert numbers == ["gte:5", "isnull:"]
    assert all(call["created"] == "gte:2026-11-27 12:00:00" for call in client.calls)


def test_every_number_read_raises_the_names_highest():
    client = FakeClient([_artifact("41", T), _artifact("custom", T)])
    seen = Seen()
    store = StoreAdapter(client=client)  # type: ignore[arg-type]
    list(store.dataset_versions_since(PollGroup(("iris",), T), seen, lambda name, id: False))
    assert seen.top("iris") == 41


def test_a_fast_read_lists_nothing_while_its_count_and_newest_are_versions_read_before():
    versions = [_artifact("7", T + timedelta(seconds=1)), _artifact("c", T + timedelta(seconds=2))]
    client = FakeClient(versions)
    seen = Seen()
    store = StoreAdapter(client=client)  # type: ignore[arg-type]
    group = PollGroup(("iris",), T, min_number=5)

    def read() -> list[str]:
        found = list(store.dataset_versions_since(group, seen, lambda name, id: False))
        for version in found:  # judged, as the watch does
            seen.add("iris", version.id, version.created, version.number)
        return [version.version for version in found]

    assert read() == ["7", "c"]
    client.calls.clear()
    assert read() == []
    assert client.listings() == [] and len(client.calls) == 2  # a page of one per query
    client.versions.append(_artifact("8", T + timedelta(seconds=3)))
    assert read() == ["8"]
    deleted = versions[0]
    client.versions.remove(deleted)  # deleted, as a version created before 8 commits late:
    client.versions.append(_artifact("9", T))  # as many, the newest known: the sweep's job
    assert read() == []
    client.versions.append(_artifact("10", T + timedelta(seconds=4)))
    assert read() == ["9", "10"]
    assert not seen.knows("iris", str(deleted.id))  # no longer listed: forgotten
