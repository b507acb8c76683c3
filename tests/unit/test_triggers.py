"""The training gate's decision (core/triggers.py): which queued version trains, which are
superseded, and what the others wait for."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from service.core.schedule import parse_schedule
from service.core.triggers import (
    NOTHING_NEW,
    NOTHING_SELECTED_YET,
    OVERLAP,
    Candidate,
    GateDecision,
    GateView,
    TrainingPolicy,
    Wait,
    decide,
)

T0 = datetime(2026, 12, 7, 10, 0, 0)


def version(name: str, seconds: float) -> Candidate:
    return Candidate(name, T0 + timedelta(seconds=seconds))


BURST = [version(f"v{i}", i) for i in range(1, 6)]  # v1..v5, a second apart


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_no_policy_is_no_gate():
    assert not TrainingPolicy().gated
    assert TrainingPolicy(latest_only=True).gated
    assert TrainingPolicy(debounce_seconds=1).gated and TrainingPolicy(debounce_seconds=1).timed
    assert TrainingPolicy(schedule=parse_schedule("every 1h")).gated
    assert not TrainingPolicy(schedule=parse_schedule("every 1h")).timed


def test_debounce_waits_for_quiet_then_trains_the_newest_and_supersedes_the_rest():
    policy = TrainingPolicy(debounce_seconds=10)
    waiting = decide(policy, GateView(BURST, store_now=at(14)))
    assert waiting == GateDecision(waiting_for=(Wait.DEBOUNCE,), until=at(15))
    released = decide(policy, GateView(BURST, store_now=at(15)))
    assert released.release == BURST[-1]
    assert released.superseded == tuple(reversed(BURST[:-1]))


def test_the_newest_is_the_latest_created_whatever_the_order_queued():
    shuffled = [BURST[3], BURST[0], BURST[4], BURST[2], BURST[1]]
    decision = decide(TrainingPolicy(latest_only=True), GateView(shuffled))
    assert decision.release == BURST[4] and len(decision.superseded) == 4
    same_second = [Candidate("b", T0), Candidate("a", T0)]  # MySQL keeps whole seconds
    assert decide(TrainingPolicy(latest_only=True), GateView(same_second)).release == same_second[0]


def test_min_interval_counts_from_the_last_release_on_the_stores_clock():
    policy = TrainingPolicy(min_interval_seconds=60)
    first = decide(policy, GateView(BURST[:1], store_now=at(1), last_release=None))
    assert first.release == BURST[0]
    held = decide(policy, GateView(BURST[1:], store_now=at(30), last_release=at(1)))
    assert held == GateDecision(waiting_for=(Wait.MIN_INTERVAL,), until=at(61))
    later = decide(policy, GateView(BURST[1:], store_now=at(61), last_release=at(1)))
    assert later.release == BURST[-1] and len(later.superseded) == 3


def test_latest_only_waits_while_a_training_of_the_automation_is_in_flight():
    policy = TrainingPolicy(latest_only=True)
    held = decide(policy, GateView(BURST, in_flight=True))
    assert held == GateDecision(waiting_for=(Wait.TRAINING_IN_FLIGHT,))
    assert decide(policy, GateView(BURST, in_flight=False)).release == BURST[-1]
    # in flight holds nothing back without latest_only
    assert decide(
        TrainingPolicy(debounce_seconds=1), GateView(BURST, store_now=at(9), in_flight=True)
    ).release


def test_every_policy_must_let_it_and_the_wait_ends_with_the_last_of_them():
    policy = TrainingPolicy(debounce_seconds=10, min_interval_seconds=60, latest_only=True)
    view = GateView(BURST, store_now=at(20), last_release=at(0), in_flight=True)
    decision = decide(policy, view)
    assert decision.waiting_for == (Wait.MIN_INTERVAL, Wait.TRAINING_IN_FLIGHT)
    assert decision.until == at(60)
    view = GateView(BURST, store_now=at(60), last_release=at(0), in_flight=False)
    assert decide(policy, view).release == BURST[-1]


def test_a_timed_policy_needs_the_stores_clock():
    with pytest.raises(ValueError, match="store's clock"):
        decide(TrainingPolicy(debounce_seconds=5), GateView(BURST))


SCHEDULED = TrainingPolicy(schedule=parse_schedule("every 20s"))


def test_a_schedule_trains_the_newest_queued_at_its_fire_only():
    assert decide(SCHEDULED, GateView(BURST)) == GateDecision(waiting_for=(Wait.SCHEDULE,))
    fired = decide(SCHEDULED, GateView(BURST, fire=at(20)))
    assert fired.release == BURST[-1] and len(fired.superseded) == 4 and not fired.fire_skipped


def test_a_fire_with_nothing_new_is_skipped_unless_always_retrains_the_newest_trained():
    assert decide(SCHEDULED, GateView([], fire=at(20))).fire_skipped == NOTHING_NEW
    assert decide(SCHEDULED, GateView([])) == GateDecision()  # no fire: nothing to say
    always = TrainingPolicy(schedule=SCHEDULED.schedule, schedule_always=True)
    none_yet = decide(always, GateView([], fire=at(20)))
    assert none_yet.fire_skipped == NOTHING_SELECTED_YET and none_yet.retrain is None
    retrain = decide(always, GateView([], fire=at(20), newest_trained=BURST[2]))
    assert retrain.retrain == BURST[2] and retrain.release is None


def test_a_fire_while_the_previous_fires_training_runs_is_skipped_as_overlap():
    decision = decide(SCHEDULED, GateView(BURST, fire=at(40), fire_overlaps=True))
    assert decision.fire_skipped == OVERLAP and decision.release is None
    assert decision.waiting_for == (Wait.SCHEDULE,)
    always = TrainingPolicy(schedule=SCHEDULED.schedule, schedule_always=True)
    retrain = GateView([], fire=at(40), fire_overlaps=True, newest_trained=BURST[0])
    assert decide(always, retrain).fire_skipped == OVERLAP


def test_a_fire_the_other_policies_hold_back_is_skipped_with_their_reason():
    policy = TrainingPolicy(schedule=SCHEDULED.schedule, debounce_seconds=30)
    decision = decide(policy, GateView(BURST, store_now=at(20), fire=at(20)))
    assert decision.fire_skipped == "debounce" and decision.release is None
    assert decision.waiting_for == (Wait.SCHEDULE, Wait.DEBOUNCE)
    always = TrainingPolicy(
        schedule=SCHEDULED.schedule, schedule_always=True, min_interval_seconds=60
    )
    held = GateView([], store_now=at(20), last_release=at(0), fire=at(20), newest_trained=BURST[0])
    assert decide(always, held).fire_skipped == "min_interval"
