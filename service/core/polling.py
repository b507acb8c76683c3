"""How to read many cursors' worth of new versions in few store queries.

Each watched artifact (or model) has its own cursor: the highest version number judged so far.
ZenML can list several artifacts' versions in one query (`artifact=oneof:[...]`) above one number,
not above a number per artifact. So names are grouped, and each group is read from its lowest
cursor: the versions of a name between that and its own cursor were judged already. They are read
once, remembered (`Seen`), and left out of the next queries by id (`id=notoneof:[...]`), so an idle
query returns nothing. A group takes a name only while those versions stay within a bound, which
keeps the id list short; equal cursors need none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_WASTE = 40  # judged versions a group's query must leave out by id


@dataclass(frozen=True)
class PollGroup:
    names: tuple[str, ...]
    above: int  # read every version numbered above this


def plan_polls(cursors: Mapping[str, int], max_waste: int = MAX_WASTE) -> list[PollGroup]:
    """Group names so that each group is one query reading at most `max_waste` old versions."""
    groups: list[PollGroup] = []
    names: list[str] = []
    floor, waste = 0, 0
    for name, cursor in sorted(cursors.items(), key=lambda item: (item[1], item[0])):
        if names and waste + cursor - floor > max_waste:
            groups.append(PollGroup(tuple(names), floor))
            names, waste = [], 0
        if not names:
            floor = cursor
        names.append(name)
        waste += cursor - floor
    if names:
        groups.append(PollGroup(tuple(names), floor))
    return groups


class Seen:
    """Versions above a group's floor that were judged already, by name: left out of the next
    query. Only versions whose judgement is committed may be added: one left out is never read
    again by this process."""

    def __init__(self) -> None:
        self._numbers: dict[str, dict[str, int]] = {}  # name -> version id -> number

    def add(self, name: str, version_id: str, number: int) -> None:
        self._numbers.setdefault(name, {})[version_id] = number

    def ids_above(self, group: PollGroup) -> list[str]:
        """Ids to leave out of the group's query; forgets those at or below its floor."""
        ids = []
        for name in group.names:
            kept = {i: n for i, n in self._numbers.get(name, {}).items() if n > group.above}
            self._numbers[name] = kept
            ids.extend(sorted(kept))
        return ids
