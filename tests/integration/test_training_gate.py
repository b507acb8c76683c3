"""Trigger policies for training (issue 20, section 3) and the training schedule, on a real
store with real training runs: a burst of five approved versions, under a debounce, a minimum
interval, latest-only and a schedule, with a restart in the middle of their waits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from service.core.actions import ActionState
from service.core.records import RunStatus
from service.operations import explain, status
from service.stages import gate_ledger
from service.stages.schedules import TRAINING
from tests.integration.engine_harness import (
    ManualClock,
    make_engine,
    restarted,
    runs_for,
    tick_until,
)

pytestmark = pytest.mark.integration

DATASET = "iris_training_dataset"
POLICIES = {
    "deb": {"TRAINING_DEBOUNCE_SECONDS": "10"},
    "min": {"TRAINING_MIN_INTERVAL_SECONDS": "10"},
    "latest": {"TRAINING_LATEST_ONLY": "true"},
    "sched": {"TRAINING_SCHEDULE": "every 20s", "TRAINING_SCHEDULE_ALWAYS": "true"},
}


def _automations() -> dict[str, str]:
    """Four automations on one artifact, one policy each; nothing is ever promoted (no
    inference to wait for)."""
    environ = {}
    for name, fields in POLICIES.items():
        prefix = f"AUTOPILOT_AUTOMATIONS__{name.upper()}__"
        environ |= {
            f"{prefix}DATASET_NAMES": DATASET,
            f"{prefix}MODEL_NAME": f"iris_{name}",
            f"{prefix}PROMOTION_THRESHOLD": "2",
        }
        environ |= {f"{prefix}{field}": value for field, value in fields.items()}
    return environ


def _publish() -> str:
    from sklearn.datasets import load_iris
    from zenml import save_artifact

    frame = load_iris(as_frame=True).frame
    return str(save_artifact(frame, name=DATASET, tags=["approved"]).id)


def _key(automation: str, version: str, fire: str | None = None) -> str:
    return f"train:{automation}:{version}" + (f"@fire:{fire}" if fire else "")


def _completed(engine: Any, key: str) -> int:
    return sum(run.status is RunStatus.SUCCEEDED for run in runs_for(engine, key))


def _state(engine: Any, key: str) -> ActionState | None:
    action = engine.ledger.action(key)
    return None if action is None else action.state


def test_a_burst_trains_the_newest_once_per_policy_and_a_restart_mid_wait_changes_nothing(
    zenml_store, tmp_path
):
    state_dir = tmp_path / "state"
    clock = ManualClock()
    engine = make_engine(state_dir, environ=_automations(), clock=clock)
    first = _publish()
    engine.datasets.tick()
    engine.gate.tick()  # not dispatched yet: the restart below finds no run going
    # No previous release: min and latest release the first version at once.
    assert {_state(engine, _key(a, first)) for a in ("min", "latest")} == {ActionState.PENDING}
    rest = [_publish() for _ in range(4)]
    burst = [first, *rest]
    newest = burst[-1]
    engine.datasets.tick()
    engine.gate.tick()

    # Everything else waits, in the ledger: the debounce on the newest's `created`, the minimum
    # interval on the first release, latest-only on the first training, the schedule on a fire.
    for automation, queued in (("deb", burst), ("min", rest), ("latest", rest), ("sched", burst)):
        assert {v.id for v in gate_ledger.queued(engine.ledger)[automation]} == set(queued)
    (deb,) = [
        g for g in explain(engine.ledger, rest[1])["training_gate"] if g["automation"] == "deb"
    ]
    assert deb["waiting_for"] == ["debounce"] and deb["newest_queued"] == newest
    gates = status(engine.ledger)["training_gates"]
    assert gates["latest"]["waiting_for"] == ["training_in_flight"]
    assert gates["sched"]["waiting_for"] == ["schedule"] and gates["sched"]["next_fire"]

    # A restart in the middle of every wait (no run going: nothing was dispatched). Every
    # stage and the ledger are new; the worker template is kept warm (it holds no decision).
    engine = restarted(engine)
    fire = clock.to_next_fire(20)

    def trained() -> bool:
        keys = [_key(a, newest) for a in POLICIES] + [_key(a, first) for a in ("min", "latest")]
        return all(_state(engine, key) is ActionState.SUCCEEDED for key in keys)

    tick_until(engine, trained, "the newest version trained under every policy")

    for automation in POLICIES:
        assert _completed(engine, _key(automation, newest)) == 1
    for automation in ("deb", "sched"):  # one training, on the newest; four superseded
        for old in burst[:-1]:
            action = engine.ledger.action(_key(automation, old))
            assert action.state is ActionState.SUPERSEDED
            assert action.details["superseded_by"] == newest
            assert runs_for(engine, _key(automation, old)) == []
    for automation in ("min", "latest"):  # the first at once, then the newest; three superseded
        assert _completed(engine, _key(automation, first)) == 1
        for old in rest[:-1]:
            assert _state(engine, _key(automation, old)) is ActionState.SUPERSEDED
            assert runs_for(engine, _key(automation, old)) == []
    assert status(engine.ledger)["actions_by_automation"]["deb"]["superseded"] == 4

    # Each wait measured what it says: the second release of `min` came 10 s after the first
    # on the store's clock; `latest` released the newest only after the first training ended.
    def released(automation: str, version: str) -> datetime:
        return datetime.fromisoformat(
            engine.ledger.action(_key(automation, version)).details["released_at"]
        )

    assert (released("min", newest) - released("min", first)).total_seconds() >= 10
    (first_run,) = runs_for(engine, _key("latest", first))
    assert released("latest", newest) >= first_run.end_time
    # The schedule trained at its fire, once; `explain` says why the others did not train.
    assert engine.ledger.action(_key("sched", newest)).details["fire"] == fire
    (superseded,) = [
        a for a in explain(engine.ledger, rest[0])["actions"] if a["automation"] == "sched"
    ]
    assert (superseded["state"], superseded["superseded_by"]) == ("superseded", newest)

    # The next fire, with nothing new: `TRAINING_SCHEDULE_ALWAYS` retrains the newest, once.
    second = clock.to_next_fire(20)
    retrain = _key("sched", newest, second)
    tick_until(engine, lambda: _state(engine, retrain) is ActionState.SUCCEEDED, "the retrain")
    for _ in range(3):
        engine.tick()
    assert _completed(engine, retrain) == 1
    fires = gate_ledger.fires(engine.ledger, "sched", TRAINING)
    assert [(f.outcome, f.key) for f in fires] == [
        ("fired", retrain),
        ("fired", _key("sched", newest)),
    ]


def test_versions_queued_when_a_policy_is_removed_train_each_once(zenml_store, tmp_path):
    """An automation restarted without the policy it queued versions under trains each of them,
    as it would any selected version without one: none waits for ever."""
    environ = {"AUTOPILOT_TRAINING_DEBOUNCE_SECONDS": "3600"}
    engine = make_engine(tmp_path / "state", environ=environ)
    waiting = [_publish(), _publish()]
    engine.datasets.tick()
    engine.gate.tick()
    assert len(gate_ledger.queued(engine.ledger)["default"]) == 2
    engine = restarted(engine, environ={"AUTOPILOT_START_FROM": "beginning"})
    assert gate_ledger.queued(engine.ledger) == {}
    for version in waiting:
        assert _state(engine, f"train:{version}") is ActionState.PENDING
