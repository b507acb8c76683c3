"""Plain records of what the store adapter observed. The core never sees a ZenML object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# On a run that completed but that the launcher rejected (it trained into, or served, a model
# version it must not have): the store then says the action is not done, and the model version
# such a training run created is not a candidate.
REJECTED_RUN_TAG = "autopilot:rejected"


class RunStatus(StrEnum):
    """A pipeline run's status, folded to the three states the daemon acts on."""

    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class RunInfo:
    """A pipeline run as the daemon needs it."""

    id: str
    status: RunStatus
    tags: frozenset[str] = frozenset()
    name: str = ""
    created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    model_version_id: str | None = None  # the version of the Model the run was linked to

    @property
    def rejected(self) -> bool:
        """Completed, but rejected by the launcher: it does not count (`REJECTED_RUN_TAG`)."""
        return REJECTED_RUN_TAG in self.tags


@dataclass(frozen=True)
class DatasetVersion:
    """One version of a watched dataset artifact.

    `producer` is None when no pipeline run produced it (registered with `save_artifact`), or
    when its producing step has not completed yet: ZenML commits a step's outputs before it
    reports their producer. `from_step` tells the two apart (ZenML's `save_type`).
    """

    id: str
    artifact_name: str
    version: str
    number: int | None
    tags: frozenset[str]
    created: datetime
    producer: RunInfo | None = None
    from_step: bool = False  # a step's output, not saved by hand

    @property
    def producer_pending(self) -> bool:
        """A step's output whose producing run ZenML does not report yet."""
        return self.from_step and self.producer is None


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of the watched ZenML Model."""

    id: str
    model_name: str
    number: int
    name: str
    stage: str | None
    created: datetime
    updated: datetime
    metadata: Mapping[str, object] = field(default_factory=dict)
    producer: RunInfo | None = None
    # Run metadata of linked artifacts, by artifact name: only the one a promotion policy reads.
    artifact_metadata: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Human-readable identity used in log lines: `iris_classifier#3`."""
        return f"{self.model_name}#{self.number}"
