"""Scoring datasets against a real embedded store, real runs: each new scoring version is
scored once by the production version, a production change scores the newest, and every
guarantee of the other actions holds (late tags, recovery, found in store, a restart).

One scenario, its runs shared by every assertion (the suite's time is a budget)."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from pipelines import SCORING_DATASET
from pipelines.feature_engineering import launch_feature_engineering
from pipelines.producer import Case, publish_scoring
from service.core.actions import ActionKind, ActionState
from service.core.records import RunStatus
from service.operations import explain, status
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import wait_for

pytestmark = pytest.mark.integration

MODEL = "iris_classifier"
# `make run`'s automation (the bundled iris pipelines, `iris_scoring_dataset` scored), with a
# tag required of scoring data so that a late tag can be shown.
SCORING = {
    "AUTOPILOT_SCORING_DATASET_NAMES": SCORING_DATASET,
    "AUTOPILOT_SCORING_DATASET_REQUIRED_TAGS": "checked",
}


def _batch(number: int, tagged: bool = True) -> str:
    """A new scoring version, saved as the demo producer saves one; its id."""
    case = Case(f"batch-{number}", 50 + number, tags=("checked",) if tagged else (), scoring=True)
    return publish_scoring(case).split(" id ")[1].split()[0]


def _done(engine, key: str) -> bool:
    action = engine.ledger.action(key)
    return action is not None and action.state is ActionState.SUCCEEDED


def _inferences(engine) -> dict[str, str]:
    """Every inference in the ledger: key -> state."""
    return {
        a.key: a.state.value
        for state in ActionState
        for a in engine.ledger.actions_in(state, kind=ActionKind.INFER)
    }


def _served(key: str, model_version: str, dataset: str) -> None:
    """One completed run for the key, pinned to the model version, on that scoring dataset."""
    from zenml.client import Client

    (run,) = Client().list_pipeline_runs(tags=f"equals:{key}", hydrate=True).items
    assert run.status == "completed"
    assert str(run.model_version.id) == model_version
    assert run.config.parameters["inference_dataset_id"] == dataset
    assert {t.name for t in run.tags} >= {"autopilot", key, f"score:{dataset}"}


def _events(capsys) -> list[dict]:
    events = []
    for line in capsys.readouterr().out.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _a_lost_ledger_launches_nothing(state, capsys, scored: list[str]) -> None:
    """A fresh ledger started from the beginning on the same store: every scoring version is
    found scored in the store (a run tagged `score:<id>`), every action found done, nothing
    launched."""
    capsys.readouterr()
    fresh = make_engine(state, environ=SCORING)
    for _ in range(8):
        fresh.tick()
    wait_for(lambda: not fresh.executor.running_keys(), timeout=60, what="nothing running")
    events = _events(capsys)
    assert [e["key"] for e in events if e["event"].endswith(".launched")] == []
    found = {
        e["dataset_version_id"]
        for e in events
        if e["event"] == "dataset.selected" and e.get("found_in_store_run_id")
    }
    assert found == set(scored)
    fresh.executor.close()
    fresh.ledger.close()


def test_scoring_data_is_scored_once_by_production_and_a_production_change_scores_the_newest(
    zenml_store, tmp_path, capsys
):
    state = tmp_path / "state"
    engine = make_engine(state, environ=SCORING)

    # v1 goes to production before any scoring data: nothing to score yet, nothing claimed.
    launch_feature_engineering(training_tags=["approved"], random_state=10, label_noise=0.13)
    (v1,) = tick_until(engine, lambda: engine.store.production_versions(MODEL), "v1 promoted")
    tick_until(engine, lambda: engine.ledger.get_cursor("default/production:" + MODEL), "seen")
    assert _inferences(engine) == {}
    (nothing,) = [e for e in _events(capsys) if e["event"] == "inference.nothing_to_score"]
    assert nothing["model_version_id"] == v1.id

    # Three scoring versions while v1 is production: three inferences, each pinned to v1 and
    # given its own scoring version.
    batches = [_batch(n) for n in (1, 2, 3)]
    keys = [f"infer:{v1.id}@score:{batch}" for batch in batches]
    tick_until(engine, lambda: all(_done(engine, key) for key in keys), "three scorings")
    for key, batch in zip(keys, batches, strict=True):
        _served(key, v1.id, batch)
    # Lost now, the ledger is rebuilt from the store: v1's adopted promotion claims its
    # inference on the newest version, which v1 scored already (under another key).
    _a_lost_ledger_launches_nothing(tmp_path / "lost-1", capsys, batches)

    # A late tag: a version first seen without the required tag is skipped, then scored once
    # tagged (the reconciliation pass), like any late approval.
    late = _batch(4, tagged=False)
    tick_until(
        engine,
        lambda: (s := engine.ledger.subject("default", late)) and s.reason == "missing_tags",
        "the untagged version skipped",
    )
    from zenml import add_tags

    add_tags(tags=["checked"], artifact_version_id=UUID(late))
    late_key = f"infer:{v1.id}@score:{late}"
    tick_until(engine, lambda: _done(engine, late_key), "the late-tagged version scored")
    _served(late_key, v1.id, late)

    # v2 promoted: one inference, its production change's, on the newest scoring version.
    launch_feature_engineering(training_tags=["approved"], random_state=10)
    v2 = tick_until(
        engine,
        lambda: [v for v in engine.store.production_versions(MODEL) if v.id != v1.id],
        "v2 promoted",
    )[0]
    tick_until(engine, lambda: _done(engine, f"infer:{v2.id}"), "v2's inference")
    _served(f"infer:{v2.id}", v2.id, late)
    assert [k for k in _inferences(engine) if v2.id in k] == [f"infer:{v2.id}"]
    assert sorted(_inferences(engine)) == sorted([*keys, late_key, f"infer:{v2.id}"])

    # Recovery: the daemon dies after a scoring run completed, before it read the report.
    last = _batch(5)
    last_key = f"infer:{v2.id}@score:{last}"
    wait_for(
        lambda: [r for r in runs_for(engine, last_key) if r.status is RunStatus.SUCCEEDED],
        between=engine.tick,
        timeout=180,
        what="the last scoring run to complete",
    )
    engine.executor._workers.clear()  # its report is never read
    engine.ledger.close()
    everything = sorted([*keys, late_key, f"infer:{v2.id}", last_key])

    # A restart settles it from the store and redoes nothing.
    capsys.readouterr()
    restarted = make_engine(state, environ=SCORING)
    assert _done(restarted, last_key)
    for _ in range(5):
        restarted.tick()
    assert sorted(_inferences(restarted)) == everything
    assert all(state == "succeeded" for state in _inferences(restarted).values())
    assert not [e for e in _events(capsys) if e["event"].endswith(".launched")]
    # `explain` of a scoring version names its inferences; `status` the newest one.
    assert [a["key"] for a in explain(restarted.ledger, late)["actions"]] == [
        late_key,
        f"infer:{v2.id}",
    ]
    assert status(restarted.ledger)["newest_scoring_dataset"]["default"][
        "scoring_dataset_version_id"
    ] == (last)
    restarted.ledger.close()

    # Lost at the end: v1, no longer production, scores nothing new; nothing runs again.
    _a_lost_ledger_launches_nothing(tmp_path / "lost-2", capsys, [*batches, late, last])
    for key in everything:
        assert [r.status for r in runs_for(restarted, key)] == [RunStatus.SUCCEEDED]
