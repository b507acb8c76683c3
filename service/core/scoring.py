"""Scoring datasets: data the production version scores as it arrives. Pure values, no I/O.

An automation with `SCORING_DATASET_NAMES` runs its inference on scoring data:
- each new selected scoring version, once, pinned to the production version the daemon knows
  when it selects it: key `infer:<production version id>@score:<dataset version id>`, one per
  (production version, scoring version), ever;
- at a production change, on the newest selected scoring version (`newest`): the production
  change's own inference key (`infer:<model version id>`), with that version in its details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core.actions import ActionKind, action_key
from service.core.records import DatasetVersion

SCORE_QUALIFIER = "score:"
# In an inference action's details: the scoring dataset version it scores (the launcher fills
# `{{ scoring_dataset.* }}` from these).
SCORING_ID = "scoring_dataset_version_id"
_CREATED_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


@dataclass(frozen=True)
class ScoringVersion:
    """A selected scoring dataset version, as the ledger keeps it."""

    id: str
    artifact: str
    version: str
    number: int | None
    created: datetime  # the store's `created`: which version is newest
    producer_run_id: str | None

    @classmethod
    def of(cls, version: DatasetVersion) -> ScoringVersion:
        producer = version.producer.id if version.producer else None
        return cls(
            version.id,
            version.artifact_name,
            version.version,
            version.number,
            version.created,
            producer,
        )

    def order(self) -> tuple[datetime, int, str]:
        """Newest last: by `created`, then number (a store that keeps `created` to the second
        gives versions saved within one second the same), then id."""
        return (self.created, -1 if self.number is None else self.number, self.id)

    def details(self) -> dict[str, Any]:
        """Entries for an inference action's details (`from_details` reads them back)."""
        return {
            SCORING_ID: self.id,
            "scoring_artifact": self.artifact,
            "scoring_version": self.version,
            "scoring_version_number": self.number,
            "scoring_created": self.created.strftime(_CREATED_FORMAT),
            "scoring_producer_run_id": self.producer_run_id,
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> ScoringVersion | None:
        """The scoring version an action's details name, or None when they name none."""
        if not details.get(SCORING_ID):
            return None
        number = details.get("scoring_version_number")
        producer = details.get("scoring_producer_run_id")
        return cls(
            id=str(details[SCORING_ID]),
            artifact=str(details.get("scoring_artifact")),
            version=str(details.get("scoring_version")),
            number=number if isinstance(number, int) else None,
            created=datetime.strptime(str(details.get("scoring_created")), _CREATED_FORMAT),
            producer_run_id=None if producer is None else str(producer),
        )


def newer(candidate: ScoringVersion, known: ScoringVersion | None) -> bool:
    """Whether `candidate` replaces `known` as the newest selected scoring version."""
    return known is None or candidate.order() > known.order()


def scored_tag(dataset_version_id: str) -> str:
    """The tag of every inference run that scores this scoring dataset version."""
    return f"{SCORE_QUALIFIER}{dataset_version_id}"


def scored_tags(details: dict[str, Any]) -> list[str]:
    """Tags of an inference run beside its key: `score:<dataset version id>` when it scores a
    scoring version, so the store tells which were scored whatever the key (a production
    change's inference scores one under its own key)."""
    scored = details.get(SCORING_ID)
    return [scored_tag(str(scored))] if scored else []


def scoring_key(model_version_id: str, dataset_version_id: str) -> str:
    """The key of scoring one dataset version with one production version."""
    return action_key(
        ActionKind.INFER, model_version_id, qualifier=f"{SCORE_QUALIFIER}{dataset_version_id}"
    )
