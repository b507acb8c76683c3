"""Which dataset versions start a training run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from service.core.actions import AUTOPILOT_TAG
from service.core.records import DatasetVersion, RunStatus


class Verdict(StrEnum):
    TRAIN = "train"  # selected: claim a training run
    WAIT = "wait"  # look again next tick (its producing run is still going)
    SKIP = "skip"


class SkipReason(StrEnum):
    PRODUCED_BY_AUTOPILOT = "produced_by_autopilot"  # loop protection
    PRODUCER_RUN_FAILED = "producer_run_failed"
    MISSING_TAGS = "missing_tags"
    PREDATES_START = "predates_start_from"


# A version skipped for one of these reasons is never looked at again. MISSING_TAGS is not final:
# a person may approve the version later, and the reconciliation pass then selects it.
FINAL_SKIPS = frozenset(
    {SkipReason.PRODUCED_BY_AUTOPILOT, SkipReason.PRODUCER_RUN_FAILED, SkipReason.PREDATES_START}
)


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
    version: DatasetVersion, required_tags: Iterable[str], first_look: bool = False
) -> DatasetDecision:
    """Decide what to do with one dataset version.

    Order matters: the daemon's own outputs are never selected (no loops), and nothing is judged
    before the run that produced it has finished, because tags may still be added by its steps.
    On the `first_look` at a version, missing tags wait for one more look (TAGS_MAY_FOLLOW).
    """
    producer = version.producer
    if version.producer_pending:  # its step has not completed: for now it looks hand-made
        return DatasetDecision(Verdict.WAIT, "producer_not_reported_yet")
    if producer is not None and AUTOPILOT_TAG in producer.tags:
        return DatasetDecision(Verdict.SKIP, SkipReason.PRODUCED_BY_AUTOPILOT)
    if producer is not None and producer.status is RunStatus.IN_PROGRESS:
        return DatasetDecision(Verdict.WAIT, "producer_run_in_progress")
    if producer is not None and producer.status is RunStatus.FAILED:
        return DatasetDecision(Verdict.SKIP, SkipReason.PRODUCER_RUN_FAILED)
    missing = tuple(sorted(set(required_tags) - version.tags))
    if missing and first_look:
        return DatasetDecision(Verdict.WAIT, TAGS_MAY_FOLLOW, missing)
    if missing:
        return DatasetDecision(Verdict.SKIP, SkipReason.MISSING_TAGS, missing)
    return DatasetDecision(Verdict.TRAIN, "selected")
