"""Schedules: crontab and `every` specs in UTC, and which fire a tick acts on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.core.schedule import Catchup, FirePlan, parse_schedule, plan_fires


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_is_anchored_at_the_epoch_so_fire_times_survive_a_restart():
    schedule = parse_schedule("every 20s")
    assert schedule.next_fire(at("2026-12-07 10:00:05")) == at("2026-12-07 10:00:20")
    assert schedule.next_fire(at("2026-12-07 10:00:20")) == at("2026-12-07 10:00:40")
    assert parse_schedule("every 2h").next_fire(at("2026-12-07 09:59:00")) == at(
        "2026-12-07 10:00:00"
    )
    assert parse_schedule("EVERY 5 m").spec == "EVERY 5 m"


def test_crontab_weekdays_are_crontabs_not_apschedulers():
    # 1-5 is Monday to Friday in a crontab; APScheduler 3 alone would read Tuesday-Saturday.
    weekdays = parse_schedule("0 6 * * 1-5")
    friday_evening = at("2026-12-04 18:00:00")  # a Friday
    assert weekdays.next_fire(friday_evening) == at("2026-12-07 06:00:00")  # Monday
    sunday = parse_schedule("30 8 * * 0")
    assert sunday.next_fire(friday_evening) == at("2026-12-06 08:30:00")
    assert parse_schedule("30 8 * * 7").next_fire(friday_evening) == at("2026-12-06 08:30:00")
    every_other = parse_schedule("0 0 * * */2")  # Sunday, Tuesday, Thursday, Saturday
    fires = []
    moment = at("2026-12-06 00:00:00")  # a Sunday, exclusive
    for _ in range(4):
        moment = every_other.next_fire(moment)
        fires.append(moment.strftime("%a"))
    assert fires == ["Tue", "Thu", "Sat", "Sun"]
    assert parse_schedule("0 0 * * mon,wed").next_fire(friday_evening) == at("2026-12-07 00:00:00")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("every 0s", "at least 1s"),
        ("every 10 days", "five fields"),
        ("0 6 * *", "five fields"),
        ("61 * * * *", "61"),
        ("0 6 * * 8", "0-7"),
        ("0 6 * * 5-1", "backwards"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(spec, says):
    with pytest.raises(ValueError, match=says):
        parse_schedule(spec)


STARTED = at("2026-12-07 10:00:00")


def test_nothing_is_due_before_the_next_fire():
    schedule = parse_schedule("every 20s")
    plan = plan_fires(schedule, STARTED, STARTED, at("2026-12-07 10:00:19"), Catchup.LATEST)
    assert plan == FirePlan(None)


def test_a_due_fire_is_acted_on_once_then_recorded_as_handled():
    schedule = parse_schedule("every 20s")
    now = at("2026-12-07 10:00:21")
    plan = plan_fires(schedule, STARTED, STARTED, now, Catchup.LATEST)
    assert plan == FirePlan(at("2026-12-07 10:00:20"), handled_through=at("2026-12-07 10:00:20"))
    again = plan_fires(schedule, plan.handled_through, STARTED, now, Catchup.LATEST)
    assert again.fire is None


def test_fires_due_together_while_running_are_coalesced_into_the_latest():
    schedule = parse_schedule("every 20s")
    plan = plan_fires(schedule, STARTED, STARTED, at("2026-12-07 10:01:05"), Catchup.NONE)
    assert plan.fire == at("2026-12-07 10:01:00") and plan.coalesced == 2


@pytest.mark.parametrize("catchup", list(Catchup))
def test_fires_missed_while_down_run_once_or_not_at_all(catchup):
    schedule = parse_schedule("every 20s")
    last = at("2026-12-07 10:00:20")
    restarted = last + timedelta(seconds=70)  # 10:01:30: fires at :40, :00, :20 missed
    plan = plan_fires(schedule, last, restarted, restarted + timedelta(seconds=1), catchup)
    if catchup is Catchup.LATEST:
        assert plan == FirePlan(at("2026-12-07 10:01:20"), missed=2, handled_through=plan.fire)
    else:
        assert plan == FirePlan(None, missed=3, handled_through=at("2026-12-07 10:01:20"))


def test_a_live_fire_after_a_restart_wins_over_the_missed_ones():
    schedule = parse_schedule("every 20s")
    last = at("2026-12-07 10:00:20")
    restarted = at("2026-12-07 10:01:30")
    plan = plan_fires(schedule, last, restarted, at("2026-12-07 10:01:41"), Catchup.LATEST)
    assert plan.fire == at("2026-12-07 10:01:40") and plan.missed == 3


def test_a_crontab_missed_for_a_week_is_counted_not_stepped_for_ever():
    schedule = parse_schedule("* * * * *")
    last = at("2026-11-01 00:00:00")
    restarted = at("2026-12-07 10:00:30")
    plan = plan_fires(schedule, last, restarted, restarted, Catchup.LATEST)
    assert plan.fire == at("2026-12-07 10:00:00")  # the last missed fire, not the 20,000th
    assert plan.missed >= 19_999
