from datetime import datetime, timedelta

from service.core.polling import (
    LOOKBACK,
    PollGroup,
    Seen,
    format_floor,
    parse_floor,
    plan_polls,
    raised_floor,
)

T = datetime(2026, 11, 27, 12, 0, 0)


def test_floors_that_caught_up_together_are_one_query():
    floors = {f"dataset_{i}": T for i in range(50)}
    (group,) = plan_polls(floors)
    assert group.since == T and len(group.names) == 50


def test_a_group_rereads_at_most_the_lookback_of_a_name():
    floors = {
        "a": None,
        "b": None,
        "c": T,
        "d": T + LOOKBACK,
        "e": T + LOOKBACK + timedelta(seconds=1),
    }
    assert plan_polls(floors) == [
        PollGroup(("a", "b"), None),  # from the beginning
        PollGroup(("c", "d"), T),  # d's judged versions of one lookback read again
        PollGroup(("e",), T + LOOKBACK + timedelta(seconds=1)),
    ]


def test_every_name_is_polled_from_at_or_below_its_floor():
    floors = {f"n{i}": T + timedelta(seconds=(i * 97) % 600) for i in range(30)}
    groups = plan_polls(floors)
    assert sorted(n for g in groups for n in g.names) == sorted(floors)
    for group in groups:
        assert group.since is not None
        assert all(group.since <= floors[name] <= group.since + LOOKBACK for name in group.names)


def test_a_floor_rises_to_a_lookback_below_what_was_known_before_the_read_and_never_falls():
    assert raised_floor(None, None) is None  # nothing read from the store yet: stays
    assert raised_floor(None, T) == T - LOOKBACK
    assert raised_floor(T, T) == T  # would fall: stays
    assert raised_floor(T - LOOKBACK * 3, T) == T - LOOKBACK


def test_seen_keeps_judged_versions_only_down_to_the_floor():
    seen = Seen()
    seen.add("a", "old", T - timedelta(minutes=10))
    seen.add("a", "new", T)
    seen.observe(T - timedelta(hours=1))  # an older created does not lower the newest
    assert seen.newest == T
    assert seen.knows("a", "old") and not seen.knows("b", "old")
    seen.forget_below("a", T - timedelta(minutes=1))
    assert not seen.knows("a", "old") and seen.knows("a", "new")


def test_a_floor_is_stored_with_microseconds_and_an_old_number_is_recognised():
    floor = T + timedelta(microseconds=1)
    assert parse_floor(format_floor(floor)) == floor
    assert parse_floor(format_floor(None)) is None and parse_floor(None) is None
    assert parse_floor("17") == 17  # a cursor written before floors: upgraded at start
