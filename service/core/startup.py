"""What a daemon with an empty ledger does with what already exists in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

StartMode = Literal["now", "beginning"]


@dataclass(frozen=True)
class StartFrom:
    """`now`: act only on what appears after the first start; `beginning`: act on everything;
    a time: act on what was created (or, for a production change, happened) at or after it."""

    mode: StartMode | None = None
    since: datetime | None = None  # naive UTC, like ZenML's timestamps

    def skips(self, happened_at: datetime) -> bool:
        """True when something that existed at the first start and happened then is skipped."""
        if self.mode == "now":
            return True
        if self.mode == "beginning":
            return False
        assert self.since is not None
        return happened_at < self.since

    def first_floor(self, newest: datetime | None) -> datetime | None:
        """The floor a new stream starts from, given the newest `created` of its versions.

        `now`: that `created` itself, not just above it. A store may keep `created` to the
        second (MySQL): a version created later in the same second has the very same `created`,
        and must be at or above the floor to be judged. The versions already there at the floor
        are noted as predating the start instead (by id), so they are not judged.
        """
        if self.mode == "now":
            return newest
        return self.since  # None from the beginning

    def __str__(self) -> str:
        return self.mode or (self.since.isoformat() if self.since else "?")
