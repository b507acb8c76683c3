"""How to see every new version of the watched artifacts and models, in few store queries.

A stream's cursor is a *floor* in the store's own time: every version of its name created
before the floor has been judged. Each tick lists the versions created at or after it and
judges those not judged yet (a version is known by its id, never by its number: ZenML reuses
the number of a deleted newest version, and a version saved under a custom name has none).

The floor then moves up to `LOOKBACK` before the newest `created` the daemon has read from the
store, never further: a version is committed a moment after its `created` is set, so one created
a little earlier than another may appear later. A version committed more than `LOOKBACK` after it
was created would be missed; that is far beyond a commit's time, and beyond the clock skew of
machines writing to one SQL store. So an idle tick reads the versions of the last `LOOKBACK`
before the newest one, whatever the size of the store, and recognises them as judged.

Floors are compared in the store's clock only (`created` values it wrote), never the daemon's.
Names whose floors are close share one query (`artifact=oneof:[...]`); after a tick every floor
has caught up to the same point, so an idle daemon makes one query per kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

LOOKBACK = timedelta(seconds=120)
_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class PollGroup:
    names: tuple[str, ...]
    since: datetime | None  # read every version created at or after this; None: every one


def plan_polls(floors: Mapping[str, datetime | None]) -> list[PollGroup]:
    """Group names so that a group's query reads at most `LOOKBACK` of a name's judged
    versions again: names whose floors lie within `LOOKBACK` of the group's lowest."""
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
    """What the daemon has read of the store: the newest `created` (the store's clock), and the
    versions at or above their name's floor that were judged and committed, by id."""

    def __init__(self) -> None:
        self.newest: datetime | None = None
        self._judged: dict[str, dict[str, datetime]] = {}  # name -> version id -> created

    def observe(self, created: datetime) -> None:
        if self.newest is None or created > self.newest:
            self.newest = created

    def add(self, name: str, version_id: str, created: datetime) -> None:
        self.observe(created)
        self._judged.setdefault(name, {})[version_id] = created

    def knows(self, name: str, version_id: str) -> bool:
        return version_id in self._judged.get(name, {})

    def forget_below(self, name: str, floor: datetime | None) -> None:
        """Versions under the floor are never read again: keep memory to the window."""
        if floor is not None and name in self._judged:
            self._judged[name] = {i: c for i, c in self._judged[name].items() if c >= floor}


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
