"""How to see every new version of the watched artifacts and models, in few store queries.

A stream's cursor is a *floor* in the store's own time: every version of its name created
before the floor has been judged. A read lists the versions created at or after a floor and
judges those not judged yet (a version is known by its id, never by its number: ZenML reuses
the number of a deleted newest version, and a version saved under a custom name has none).

After a complete read a floor moves up to `LOOKBACK` before the newest `created` the daemon had
read from the store before that read, never further: a version is committed a moment after its
`created` is set, so one created a little earlier than another may appear later. A version
committed more than `LOOKBACK` after it was created would be missed; that is far beyond a
commit's time, and beyond the clock skew of machines writing to one SQL store.

Two kinds of read, because ZenML 0.98 has no index on `created` (`artifact_version` has one on
`(artifact_id, version_number)`): a `created >= floor` filter alone makes the database read
every version of the name, so a read costs time in proportion to the store.

- A *sweep* is that read, from the stored floors (the ledger's cursors). It is the one read
  correctness rests on, and the only one that moves the stored floors up. One runs at the first
  tick and then once per `AUTOPILOT_RECONCILE_INTERVAL_SECONDS`.
- Every other tick makes a *fast read*: `created >= fast floor` and `number >= lowest`, plus,
  for artifacts, `version_number isnull` (versions with a custom name have no number) with the
  same `created` condition. The number condition lets the database walk the index from
  `lowest` up; the `created` one keeps the floor's exact meaning. The fast floor is kept in
  memory only, and rises after each fast read as above.

Why `lowest = top - NUMBER_MARGIN` catches new versions, `top` being the highest number the
daemon has read for the name (or, before it read any, the store's highest): ZenML numbers a
version saved without an explicit version `max(number of the name) + 1` (`_get_next_numeric_
version_for_artifact`; model versions alike). The version numbered `top` existed; as long as
it, or any version numbered `top - NUMBER_MARGIN - 1` or above, is still there, the max is at
least that, so the next number is at least `lowest`. Numbers are only ever reused at the top:
it takes deleting every version numbered from `top - NUMBER_MARGIN - 1` to `top` (the newest
`NUMBER_MARGIN + 2`, or fewer where numbers were already missing) before a save for the next
one to fall below `lowest`. Such a version, and one saved under an explicit number below
`lowest` (`version="42"`), the fast read does not see: the next sweep judges it, at most one
sweep interval and a tick later. That holds whatever the fast reads did, since the stored floor
rises only at a sweep and by the rule above: a version committed after one sweep's query is at
or above the next sweep's floor. Nothing depends on the margin for correctness; it decides
only how soon.

Models need one more step on SQLite. `model_version` has unique indexes on `(number, model_id)`,
`(name, model_id)` and `(model_id, producer_run_id_if_numeric)`; given `model_id = ?` (ZenML's
`model=` filter, a join on `model`) SQLite always walks the last one, every version of the model,
whatever the number condition (`EXPLAIN QUERY PLAN`: `SEARCH model_version USING INDEX
sqlite_autoindex_model_version_4 (model_id=?)`); it walks `(number, model_id)` only for a
number condition without a model one. So a model with more than `NUMBER_ONLY_FROM` versions
(`top` above it) is read by numbers alone: `number >= lowest AND number <= top +
NUMBER_AHEAD` and `created >= fast floor`, any model's; the rows of other models are dropped.
That reads the versions numbered in that window of every model that has them (the index range),
at most `NUMBER_MARGIN + NUMBER_AHEAD` (and `NUMBER_SPAN` in a group) of each, none of the
watched model's older ones. A model's numbers are consecutive above its highest (ZenML numbers
each new version `max + 1` and a model version cannot choose its number), so when the read finds
a group's name at the upper bound, it reads the next `NUMBER_AHEAD` numbers, and so on. A model
with fewer versions keeps the name filter: reading all of them costs less than the window of
every other model that numbers as high. Artifacts need none of this: their index leads with
`artifact_id`.

Floors are compared in the store's clock only (`created` values it wrote), never the daemon's.
Names whose floors are close share one query (`artifact=oneof:[...]`); in a fast read, names
whose `lowest` are close too (`NUMBER_SPAN`). After a tick every floor has caught up to the same
point, so an idle daemon makes one query per kind (two for artifacts: numbered, unnumbered).

An idle fast read would still list every version in its window again: its names' last
`LOOKBACK`, and, for a name in a group read from a lower floor than its own, its versions
between the two, which it leaves; ZenML builds each listed artifact version with a query for
its producer (about 1,000 versions a tick with 50 spread floors, BENCHMARKS.md section 6). So
each query of an artifacts' fast read first asks for its count and newest version (a page of
one): when the count is that of the versions the daemon read before in that window (`Seen.known`,
by `created` and number) and the newest is one of them, nothing is new and nothing is listed;
otherwise the query lists in full as above, and known versions it no longer lists (deleted)
are forgotten. A version created now is the newest; the check misses only one committed late
(created before the newest known one) at the moment a known one in the same window was
deleted, and the next sweep judges it. Model versions are listed without a query per row and
are not checked so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

LOOKBACK = timedelta(seconds=120)
# Numbers below a name's highest that a fast read still reads (module docstring): the newest
# versions a person may delete before saving a new one that the fast read still sees. Each
# costs the database one index entry and one row a fast read; 100 is a fraction of a ms.
NUMBER_MARGIN = 100
# Names share a fast read while their lowest numbers lie this close: a name then reads at most
# this many more of its old versions' rows, far cheaper than a query of its own.
NUMBER_SPAN = 1_000
# Models with more versions than this are read by numbers alone, without the model filter that
# makes SQLite read every version of the model (module docstring). Below it, that read costs
# less than reading the window of every model numbered as high.
NUMBER_ONLY_FROM = 1_000
# Numbers above a name's highest that a read by numbers alone reads at once (then the next as
# many while the last is found).
NUMBER_AHEAD = 100
_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class PollGroup:
    names: tuple[str, ...]
    since: datetime | None  # read every version created at or after this; None: every one
    # A fast read: only versions numbered from here up, and (artifacts) those without a number.
    # None: a sweep, every version from `since`.
    min_number: int | None = None
    # A read by numbers alone: every name's versions numbered `min_number` to `max_number`, those
    # of the group's names kept. None: the group's names' versions from `min_number` up.
    max_number: int | None = None


def plan_polls(
    floors: Mapping[str, datetime | None],
    tops: Mapping[str, int] | None = None,
    number_only_from: int | None = None,
) -> list[PollGroup]:
    """Group names so that a group's query reads at most `LOOKBACK` of a name's judged
    versions again: names whose floors lie within `LOOKBACK` of the group's lowest. With
    `tops` (the highest number known per name), fast reads: each group split further so that
    its names' lowest numbers lie within `NUMBER_SPAN` of each other; with `number_only_from`,
    names whose highest number is above it read by numbers alone, in groups of their own."""
    groups = _by_floor(floors)
    if tops is None:
        return groups
    return [part for group in groups for part in _by_number(group, floors, tops, number_only_from)]


def lowest_number(top: int) -> int:
    """The lowest number a fast read reads of a name whose highest known number is `top`."""
    return max(0, top - NUMBER_MARGIN)


def _by_number(
    group: PollGroup,
    floors: Mapping[str, datetime | None],
    tops: Mapping[str, int],
    number_only_from: int | None,
) -> list[PollGroup]:
    def number_only(name: str) -> bool:
        return number_only_from is not None and tops[name] > number_only_from

    parts: list[PollGroup] = []
    names: list[str] = []
    for name in sorted(group.names, key=lambda n: (tops[n], n)):
        if names and (
            lowest_number(tops[name]) - lowest_number(tops[names[0]]) > NUMBER_SPAN
            or number_only(name) != number_only(names[0])
        ):
            parts.append(_fast_group(names, floors, tops, number_only(names[0])))
            names = []
        names.append(name)
    parts.append(_fast_group(names, floors, tops, number_only(names[0])))
    return parts


def _fast_group(
    names: list[str],
    floors: Mapping[str, datetime | None],
    tops: Mapping[str, int],
    number_only: bool,
) -> PollGroup:
    listed = [floors[n] for n in names]
    since = None if None in listed else min(f for f in listed if f is not None)
    highest = tops[names[-1]] + NUMBER_AHEAD if number_only else None
    return PollGroup(tuple(names), since, lowest_number(tops[names[0]]), highest)


def _by_floor(floors: Mapping[str, datetime | None]) -> list[PollGroup]:
    groups: list[PollGroup] = []
    ordered = sorted(floors.items(), key=lambda item: (item[1] or datetime.min, item[0]))
    names: list[str] = []
    since: datetime | None = None
    for name, floor in ordered:
        if names and not _close(since, floor):
            groups.append(PollGroup(tuple(names), since))
            names = []
        if not names:
            since = floor
        names.append(name)
    if names:
        groups.append(PollGroup(tuple(names), since))
    return groups


def _close(lowest: datetime | None, floor: datetime | None) -> bool:
    if lowest is None or floor is None:
        return lowest is None and floor is None
    return floor - lowest <= LOOKBACK


class Seen:
    """What the daemon has read of the store: the newest `created` (the store's clock), the
    highest number per name, and the versions read since their name's floor went below them
    that were judged (or left below a floor) and committed, by id, with their `created` and
    number."""

    def __init__(self) -> None:
        self.newest: datetime | None = None
        # name -> version id -> (created, number or None)
        self._judged: dict[str, dict[str, tuple[datetime, int | None]]] = {}
        self._tops: dict[str, int] = {}  # name -> highest version number read

    def observe(
        self, created: datetime, name: str | None = None, number: int | None = None
    ) -> None:
        if self.newest is None or created > self.newest:
            self.newest = created
        if name is not None and number is not None:
            self.note_top(name, number)

    def note_top(self, name: str, number: int) -> None:
        if number > self._tops.get(name, -1):
            self._tops[name] = number

    def top(self, name: str) -> int | None:
        return self._tops.get(name)

    def add(self, name: str, version_id: str, created: datetime, number: int | None = None) -> None:
        self.observe(created)
        self._judged.setdefault(name, {})[version_id] = (created, number)

    def knows(self, name: str, version_id: str) -> bool:
        return version_id in self._judged.get(name, {})

    def known(
        self, names: Iterable[str], since: datetime | None, lowest: int | None
    ) -> dict[str, str]:
        """The known versions (id -> name) a read of these names returns: created at or after
        `since`, and numbered from `lowest` up, or (None) without a number."""
        return {
            id: name
            for name in names
            for id, (created, number) in self._judged.get(name, {}).items()
            if (since is None or created >= since)
            and (number is None if lowest is None else number is not None and number >= lowest)
        }

    def forget(self, name: str, version_id: str) -> None:
        """A known version a complete read no longer lists (deleted)."""
        self._judged.get(name, {}).pop(version_id, None)

    def forget_below(self, name: str, floor: datetime | None) -> None:
        """Versions under the floor are never read again: keep memory to the window."""
        if floor is not None and name in self._judged:
            self._judged[name] = {
                i: seen for i, seen in self._judged[name].items() if seen[0] >= floor
            }


class Polls:
    """Which read a tick makes (module docstring): a sweep from the stored floors when one is
    due, else fast reads from the fast floors, kept here (in memory: a restart sweeps first)."""

    def __init__(
        self,
        sweep_interval: float,
        clock: Callable[[], float] = time.monotonic,
        number_only_from: int | None = None,
    ) -> None:
        """`number_only_from`: names numbered above it are read by numbers alone (models)."""
        self.seen = Seen()
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._number_only_from = number_only_from
        self._next_sweep: float | None = None  # None: sweep at the first tick
        self._fast: dict[str, datetime | None] = {}

    def plan(
        self, floors: Mapping[str, datetime | None], store_top: Callable[[str], int | None]
    ) -> tuple[bool, list[PollGroup]]:
        """(is it a sweep, the groups to read). `store_top` answers the highest number of a name
        the daemon has read none of (ZenML reads every version for it: asked once a name)."""
        if self._next_sweep is None or self._clock() >= self._next_sweep:
            return True, plan_polls(floors)
        fast = {name: _later(floor, self._fast.get(name)) for name, floor in floors.items()}
        tops = {name: self._top(name, store_top) for name in floors}
        return False, plan_polls(fast, tops, self._number_only_from)

    def _top(self, name: str, store_top: Callable[[str], int | None]) -> int:
        top = self.seen.top(name)
        if top is None:
            top = store_top(name) or 0  # none numbered yet: the first will be 1
            self.seen.note_top(name, top)
        return top

    def read(self, group: PollGroup, newest_before: datetime | None) -> None:
        """A complete read of a group: its fast floors may rise (`raised_floor`)."""
        for name in group.names:
            since = _later(group.since, self._fast.get(name))
            self._fast[name] = raised_floor(since, newest_before)

    def sweep_next(self) -> None:
        """Make the next tick sweep, whenever the last one was."""
        self._next_sweep = None

    def swept(self) -> None:
        """Every group of a sweep was read: the next one is due an interval from now."""
        self._next_sweep = self._clock() + self._sweep_interval


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first if second is None else second
    return max(first, second)


def raised_floor(floor: datetime | None, newest_before_read: datetime | None) -> datetime | None:
    """Where a floor may move after a complete read of its name. Only a `created` read before
    the read began counts: a version committed while later pages were read may be older than
    anything on them, but not older than that by more than `LOOKBACK`."""
    if newest_before_read is None:
        return floor
    candidate = newest_before_read - LOOKBACK
    return candidate if floor is None or candidate > floor else floor


def format_floor(floor: datetime | None) -> str:
    return "" if floor is None else floor.strftime(_FORMAT)


def parse_floor(value: str | None) -> datetime | int | None:
    """A stored floor; an int is a cursor written before floors (a version number)."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    return datetime.strptime(value, _FORMAT)
