"""The notice of each event the tick records, built from what the ledger holds at that moment
(pure). One function per place that records an outcome; `service/notify/__init__.py` says how
a new event is added."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.core.actions import ActionKind
from service.core.production_history import ProductionRecord
from service.core.records import ModelVersionInfo
from service.core.scoring import SCORING_ID
from service.notify.events import ModelVersionRef, Notice, now

# How a run of each kind is named in a notification's `runs` (and its dashboard link).
RUN_KINDS = {
    ActionKind.TRAIN: "training",
    ActionKind.INFER: "inference",
    ActionKind.DEPLOY: "deployment",
    ActionKind.EVALUATE: "evaluation",
}


def version_ref(version: ModelVersionInfo) -> ModelVersionRef:
    return ModelVersionRef(id=version.id, number=version.number, name=version.name)


def for_version(
    event: str,
    identity: str,
    automation: str,
    version: ModelVersionInfo,
    dataset_version_id: str | None,
    reason: str | None = None,
    values: Mapping[str, Any] | None = None,
    runs: Mapping[str, str | None] | None = None,
) -> Notice:
    """A notice about one model version; its training run is its producer's."""
    return Notice(
        event=event,
        identity=identity,
        occurred_at=now(),
        automation=automation,
        model=version.model_name,
        model_version=version_ref(version),
        dataset_version_id=dataset_version_id,
        runs={"training": version.producer.id if version.producer else None, **(runs or {})},
        reason=reason,
        values=dict(values or {}),
    )


def decision(
    automation: str,
    version: ModelVersionInfo,
    dataset_version_id: str | None,
    key: str,
    decided: Mapping[str, Any],
) -> Notice:
    """`model.promoted`, `model.rejected` or `model.already_production`: once per model
    version, ever (its promotion key)."""
    values = {k: v for k, v in decided.items() if k not in ("outcome", "reason")}
    return for_version(
        f"model.{decided['outcome']}",
        key,
        automation,
        version,
        dataset_version_id,
        reason=str(decided.get("reason")),
        values=values,
    )


def production_changed(
    automation: str,
    model: str,
    version: ModelVersionInfo | None,
    dataset_version_id: str | None,
    previous: ModelVersionInfo | str | None,
    at: datetime | None = None,
) -> Notice:
    """`model.production_changed` by someone other than the daemon. A version's stage change
    bumps its `updated` in the store, so (version, updated) names this change; production
    emptied is named by the previous version and the moment it was seen. `previous`: the
    version production held before (its id alone if the store no longer has it)."""
    known = previous if isinstance(previous, ModelVersionInfo) else None
    previous_id = known.id if known else previous if isinstance(previous, str) else None
    values = {
        "previous_model_version_id": previous_id,
        "previous_model_version_number": known.number if known else None,
        "changed_by": "external",
    }
    if version is None:
        seen = at or now()
        return Notice(
            event="model.production_changed",
            identity=f"{model}\nnone\n{previous_id}\n{seen.isoformat()}",
            occurred_at=seen,
            automation=automation,
            model=model,
            reason="changed_outside_the_autopilot",
            values=values,
        )
    return for_version(
        "model.production_changed",
        f"{version.id}\n{version.updated.isoformat()}",
        automation,
        version,
        dataset_version_id,
        reason="changed_outside_the_autopilot",
        values=values,
    )


def approval_ended(
    event: str,
    automation: str,
    version: ModelVersionInfo,
    dataset_version_id: str | None,
    outcome: str,
    values: Mapping[str, Any],
) -> Notice:
    """`model.approved`, `model.approval_rejected`, `model.approval_expired`: a version's wait
    for approval ends once, ever (a version is staged once)."""
    return for_version(
        event,
        f"{version.id}\n{outcome}",
        automation,
        version,
        dataset_version_id,
        reason=outcome,
        values=values,
    )


def rolled_back(
    automation: str,
    restored: ModelVersionInfo,
    dataset_version_id: str | None,
    record: ProductionRecord,
    replaced: ModelVersionInfo | str | None,
) -> Notice:
    """`model.rolled_back`: production went back to `restored`, in its stint `record.stint`
    (a version's stint in production happens once: it names the change)."""
    known = replaced if isinstance(replaced, ModelVersionInfo) else None
    return for_version(
        "model.rolled_back",
        f"{restored.id}\n{record.stint}",
        automation,
        restored,
        dataset_version_id,
        reason="failed" if record.failed_run_id else "by_request",
        values={
            "rolled_back_from_id": record.rolled_back_from,
            "rolled_back_from_number": known.number if known else None,
            "by": record.by,
            "reason": record.reason,
            "seq": record.seq,
            "stint": record.stint,
        },
        runs={"failed": record.failed_run_id} if record.failed_run_id else None,
    )


def action_ended(
    event: str,
    automation: str,
    model: str | None,
    kind: ActionKind,
    key: str,
    subject_id: str,
    details: Mapping[str, Any],
    run_id: str | None,
    reason: str,
    values: Mapping[str, Any],
) -> Notice:
    """`training.*` / `evaluation.*` / `inference.*` for an action that ended. A replayed
    action may end again: its replay (in its details) is part of its identity."""
    replay = details.get("replayed_at")
    identity = key if replay is None else f"{key}\nreplayed {replay}"
    run_kind = RUN_KINDS.get(kind, kind.value)
    dataset: str | None
    if kind is ActionKind.TRAIN:
        model_version = None
        dataset = subject_id
        values = {"artifact": details.get("artifact"), "version": details.get("version"), **values}
    else:
        number = details.get("model_version_number")
        model_version = ModelVersionRef(id=subject_id, number=number)
        dataset = details.get("dataset_version_id")
        if kind is ActionKind.EVALUATE:  # the data it scores on
            facts = [f"evaluation_dataset_{name}" for name in ("version_id", "name", "version")]
            values = {**{name: details.get(name) for name in facts}, **values}
        elif details.get(SCORING_ID):  # an inference on a scoring dataset version
            facts = [SCORING_ID, "scoring_artifact", "scoring_version"]
            values = {**{name: details.get(name) for name in facts}, **values}
    return Notice(
        event=event,
        identity=identity,
        occurred_at=now(),
        automation=automation,
        model=model,
        model_version=model_version,
        dataset_version_id=dataset,
        runs={run_kind: run_id}
        if kind is ActionKind.TRAIN
        else {"training": details.get("training_run_id"), run_kind: run_id},
        reason=reason,
        values={"key": key, **values},
    )


def store_event(event: str, since: datetime, values: Mapping[str, Any]) -> Notice:
    """`store.unreachable` / `store.recovered`, named by the outage's start."""
    return Notice(
        event=event,
        identity=since.isoformat(),
        occurred_at=now(),
        values=dict(values),
    )
