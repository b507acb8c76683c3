from datetime import datetime

import pytest

from service.core.actions import (
    ActionKind,
    ActionState,
    IllegalTransition,
    ParsedKey,
    action_key,
    check_transition,
    parse_action_key,
    run_tags,
)
from service.core.retry import RetryPolicy
from service.core.startup import StartFrom


def test_start_from_now_skips_everything_that_already_exists():
    assert StartFrom(mode="now").skips(datetime(2999, 1, 1))


def test_start_from_beginning_skips_nothing():
    assert not StartFrom(mode="beginning").skips(datetime(1999, 1, 1))


def test_start_from_a_time_skips_only_what_came_before_it():
    start = StartFrom(since=datetime(2026, 6, 1))
    assert start.skips(datetime(2026, 5, 31, 23, 59, 59))
    assert not start.skips(datetime(2026, 6, 1))


def test_a_first_start_from_now_floors_at_the_newest_version_itself():
    """A store that keeps `created` to the second (MySQL) gives a version created later in the
    newest one's second the very same `created`: it must be at or above the first floor."""
    newest = datetime(2026, 6, 1, 12, 0, 5)
    floor = StartFrom(mode="now").first_floor(newest)
    same_second_later = datetime(2026, 6, 1, 12, 0, 5)
    assert floor is not None and same_second_later >= floor
    assert StartFrom(mode="now").first_floor(None) is None  # nothing yet: from the beginning
    assert StartFrom(mode="beginning").first_floor(newest) is None
    since = datetime(2026, 1, 1)
    assert StartFrom(since=since).first_floor(newest) == since


def test_retry_backoff_doubles_and_stops_after_the_last_attempt():
    policy = RetryPolicy(max_attempts=4, base_delay_seconds=5)
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [5, 10, 20, None]


def test_retry_backoff_is_capped():
    policy = RetryPolicy(max_attempts=50, base_delay_seconds=5, max_delay_seconds=60)
    assert policy.delay_after(20) == 60


def test_a_single_attempt_is_never_retried():
    assert RetryPolicy(max_attempts=1, base_delay_seconds=5).delay_after(1) is None


def test_action_keys_round_trip_and_tag_the_run():
    key = action_key(ActionKind.TRAIN, "1234")
    assert key == "train:1234"
    assert parse_action_key(key) == ParsedKey(ActionKind.TRAIN, "1234", "default")
    assert run_tags(key) == ["autopilot", "train:1234"]


def test_a_training_key_names_its_automation_unless_default():
    churn = action_key(ActionKind.TRAIN, "1234", "churn")
    assert churn == "train:churn:1234"
    assert parse_action_key(churn) == ParsedKey(ActionKind.TRAIN, "1234", "churn")
    # A model belongs to one automation: its keys need no name, and parse without one.
    assert action_key(ActionKind.INFER, "mv", "churn") == "infer:mv"
    assert parse_action_key("infer:mv") == ParsedKey(ActionKind.INFER, "mv", None)


def test_a_qualifier_tells_apart_several_actions_on_one_subject():
    again = action_key(ActionKind.INFER, "mv", qualifier="2")
    assert again == "infer:mv@2"
    assert parse_action_key(again) == ParsedKey(ActionKind.INFER, "mv", None, "2")
    scored = action_key(ActionKind.INFER, "mv", qualifier="score:ds")
    assert parse_action_key(scored) == ParsedKey(ActionKind.INFER, "mv", None, "score:ds")
    fired = action_key(ActionKind.TRAIN, "ds", "churn", qualifier="fire:2026-12-07T10:00:20Z")
    assert fired == "train:churn:ds@fire:2026-12-07T10:00:20Z"
    assert parse_action_key(fired) == ParsedKey(
        ActionKind.TRAIN, "ds", "churn", "fire:2026-12-07T10:00:20Z"
    )
    assert parse_action_key("evaluate:mv@ds") == ParsedKey(ActionKind.EVALUATE, "mv", None, "ds")


@pytest.mark.parametrize("bad", ["train", "train:", "retrain:123", "", "infer:mv@"])
def test_malformed_action_keys_are_refused_with_the_expected_form(bad):
    with pytest.raises(ValueError, match=r"key|kind|qualifier"):
        parse_action_key(bad)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (ActionState.PENDING, ActionState.RUNNING),
        (ActionState.RUNNING, ActionState.SUCCEEDED),
        (ActionState.RUNNING, ActionState.RETRY_WAIT),
        (ActionState.RETRY_WAIT, ActionState.PENDING),
        (ActionState.RUNNING, ActionState.FAILED),
        (ActionState.FAILED, ActionState.PENDING),
    ],
)
def test_life_cycle_allows_the_normal_path(old, new):
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (ActionState.SUCCEEDED, ActionState.PENDING),  # a success is never redone
        (ActionState.SUCCEEDED, ActionState.RUNNING),
        (ActionState.PENDING, ActionState.RETRY_WAIT),
        (ActionState.RETRY_WAIT, ActionState.RUNNING),  # a retry is pending before it runs
    ],
)
def test_life_cycle_refuses_what_would_act_twice(old, new):
    with pytest.raises(IllegalTransition):
        check_transition(old, new)
