"""Every version of a watched artifact or model is judged once, however ZenML numbered it: a
number reused after the newest version was deleted, a version saved under a custom name, and
without required tags (so no reconciliation pass could find them later)."""

from __future__ import annotations

import pandas as pd
import pytest

from service.core.actions import ActionState
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
    _made_long_ago(zenml_store)  # hand-made versions are judged once a minute old
    engine = make_engine(tmp_path / "state")
    engine.models.tick()
    engine.production.tick()
    assert client.get_model_version(MODEL, versions[1].id).stage == "production"
    claimed = [a.key for a in engine.ledger.actions_in(ActionState.PENDING)]
    assert sorted(claimed) == sorted(f"infer:{v.id}" for v in versions)
    engine.production.tick()
    assert len(engine.ledger.actions_in(ActionState.PENDING)) == 2


def _made_long_ago(zenml_store) -> None:
    import sqlite3
    from pathlib import Path

    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as db:
        db.execute(  # keeping the microseconds, so the order of creation stays
            "UPDATE model_version "
            "SET created = datetime(created, '-5 minutes') || substr(created, 20)"
        )


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
    engine.datasets.tick()  # judged once: skipped, not approved
    assert _claimed(engine) == set()
    for id in old:
        add_tags(tags=["approved"], artifact_version_id=id)
    claimed_per_tick = []
    for _ in range(4):
        engine.datasets._next_reconcile = 0.0  # a pass is due now (started once, then goes on)
        engine.datasets.tick()
        claimed_per_tick.append(len(_claimed(engine)))
    assert claimed_per_tick[0] <= 2  # one page of two in the first tick
    assert _claimed(engine) == set(old)  # and every one by the end, once
