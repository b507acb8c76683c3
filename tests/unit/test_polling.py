from datetime import datetime, timedelta

from service.core.polling import (
    LOOKBACK,
    NUMBER_AHEAD,
    NUMBER_MARGIN,
    NUMBER_SPAN,
    PollGroup,
    Polls,
    Seen,
    format_floor,
    lowest_number,
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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _no_store_top(name: str) -> int | None:
    raise AssertionError(f"the store was asked for the highest number of {name}")


def test_the_first_tick_sweeps_from_the_stored_floors_then_fast_reads_until_an_interval_passed():
    clock = Clock()
    polls = Polls(sweep_interval=60, clock=clock)
    floors = {"a": T, "b": T}
    sweep, groups = polls.plan(floors, _no_store_top)
    assert sweep and groups == [PollGroup(("a", "b"), T)]  # no number bound: the full read
    polls.seen.observe(T + LOOKBACK * 2, "a", 500)
    polls.seen.observe(T + LOOKBACK * 2, "b", 520)
    for group in groups:
        polls.read(group, T + LOOKBACK * 2)
    polls.swept()
    clock.now = 59.0
    sweep, groups = polls.plan(floors, _no_store_top)
    # from the fast floor, and numbered from the lower name's highest less the margin
    assert not sweep and groups == [PollGroup(("a", "b"), T + LOOKBACK, 500 - NUMBER_MARGIN)]
    clock.now = 60.0
    sweep, groups = polls.plan(floors, _no_store_top)
    assert sweep and groups == [PollGroup(("a", "b"), T)]  # the stored floors, unchanged


def test_a_fast_read_asks_the_store_once_for_the_highest_number_of_a_name_it_read_none_of():
    polls = Polls(sweep_interval=60, clock=Clock())
    polls.plan({"a": T, "b": T}, _no_store_top)
    polls.swept()  # the sweep read nothing: the tops are unknown
    asked: list[str] = []

    def store_top(name: str) -> int | None:
        asked.append(name)
        return {"a": 40_000}.get(name)  # b has no numbered version

    groups = polls.plan({"a": T, "b": T}, store_top)[1]
    assert sorted(asked) == ["a", "b"]
    assert groups == [
        PollGroup(("b",), T, 0),  # its first number will be 1
        PollGroup(("a",), T, 40_000 - NUMBER_MARGIN),
    ]
    polls.plan({"a": T, "b": T}, store_top)
    assert len(asked) == 2  # known since, and raised by every number read


def test_fast_reads_share_a_query_while_the_names_lowest_numbers_are_close():
    tops = {"a": 10, "b": NUMBER_SPAN + NUMBER_MARGIN, "c": NUMBER_SPAN + NUMBER_MARGIN + 1}
    floors = {"a": T, "b": T + timedelta(seconds=1), "c": T}
    assert plan_polls(floors, tops) == [
        PollGroup(("a", "b"), T, 0),  # b's lowest is within the span of a's: read from a's
        PollGroup(("c",), T, NUMBER_SPAN + 1),
    ]
    assert lowest_number(5) == 0 and lowest_number(1_000) == 1_000 - NUMBER_MARGIN


def test_a_fast_floor_rises_after_each_read_and_a_sweep_starts_from_the_stored_one():
    clock = Clock()
    polls = Polls(sweep_interval=60, clock=clock)
    polls.plan({"a": None}, _no_store_top)
    polls.seen.observe(T, "a", 7)
    polls.read(PollGroup(("a",), None), newest_before=None)  # nothing known before: stays
    polls.swept()
    (group,) = polls.plan({"a": None}, _no_store_top)[1]
    assert group == PollGroup(("a",), None, 0)
    polls.read(group, newest_before=T)
    (group,) = polls.plan({"a": None}, _no_store_top)[1]
    assert group.since == T - LOOKBACK
    polls.sweep_next()
    assert polls.plan({"a": None}, _no_store_top) == (True, [PollGroup(("a",), None)])


def test_seen_keeps_the_highest_number_read_per_name():
    seen = Seen()
    seen.observe(T, "a", 3)
    seen.observe(T, "a", 2)  # a lower number read later (reused, or saved explicitly)
    seen.observe(T, "b", None)  # a custom name
    assert seen.top("a") == 3 and seen.top("b") is None


def test_names_numbered_above_number_only_from_are_read_by_numbers_alone_in_groups_of_their_own():
    """A model numbered high is read without its name (SQLite would read all its versions for
    a name filter, core/polling): a number window closed NUMBER_AHEAD above the highest top."""
    tops = {"a": 1_000, "b": 1_001, "c": 1_500}
    floors = {name: T for name in tops}
    assert plan_polls(floors, tops) == [PollGroup(("a", "b", "c"), T, 1_000 - NUMBER_MARGIN)]
    assert plan_polls(floors, tops, number_only_from=1_000) == [
        PollGroup(("a",), T, 1_000 - NUMBER_MARGIN),  # the name filter reads at most 1,000
        PollGroup(("b", "c"), T, 1_001 - NUMBER_MARGIN, 1_500 + NUMBER_AHEAD),
    ]
    polls = Polls(sweep_interval=60, clock=Clock(), number_only_from=1_000)
    polls.plan(floors, _no_store_top)
    polls.swept()
    assert polls.plan(floors, tops.get)[1] == plan_polls(floors, tops, number_only_from=1_000)


def test_seen_tells_which_known_versions_a_read_lists_and_forgets_a_deleted_one():
    seen = Seen()
    seen.add("a", "old", T - timedelta(minutes=5), 1)
    seen.add("a", "numbered", T, 7)
    seen.add("a", "custom", T, None)
    seen.add("b", "other", T + timedelta(seconds=1), 9)
    assert seen.known(["a", "b"], T, 5) == {"numbered": "a", "other": "b"}
    assert seen.known(["a", "b"], T, 8) == {"other": "b"}
    assert seen.known(["a"], T, None) == {"custom": "a"}  # the unnumbered query's
    assert seen.known(["a"], None, 0) == {"old": "a", "numbered": "a"}
    seen.forget("a", "numbered")
    assert seen.known(["a", "b"], T, 5) == {"other": "b"} and not seen.knows("a", "numbered")
