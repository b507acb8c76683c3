"""Which dataset versions start a training run."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from service.core.actions import AUTOPILOT_TAG
from service.core.records import DatasetVersion, RunStatus


class Verdict(StrEnum):
    TRAIN = "train"  # selected: claim a training run (for scoring data, its inference)
    WAIT = "wait"  # look again next tick (its producing run is still going)
    SKIP = "skip"


class SkipReason(StrEnum):
    PRODUCED_BY_AUTOPILOT = "produced_by_autopilot"  # loop protection
    PRODUCER_RUN_FAILED = "producer_run_failed"
    MISSING_TAGS = "missing_tags"
    PREDATES_START = "predates_start_from"
    # Its producing run never finished (or was never reported: deleted) within the producer
    # wait. Final, like a failed producing run: a run that has not ended in that long is taken
    # for dead, and reading it every few ticks for ever would cost a query each, for good.
    PRODUCER_WAIT_EXCEEDED = "producer_wait_exceeded"
    # The required tags changed, and the start policy keeps what was decided before the change
    # (`now`, or a time after the version's creation): final, as `predates_start_from` is.
    PREDATES_TAGS_CHANGE = "predates_required_tags_change"


# A version skipped for one of these reasons is never looked at again. MISSING_TAGS is not final:
# a person may approve the version later, and the reconciliation pass then selects it.
FINAL_SKIPS = frozenset(
    {
        SkipReason.PRODUCED_BY_AUTOPILOT,
        SkipReason.PRODUCER_RUN_FAILED,
        SkipReason.PREDATES_START,
        SkipReason.PRODUCER_WAIT_EXCEEDED,
        SkipReason.PREDATES_TAGS_CHANGE,
    }
)
# The required tags changed and the start policy has a version judged again under the new ones:
# it waits one tick, and is then judged like any other.
REQUIRED_TAGS_CHANGED = "required_tags_changed"

# Waits on the producing run: bounded by the producer wait (`evaluate_dataset`).
PRODUCER_NOT_REPORTED = "producer_not_reported_yet"
PRODUCER_IN_PROGRESS = "producer_run_in_progress"
PRODUCER_WAITS = frozenset({PRODUCER_NOT_REPORTED, PRODUCER_IN_PROGRESS})
# A version waiting on its producer is looked at every tick for this long, then once per
# LOOK_INTERVAL: most producers report or finish within a moment, a long one can wait a little.
LOOK_EVERY_TICK_FOR = 60.0  # seconds
LOOK_INTERVAL = 60.0  # seconds


@dataclass(frozen=True)
class DatasetDecision:
    verdict: Verdict
    reason: str
    missing_tags: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        """True when this version needs no further look."""
        return self.verdict is Verdict.TRAIN or self.reason in FINAL_SKIPS


# Waiting for a second look: ZenML commits a new artifact version and attaches its tags after
# (`save_artifact(..., tags=[...])` included), so a poll can read it untagged.
TAGS_MAY_FOLLOW = "tags_may_follow"


def evaluate_dataset(
    version: DatasetVersion,
    required_tags: Iterable[str],
    first_look: bool = False,
    producer_waited: float = 0.0,
    producer_wait: float = math.inf,
) -> DatasetDecision:
    """Decide what to do with one dataset version.

    Order matters: the daemon's own outputs are never selected (no loops), and nothing is judged
    before the run that produced it has finished, because tags may still be added by its steps.
    On the `first_look` at a version, missing tags wait for one more look (TAGS_MAY_FOLLOW). A
    version that has waited `producer_wait` seconds or more on its producer (`producer_waited`,
    a duration on the daemon's clock) is skipped for good.
    """
    waiting = _producer_wait(version)
    if waiting is not None:
        if producer_waited >= producer_wait:
            return DatasetDecision(Verdict.SKIP, SkipReason.PRODUCER_WAIT_EXCEEDED)
        return DatasetDecision(Verdict.WAIT, waiting)
    producer = version.producer
    if producer is not None and AUTOPILOT_TAG in producer.tags:
        return DatasetDecision(Verdict.SKIP, SkipReason.PRODUCED_BY_AUTOPILOT)
    if producer is not None and producer.status is RunStatus.FAILED:
        return DatasetDecision(Verdict.SKIP, SkipReason.PRODUCER_RUN_FAILED)
    missing = tuple(sorted(set(required_tags) - version.tags))
    if missing and first_look:
        return DatasetDecision(Verdict.WAIT, TAGS_MAY_FOLLOW, missing)
    if missing:
        return DatasetDecision(Verdict.SKIP, SkipReason.MISSING_TAGS, missing)
    return DatasetDecision(Verdict.TRAIN, "selected")


def _producer_wait(version: DatasetVersion) -> str | None:
    """Why the version waits on its producing run, if it does."""
    producer = version.producer
    if version.producer_pending:  # its step has not completed: for now it looks hand-made
        return PRODUCER_NOT_REPORTED
    if producer is None or AUTOPILOT_TAG in producer.tags:
        return None
    return PRODUCER_IN_PROGRESS if producer.status is RunStatus.IN_PROGRESS else None


def look_again(waited: float, since_last_look: float | None, producer_wait: float) -> bool:
    """Whether a version waiting on its producer is read again now: every tick for its first
    LOOK_EVERY_TICK_FOR seconds, then once per LOOK_INTERVAL, and as soon as its wait is over
    (durations on the daemon's clock)."""
    if since_last_look is None or waited < LOOK_EVERY_TICK_FOR or waited >= producer_wait:
        return True
    return since_last_look >= LOOK_INTERVAL
