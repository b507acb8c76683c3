"""Every version of a watched artifact or model is judged once, however ZenML numbered it: a
number reused after the newest version was deleted, a version saved under a custom name, a
number below what the fast read reads (core/polling), and without required tags (so no
reconciliation pass could find them later)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pandas as pd
import pytest

from service.core.actions import ActionState
from service.core.polling import PollGroup, Seen
from service.core.promotion import UNLINKED_SETTLE
from service.core.records import DatasetVersion
from service.store import StoreAdapter
from tests.integration.engine_harness import make_engine

pytestmark = pytest.mark.integration

DATASET, MODEL = "iris_training_dataset", "iris_classifier"


def _claimed(engine) -> set[str]:
    return {a.subject_id for a in engine.ledger.actions_in(ActionState.PENDING)}


def test_reused_numbers_and_custom_names_are_each_judged_once(zenml_store, tmp_path):
    from zenml import save_artifact
    from zenml.client import Client

    client = Client()

    def save(**kwargs: str) -> str:
        return str(save_artifact(pd.DataFrame({"x": [1]}), name=DATASET, **kwargs).id)

    first, second = save(), save()
    engine = make_engine(
        tmp_path / "state",
        dataset_required_tags="",  # nothing to reconcile: the watch alone must see them
        reconcile_interval_seconds=3600,
    )
    engine.datasets.tick()
    assert _claimed(engine) == {first, second}

    client.delete_artifact_version(second)
    reused = save()
    assert client.get_artifact_version(reused).version == "2"  # ZenML reused the number
    custom = save(version="2026-11-27")
    engine.datasets.tick()
    assert _claimed(engine) == {first, second, reused, custom}
    for _ in range(3):  # and never again
        engine.datasets.tick()
    assert len(engine.ledger.actions_in(ActionState.PENDING)) == 4

    client.create_model(MODEL)
    client.create_model_version(MODEL, name="a")
    newest = client.create_model_version(MODEL, name="b")
    engine.models.tick()
    client.delete_model_version(newest.id)
    again = client.create_model_version(MODEL, name="c")
    assert again.number == newest.number  # reused
    engine.models.tick()
    judged = engine.ledger.subject("default", str(again.id))
    assert judged is not None and judged.kind == "model"


class RecordingStore(StoreAdapter):
    """Notes the groups each dataset read was made with (a sweep has no number bound)."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[PollGroup] = []

    def dataset_versions_since(
        self, group: PollGroup, seen: Seen, judged: Callable[[str, str], bool]
    ) -> Iterator[DatasetVersion]:
        self.groups.append(group)
        return super().dataset_versions_since(group, seen, judged)


def test_fast_reads_see_custom_names_and_reused_numbers_and_sweeps_see_the_rest(
    zenml_store, tmp_path, monkeypatch
):
    """Between sweeps, a tick reads numbers from the highest known less NUMBER_MARGIN (0 here)
    and the unnumbered versions: a reused top number and a custom name are seen at once; a
    number below the bound (the two newest deleted, then a save) only by the next sweep. Each
    is judged once."""
    from zenml import save_artifact
    from zenml.client import Client

    import service.core.polling

    monkeypatch.setattr(service.core.polling, "NUMBER_MARGIN", 0)
    client = Client()

    def save(**kwargs: str) -> str:
        return str(save_artifact(pd.DataFrame({"x": [1]}), name=DATASET, **kwargs).id)

    first, second, third = save(), save(), save()
    store = RecordingStore()
    engine = make_engine(
        tmp_path / "state", store=store, dataset_required_tags="", reconcile_interval_seconds=3600
    )
    engine.datasets.tick()  # the first tick sweeps
    assert _claimed(engine) == {first, second, third}
    assert [g.min_number for g in store.groups] == [None]

    client.delete_artifact_version(third)
    reused, custom = save(), save(version="by-hand")
    assert client.get_artifact_version(reused).version == "3"
    engine.datasets.tick()
    assert store.groups[-1].min_number == 3  # a fast read
    assert _claimed(engine) == {first, second, third, reused, custom}

    client.delete_artifact_version(reused)
    client.delete_artifact_version(second)
    below = save()
    assert client.get_artifact_version(below).version == "2"  # under the fast read's bound
    engine.datasets.tick()
    assert store.groups[-1].min_number == 3 and below not in _claimed(engine)
    engine.datasets._polls.sweep_next()  # one reconciliation interval later
    engine.datasets.tick()
    assert store.groups[-1].min_number is None and below in _claimed(engine)
    for _ in range(3):  # and never again, fast or swept
        engine.datasets.tick()
    engine.datasets._polls.sweep_next()
    engine.datasets.tick()
    assert len(engine.ledger.actions_in(ActionState.PENDING)) == 6


