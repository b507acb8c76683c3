"""How the dataset watch's rules hold over time, on a real store: a change of the required tags
is governed by the start policy, and a wait on a producing run that never ends is bounded."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionState
from service.core.selection import LOOK_EVERY_TICK_FOR, LOOK_INTERVAL
from service.operations import status
from tests.integration.engine_harness import make_engine

pytestmark = pytest.mark.integration

DATASET = "iris_training_dataset"


def _save(tags: list[str]) -> str:
    from zenml import save_artifact

    return str(save_artifact(pd.DataFrame({"x": [1]}), name=DATASET, tags=tags).id)


def _claimed(engine: Any) -> set[str]:
    return {a.key for a in engine.ledger.actions_in(ActionState.PENDING)}


def _automations(relaxed: str, emptied: str) -> dict[str, str]:
    """Two automations on the same artifact, with these required tags."""
    environ = {}
    for name, tags in (("RELAXED", relaxed), ("EMPTIED", emptied)):
        prefix = f"AUTOPILOT_AUTOMATIONS__{name}__"
        environ |= {
            f"{prefix}DATASET_NAMES": DATASET,
            f"{prefix}MODEL_NAME": f"model_{name.lower()}",
            f"{prefix}DATASET_REQUIRED_TAGS": tags,
        }
    return environ


def _stop(engine: Any) -> None:
    engine.executor.close()
    engine.ledger.close()


@pytest.mark.parametrize("start_from", ["now", "beginning"])
def test_a_change_of_required_tags_is_governed_by_the_start_policy_relaxed_or_emptied(
    zenml_store, tmp_path, capsys, start_from
):
    """`relaxed` goes from approved+reviewed to approved, `emptied` from approved to none. The
    versions judged (or passed over at the first start) before the change that the new tags
    select: `now` keeps them skipped, `beginning` trains them, the same for both changes (it
    used to be: relaxing trained every one of them whatever the policy, emptying none). Later
    versions, and a late approval, go by the new tags."""
    old_plain, old_approved = _save([]), _save(["approved"])
    state = tmp_path / "state"
    before = _automations(relaxed="approved,reviewed", emptied="approved")
    engine = make_engine(state, environ=before, start_from=start_from)
    new_plain, new_approved = _save([]), _save(["approved"])
    for _ in range(3):
        engine.datasets.tick()
    trained_before = _claimed(engine)
    _stop(engine)
    _made_long_ago(zenml_store)  # judged long ago: below every floor, out of the polls' sight

    engine = make_engine(
        state, environ=_automations(relaxed="approved", emptied=""), start_from=start_from
    )
    for _ in range(3):
        engine.datasets.tick()
    new = _claimed(engine) - trained_before
    if start_from == "now":
        assert new == set()
        kept = engine.ledger.subject("relaxed", new_approved)
        assert (kept.reason, kept.final) == ("predates_required_tags_change", True)
    else:
        assert new == {
            f"train:relaxed:{old_approved}",
            f"train:relaxed:{new_approved}",
            f"train:emptied:{old_plain}",
            f"train:emptied:{new_plain}",
        }
    (changed,) = [
        event
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{")
        and (event := json.loads(line))["event"] == "datasets.required_tags_changed"
        and event["automation"] == "emptied"
    ]
    assert (changed["before"], changed["after"]) == (["approved"], [])

    from zenml import add_tags

    later = _save(["approved"])
    add_tags(tags=["approved"], artifact_version_id=new_plain)  # approved after the change
    for _ in range(3):
        engine.datasets.tick()
    newer = _claimed(engine) - trained_before - new
    assert f"train:relaxed:{later}" in newer and f"train:emptied:{later}" in newer
    if start_from == "now":
        assert f"train:relaxed:{new_plain}" in newer  # a late approval still trains


def _database(zenml_store: Any) -> Path:
    return Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"


def _made_long_ago(zenml_store: Any) -> None:
    with sqlite3.connect(_database(zenml_store)) as db:
        db.execute(  # keeping the microseconds, so the order of creation stays
            "UPDATE artifact_version "
            "SET created = datetime(created, '-1 hours') || substr(created, 20)"
        )


def _stuck(database: Path, run_id: Any) -> None:
    with sqlite3.connect(database) as db:
        db.execute("UPDATE pipeline_run SET status = 'running' WHERE id = ?", (run_id.hex,))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_dataset_whose_producing_run_is_stuck_or_deleted_waits_a_bounded_time(
    zenml_store, tmp_path, monkeypatch
):
    """One producing run left `running` for ever, another deleted (its step output never gets a
    producer): each version waits, read every tick for a minute, then once a minute, and is
    skipped for good after AUTOPILOT_PRODUCER_WAIT_SECONDS. `status` lists them meanwhile."""
    from zenml.client import Client

    stuck = launch_feature_engineering(training_tags=["approved"], random_state=1)
    deleted = launch_feature_engineering(training_tags=["approved"], random_state=2)
    _stuck(_database(zenml_store), stuck.run_id)
    Client().delete_pipeline_run(deleted.run_id)
    versions = {str(stuck.training_id): "producer_run_in_progress"}
    versions[str(deleted.training_id)] = "producer_not_reported_yet"

    engine = make_engine(tmp_path / "state", producer_wait_seconds=600)
    engine.context.clock = clock = Clock()
    reads: list[str] = []
    read = engine.store.dataset_version
    monkeypatch.setattr(engine.store, "dataset_version", lambda id: reads.append(id) or read(id))

    engine.datasets._next_reconcile = float("inf")  # only the waiting versions' own reads count
    engine.datasets.tick()
    judged = {id: engine.ledger.subject("default", id) for id in versions}
    assert {id: (s.status, s.reason) for id, s in judged.items()} == {
        id: ("waiting", reason) for id, reason in versions.items()
    }
    shown = {w["id"]: w for w in status(engine.ledger)["waiting"]}
    assert {id: shown[id]["reason"] for id in versions} == versions
    assert all(shown[id]["waited_seconds"] >= 0 for id in versions)

    def tick_at(seconds: float) -> set[str]:
        reads.clear()
        clock.now = start + seconds
        engine.datasets.tick()
        return set(reads)

    start = clock.now
    first_minute = LOOK_EVERY_TICK_FOR - 1
    assert tick_at(first_minute / 2) == set(versions)  # every tick in the first minute
    assert tick_at(first_minute) == set(versions)
    assert tick_at(first_minute + 2) == set()  # then once a minute
    assert tick_at(first_minute + LOOK_INTERVAL - 1) == set()
    assert tick_at(first_minute + LOOK_INTERVAL) == set(versions)
    assert all(engine.ledger.subject("default", id).status == "waiting" for id in versions)

    assert tick_at(600) == set(versions)
    for id, reason in versions.items():
        skipped = engine.ledger.subject("default", id)
        assert (skipped.status, skipped.reason, skipped.final) == (
            "skipped",
            "producer_wait_exceeded",
            True,
        )
        assert skipped.details["waited_for"] == reason
    assert tick_at(1200) == set()  # never read again
    assert status(engine.ledger)["waiting"] == []
    assert _claimed(engine) == set()
