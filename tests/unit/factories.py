"""Builders for the core's plain records, so each test states only what matters to it."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from service.core.records import DatasetVersion, ModelVersionInfo, RunInfo, RunStatus

_ids = count(1)
T0 = datetime(2026, 1, 1, 12, 0, 0)


def run(status: RunStatus = RunStatus.SUCCEEDED, tags: frozenset[str] = frozenset()) -> RunInfo:
    return RunInfo(id=f"run-{next(_ids)}", status=status, tags=tags)


def dataset(
    tags: set[str] | None = None,
    producer: RunInfo | None = None,
    number: int = 1,
    created: datetime = T0,
    from_step: bool | None = None,
) -> DatasetVersion:
    return DatasetVersion(
        id=f"ds-{next(_ids)}",
        artifact_name="iris_training_dataset",
        version=str(number),
        number=number,
        tags=frozenset(tags or ()),
        created=created,
        producer=producer,
        from_step=producer is not None if from_step is None else from_step,
    )


def model_version(
    metadata: dict[str, object] | None = None,
    number: int = 1,
    stage: str | None = None,
    updated_offset: int = 0,
    producer: RunInfo | None = None,
    artifact_metadata: dict[str, dict[str, object]] | None = None,
) -> ModelVersionInfo:
    return ModelVersionInfo(
        id=f"mv-{next(_ids)}",
        model_name="iris_classifier",
        number=number,
        name=str(number),
        stage=stage,
        created=T0,
        updated=T0 + timedelta(seconds=updated_offset),
        metadata=metadata or {},
        producer=producer,
        artifact_metadata=artifact_metadata or {},
    )