class Clock:
    """The daemon's clock for durations (`Context.clock`), moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_two_promotions_in_one_tick_each_get_their_inference(zenml_store, tmp_path):
    """v1 is promoted, then v2 beats it in the same tick: production never shows v1 to the
    daemon, yet v1 was in production and gets its one inference."""
    from zenml import log_metadata
    from zenml.client import Client

    client = Client()
    client.create_model(MODEL)
    versions = [client.create_model_version(MODEL, name=name) for name in ("a", "b")]
    for version, accuracy in zip(versions, (0.95, 0.97), strict=True):
        log_metadata({"accuracy": accuracy}, model_version_id=version.id)
    engine = make_engine(tmp_path / "state")
    engine.context.clock = clock = Clock(time.time())
    engine.models.tick()  # hand-made versions: judged once the daemon has seen them for 10 s
    clock.now += UNLINKED_SETTLE.total_seconds()
    engine.models.tick()
    engine.production.tick()
    assert client.get_model_version(MODEL, versions[1].id).stage == "production"
    claimed = [a.key for a in engine.ledger.actions_in(ActionState.PENDING)]
    assert sorted(claimed) == sorted(f"infer:{v.id}" for v in versions)
    engine.production.tick()
    assert len(engine.ledger.actions_in(ActionState.PENDING)) == 2


def test_a_version_without_a_run_is_not_judged_before_its_settle_whatever_the_daemons_clock(
    zenml_store, tmp_path, monkeypatch
):
    """ZenML links a run to its new model version a moment after creating it. The daemon waits
    UNLINKED_SETTLE for that on its own clock, as a duration since it first saw the version
    unlinked: with the daemon's clock an hour ahead of the store's, a version just created is
    still not judged before then (it was at once, and rejected for good as hand-made)."""
    from zenml.client import Client

    import service.stages.context
    import service.stages.models

    real_utc_now = service.stages.context.utc_now
    ahead = lambda: real_utc_now() + timedelta(hours=1)  # noqa: E731
    for module in (service.stages.context, service.stages.models):
        monkeypatch.setattr(module, "utc_now", ahead, raising=False)
    client = Client()
    client.create_model(MODEL)
    engine = make_engine(tmp_path / "state")
    engine.context.clock = clock = Clock(time.time() + 3600)
    version = str(client.create_model_version(MODEL, name="made-by-a-run").id)

    waited = []
    for step in (0.0, 5.0, UNLINKED_SETTLE.total_seconds() - 5.0 - 0.1):
        clock.now += step
        engine.models.tick()
        waited.append(engine.ledger.subject("default", version).reason)
    assert waited == ["no_training_run_linked_yet"] * 3
    assert engine.ledger.action(f"promote:{version}") is None

    clock.now += 0.1
    engine.models.tick()
    assert engine.ledger.subject("default", version).status == "decided"


def test_a_reconciliation_pass_is_spread_over_ticks_page_by_page(
    zenml_store, tmp_path, monkeypatch
):
    """Many approved versions do not hold a tick up: each tick reads a bounded number of pages
    of the pass, and the pass still approves every version once."""
    from zenml import add_tags, save_artifact

    import service.stages.datasets
    import service.store

    monkeypatch.setattr(service.store, "PAGE_SIZE", 2)
    monkeypatch.setattr(service.stages.datasets, "RECONCILE_PAGES_PER_TICK", 1)
    old = [str(save_artifact(pd.DataFrame({"x": [1]}), name=DATASET).id) for _ in range(5)]
    engine = make_engine(tmp_path / "state", reconcile_interval_seconds=3600)
    engine.datasets.tick()  # seen untagged: its tags may follow it (ZenML adds them after)
    engine.datasets.tick()  # looked at again: skipped, not approved
    assert _claimed(engine) == set()
    assert {engine.ledger.subject("default", id).reason for id in old} == {"missing_tags"}
    for id in old:
        add_tags(tags=["approved"], artifact_version_id=id)
    claimed_per_tick = []
    for _ in range(4):
        engine.datasets._next_reconcile = 0.0  # a pass is due now (started once, then goes on)
        engine.datasets.tick()
        claimed_per_tick.append(len(_claimed(engine)))
    assert claimed_per_tick[0] <= 2  # one page of two in the first tick
    assert _claimed(engine) == set(old)  # and every one by the end, once


def test_a_version_polled_before_zenml_attached_its_tags_is_selected_at_the_next_poll(
    zenml_store, tmp_path, monkeypatch
):
    """ZenML commits a new artifact version, then attaches its tags: a poll in between sees it
    untagged. The next poll must select it, not the reconciliation pass an interval later."""
    from zenml import save_artifact
    from zenml.zen_stores.schemas import ArtifactVersionSchema
    from zenml.zen_stores.sql_zen_store import SqlZenStore

    engine = make_engine(tmp_path / "state", reconcile_interval_seconds=3600)
    engine.datasets.tick()  # the reconciliation pass of the first tick, done: next in an hour
    attach_tags = SqlZenStore._attach_tags_to_resources

    def poll_first(self, tags, resources, session=None):  # ZenML's window, made every time
        if tags and isinstance(resources, ArtifactVersionSchema):
            engine.datasets.tick()
        return attach_tags(self, tags, resources, session=session)

    monkeypatch.setattr(SqlZenStore, "_attach_tags_to_resources", poll_first)
    version = str(save_artifact(pd.DataFrame({"x": [1]}), name=DATASET, tags=["approved"]).id)
    monkeypatch.undo()
    seen_untagged = engine.ledger.subject("default", version)
    assert seen_untagged is not None and seen_untagged.reason == "tags_may_follow"

    engine.datasets.tick()

    assert _claimed(engine) == {version}


def test_a_model_numbered_high_is_read_through_the_number_index_and_each_version_judged_once(
    zenml_store, tmp_path, monkeypatch
):
    """SQLite reads every version of a model given a model filter, whatever the number bound
    (its `(model_id, producer_run_id_if_numeric)` index): between sweeps, a model numbered
    above NUMBER_ONLY_FROM is read by numbers alone, from the `(number, model_id)` index. Every
    new version is still judged once, more than NUMBER_AHEAD at once too; another model's
    versions in the same numbers are not judged."""
    from sqlalchemy import event
    from zenml.client import Client

    import service.core.polling

    monkeypatch.setattr(service.core.polling, "NUMBER_ONLY_FROM", 3)
    monkeypatch.setattr(service.core.polling, "NUMBER_AHEAD", 2)
    monkeypatch.setattr(service.core.polling, "NUMBER_MARGIN", 1)
    client = Client()
    client.create_model(MODEL)
    client.create_model("other_model")
    first = [client.create_model_version(MODEL, name=f"v{i}").id for i in range(5)]
    engine = make_engine(tmp_path / "state", reconcile_interval_seconds=3600)
    engine.models.tick()  # the first tick sweeps
    subjects = {str(v) for v in first}
    assert {s.id for s in engine.ledger.subjects_with_status("model", "waiting")} == subjects

    new = [client.create_model_version(MODEL, name=f"w{i}").id for i in range(5)]  # 6 to 10
    others = [client.create_model_version("other_model", name=f"o{i}").id for i in range(8)]
    reads: list[tuple[str, object]] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if "model_version.created >=" in statement:  # a read since a floor, not one by id
            reads.append((statement, parameters))

    sql = client.zen_store.engine
    event.listen(sql, "before_cursor_execute", note)
    try:
        engine.models.tick()  # a fast read: 6 and 7, then 8 and 9, then 10 and 11 (none)
        engine.models.tick()  # idle
    finally:
        event.remove(sql, "before_cursor_execute", note)
    waiting = engine.ledger.subjects_with_status("model", "waiting")
    assert sorted(s.id for s in waiting) == sorted(subjects | {str(v) for v in new})
    assert not any(engine.ledger.subject("default", str(v)) for v in others)

    assert reads
    with sql.connect() as connection:
        plans = [
            str(row[-1])
            for statement, parameters in reads
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    walked = [p for p in plans if p.startswith(("SEARCH model_version", "SCAN model_version"))]
    assert walked and all("(number>? AND number<?)" in p for p in walked), walked


def test_an_idle_fast_read_lists_no_version_again_however_spread_the_floors(
    zenml_store, tmp_path, monkeypatch
):
    """Two artifacts whose floors lie within LOOKBACK share a fast read from the lower floor;
    the other artifact's versions between the two floors were read (and left) before. An idle
    tick asks each query for its count and newest version, sees only versions it read, and
    lists no more; a new version, or one saved after a known one was deleted, is listed and
    judged at once, and the deleted one is forgotten."""
    from zenml import save_artifact
    from zenml.client import Client

    client = Client()

    def save(name: str, **kwargs: str) -> str:
        return str(save_artifact(pd.DataFrame({"x": [1]}), name=name, **kwargs).id)

    save("early")
    late = [save(DATASET) for _ in range(5)]  # after `early`'s floor, before their own
    store = StoreAdapter()
    listed: list[int] = []
    list_call = store._client.list_artifact_versions

    def counting(*args, **kwargs):
        page = list_call(*args, **kwargs)
        listed.append(len(page.items))
        return page

    monkeypatch.setattr(store._client, "list_artifact_versions", counting)
    engine = make_engine(
        tmp_path / "state",
        store=store,
        start_from="now",  # each floor just above its artifact's newest version
        dataset_required_tags="",
        reconcile_interval_seconds=3600,
        environ={"AUTOPILOT_DATASET_NAMES": f"early,{DATASET}"},
    )
    engine.datasets.tick()  # the sweep
    engine.datasets.tick()  # the first fast read lists `late`, below their own floor
    for _ in range(3):
        listed.clear()
        engine.datasets.tick()
        assert sum(listed) <= 1, listed  # the numbered query's newest version, no more
    assert not _claimed(engine)

    new = save(DATASET)
    engine.datasets.tick()
    assert _claimed(engine) == {new}
    client.delete_artifact_version(late[0])
    again = save("early")
    engine.datasets.tick()
    assert _claimed(engine) == {new, again}
    listed.clear()
    engine.datasets.tick()
    assert sum(listed) <= 1, listed


def test_a_read_by_numbers_alone_works_over_rest(zenml_rest_store, monkeypatch):
    """The number window is a list filter (`number=["gte:..", "lte:.."]`), which a ZenML
    server must take from the query string as SQL does; other models' versions are dropped and
    the next numbers are read while the window's last is found."""
    from zenml.client import Client

    import service.core.polling

    monkeypatch.setattr(service.core.polling, "NUMBER_AHEAD", 2)
    client = Client()
    for model in (MODEL, "other_model"):
        client.create_model(model)
        for index in range(6):
            client.create_model_version(model, name=f"v{index}")
    group = PollGroup((MODEL,), None, min_number=2, max_number=3)
    found = StoreAdapter().model_versions_since(group, Seen(), lambda name, id: False)
    assert [(v.model_name, v.number) for v in found] == [(MODEL, n) for n in (2, 3, 4, 5, 6)]
