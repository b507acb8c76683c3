"""What a notification says (pure: no I/O): the catalogue of events, the default set a person
acts on, the payload (`SCHEMA` version 1, docs/notifications.md), its readable `text` and its
stable id.

An event's id is a UUID5 of its name and its *identity*: the fact the ledger records that makes
the event unique (a promotion's action key, a failed action's key and replay, a production
change's model version and time, an outage's start). It is the same on every retry and after a
restart, so a receiver drops duplicates by id.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = 1
# Fixed for good: ids derived from it must stay the same across versions of the daemon.
NAMESPACE = uuid.UUID("8f0b3a52-93a4-5c1e-9d57-2b6f4a1e7c30")
TEXT_LIMIT = 1500  # a chat line, not a log: long errors are cut
ERROR_LIMIT = 300


@dataclass(frozen=True)
class ModelVersionRef:
    id: str
    number: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class Notice:
    """One thing that happened, as the ledger recorded it: everything its notification says.

    `identity` is what the ledger records that makes this event unique (see the module
    docstring); `values` are the event's own facts (the decision's values, an error, ...).
    """

    event: str
    identity: str
    occurred_at: datetime
    automation: str | None = None
    model: str | None = None
    model_version: ModelVersionRef | None = None
    dataset_version_id: str | None = None
    runs: Mapping[str, str | None] = field(default_factory=dict)  # training, inference, ...
    reason: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return event_id(self.event, self.identity)

    @property
    def order_key(self) -> str:
        """Notifications about one model are delivered in order; store events share ''."""
        return self.model or ""


@dataclass(frozen=True)
class EventKind:
    name: str
    default: bool  # in the default set: something a person acts on
    meaning: str
    text: Callable[[Notice], str]


def event_id(event: str, identity: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{event}\n{identity}"))


def now() -> datetime:
    return datetime.now(UTC)


# -- the readable lines ----------------------------------------------------------------------


def _version(notice: Notice) -> str:
    mv = notice.model_version
    if mv is None:
        return f"{notice.model or 'the model'}"
    label = mv.number if mv.number is not None else mv.name or mv.id
    return f"{notice.model} version {label}"


def _where(notice: Notice) -> str:
    return f" [automation {notice.automation}]" if notice.automation else ""


def _short(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= ERROR_LIMIT else line[: ERROR_LIMIT - 1] + "…"


def _decision_text(notice: Notice, verb: str) -> str:
    v = notice.values
    detail = _short(v.get("detail") or "")  # "0.97 > production iris#2 0.95", with its value
    said = f"{v['metric']} {detail}" if v.get("value") is not None and detail else detail
    return f"{_version(notice)} {verb}: {said or notice.reason}{_where(notice)}"


def _promoted(notice: Notice) -> str:
    return _decision_text(notice, "promoted to production")


def _rejected(notice: Notice) -> str:
    return _decision_text(notice, f"not promoted ({notice.reason})")


def _already_production(notice: Notice) -> str:
    return (
        f"{_version(notice)} was put in production by its own pipeline or a person; "
        f"the autopilot left it there{_where(notice)}"
    )


def _run_subject(what: str, notice: Notice) -> str:
    """What a run was on: `dataset iris_training_dataset 17 (<id>)`, or the model version."""
    if what == "evaluation":
        v = notice.values
        on = f"{v.get('evaluation_dataset_name') or ''} {v.get('evaluation_dataset_version') or ''}"
        return f"{_version(notice)} on evaluation dataset {on.strip() or '?'}"
    v = notice.values
    # Scoring data (docs/automations.md).
    if what == "inference" and v.get("scoring_dataset_version_id"):
        on = f"{v.get('scoring_artifact') or ''} {v.get('scoring_version') or ''}".strip()
        return f"{_version(notice)} on scoring dataset {on or v['scoring_dataset_version_id']}"
    if what != "training":
        return _version(notice)
    named = f"{v.get('artifact') or ''} {v.get('version') or ''}".strip()
    dataset = notice.dataset_version_id
    return f"dataset {named} ({dataset})" if named else f"dataset {dataset}"


def _failed(what: str) -> Callable[[Notice], str]:
    def text(notice: Notice) -> str:
        v = notice.values
        attempts = v.get("attempts")
        how = f"after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "at once"
        subject = _run_subject(what, notice)
        return (
            f"{what} on {subject} failed for good {how}: {_short(v.get('error'))}{_where(notice)}"
        )

    return text


def _succeeded(what: str) -> Callable[[Notice], str]:
    def text(notice: Notice) -> str:
        subject = _run_subject(what, notice)
        return f"{what} on {subject} succeeded (run {notice.runs.get(what)}){_where(notice)}"

    return text


def _production_changed(notice: Notice) -> str:
    v = notice.values
    previous = v.get("previous_model_version_number") or v.get("previous_model_version_id")
    was = f" (was version {previous})" if previous else ""
    if notice.model_version is None:
        return f"{notice.model} has no production version any more{was}{_where(notice)}"
    return (
        f"{_version(notice)} was put in production outside the autopilot{was}; "
        f"its inference follows{_where(notice)}"
    )


def _awaiting_approval(notice: Notice) -> str:
    v = notice.values
    mv = notice.model_version
    number = mv.number if mv is not None and mv.number is not None else "<version>"
    detail = _short(v.get("detail") or "")
    said = f"{v['metric']} {detail}" if v.get("value") is not None and detail else detail
    timeout = v.get("approval_timeout_seconds")
    within = f" within {float(timeout):g} s, or it is archived" if timeout else ""
    return (
        f"{_version(notice)} awaits approval ({said or notice.reason}): approve it with "
        f"`autopilot approve {notice.model} {number}`{within}{_where(notice)}"
    )


def _verdict(what: str, then: str = "") -> Callable[[Notice], str]:
    def text(notice: Notice) -> str:
        v = notice.values
        if v.get("by"):
            who = f"by {v['by']}"
        elif v.get("via") == "zenml":
            who = "in ZenML (by someone it does not name)"
        else:
            who = "by an unknown person"
        note = f": {_short(v['note'])}" if v.get("note") else ""
        return f"{_version(notice)} was {what} {who}{then}{note}{_where(notice)}"

    return text


def _approval_expired(notice: Notice) -> str:
    timeout = notice.values.get("approval_timeout_seconds")
    within = f" within {float(timeout):g} s" if timeout else ""
    return f"{_version(notice)} was not approved{within}: archived{_where(notice)}"


def _rolled_back(notice: Notice) -> str:
    v = notice.values
    was = v.get("rolled_back_from_number") or v.get("rolled_back_from_id")
    by = f" by {v['by']}" if v.get("by") else ""
    why = f": {_short(v['reason'])}" if v.get("reason") else ""
    return (
        f"{_version(notice)} is production again (rolled back from version {was}){by}{why}; "
        f"its inference follows{_where(notice)}"
    )


def _unreachable(notice: Notice) -> str:
    v = notice.values
    minutes = round(float(v.get("down_seconds", 0)) / 60, 1)
    return (
        f"the ZenML store {v.get('store_url')} has not answered for {minutes:g} min "
        f"(since {v.get('since')}): {_short(v.get('error'))}"
    )


def _recovered(notice: Notice) -> str:
    v = notice.values
    minutes = round(float(v.get("down_seconds", 0)) / 60, 1)
    return f"the ZenML store {v.get('store_url')} answers again after {minutes:g} min"


# -- the catalogue ---------------------------------------------------------------------------

CATALOGUE: dict[str, EventKind] = {
    kind.name: kind
    for kind in (
        EventKind(
            "model.promoted", True, "the autopilot put a model version in production", _promoted
        ),
        EventKind(
            "model.rejected",
            False,
            "a model version was judged and not promoted (with the reason and values)",
            _rejected,
        ),
        EventKind(
            "model.already_production",
            False,
            "a version its own pipeline (or a person) promoted; the decision was recorded",
            _already_production,
        ),
        EventKind(
            "model.production_changed",
            True,
            "production changed outside the autopilot (a person, the dashboard, a script)",
            _production_changed,
        ),
        EventKind(
            "model.awaiting_approval",
            True,
            "a version passed the policy and waits in staging for a person (approval mode)",
            _awaiting_approval,
        ),
        EventKind(
            "model.approved",
            True,
            "a person approved a waiting version (autopilot approve, or promoting it in ZenML)",
            _verdict("approved", " and goes to production"),
        ),
        EventKind(
            "model.approval_rejected",
            False,
            "a person rejected a waiting version (autopilot reject, or archiving it in ZenML)",
            _verdict("rejected", " and archived"),
        ),
        EventKind(
            "model.approval_expired",
            True,
            "a waiting version was not approved within APPROVAL_TIMEOUT_SECONDS: archived",
            _approval_expired,
        ),
        EventKind(
            "model.rolled_back",
            True,
            "production went back to an earlier version (autopilot rollback, ROLLBACK_ON_FAILURE)",
            _rolled_back,
        ),
        EventKind(
            "training.failed",
            True,
            "a training failed for good: every attempt, or it cannot be launched",
            _failed("training"),
        ),
        EventKind(
            "inference.failed",
            True,
            "an inference failed for good: every attempt, or it cannot be launched",
            _failed("inference"),
        ),
        EventKind(
            "deployment.failed",
            True,
            "a deployment failed for good: its inference does not run",
            _failed("deployment"),
        ),
        EventKind(
            "evaluation.failed",
            True,
            "an evaluation failed for good (a candidate whose own evaluation failed is "
            "rejected, evaluation_failed)",
            _failed("evaluation"),
        ),
        EventKind("training.succeeded", False, "a training run completed", _succeeded("training")),
        EventKind(
            "inference.succeeded",
            False,
            "an inference run completed: predictions are ready",
            _succeeded("inference"),
        ),
        EventKind(
            "deployment.succeeded",
            False,
            "a deployment run completed: the version's inference follows",
            _succeeded("deployment"),
        ),
        EventKind(
            "store.unreachable",
            True,
            "the store has not answered for AUTOPILOT_NOTIFY_OUTAGE_AFTER_SECONDS",
            _unreachable,
        ),
        EventKind(
            "store.recovered",
            True,
            "the store answers again (only after a store.unreachable)",
            _recovered,
        ),
    )
}
DEFAULT_EVENTS = frozenset(name for name, kind in CATALOGUE.items() if kind.default)
ALL, DEFAULT = "all", "default"


def parse_event_names(text: str) -> frozenset[str]:
    """A comma-separated list of event names, `default` (the default set) and `all`; empty
    is none. ValueError naming each unknown name, with the closest one."""
    names: set[str] = set()
    unknown = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == DEFAULT:
            names |= DEFAULT_EVENTS
        elif item == ALL:
            names |= set(CATALOGUE)
        elif item in CATALOGUE:
            names.add(item)
        else:
            close = difflib.get_close_matches(item, [*CATALOGUE, DEFAULT, ALL], n=1)
            unknown.append(f"{item}" + (f" (did you mean {close[0]}?)" if close else ""))
    if unknown:
        raise ValueError(
            f"unknown event {', '.join(unknown)}; known: default, all, {', '.join(CATALOGUE)}"
        )
    return frozenset(names)


# -- the payload -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardLinks:
    """Where a ZenML server's dashboard shows a run and a model version: URLs with `{id}` in
    place of the id, None where it has no page (an embedded store; model versions outside
    ZenML Pro)."""

    run: str | None = None
    model_version: str | None = None

    def for_notice(self, notice: Notice) -> dict[str, str]:
        links = {}
        if self.run is not None:
            for kind, run_id in notice.runs.items():
                if run_id:
                    links[f"{kind}_run"] = self.run.replace("{id}", run_id)
        if self.model_version is not None and notice.model_version is not None:
            links["model_version"] = self.model_version.replace("{id}", notice.model_version.id)
        return links


def text_of(notice: Notice) -> str:
    line = CATALOGUE[notice.event].text(notice)
    return line if len(line) <= TEXT_LIMIT else line[: TEXT_LIMIT - 1] + "…"


def payload(notice: Notice, sequence: int, links: DashboardLinks | None = None) -> dict[str, Any]:
    """The JSON object every destination receives (docs/notifications.md); every key is always
    present, null when it does not apply."""
    mv = notice.model_version
    return {
        "schema": SCHEMA,
        "id": notice.id,
        "event": notice.event,
        "sequence": sequence,
        "occurred_at": notice.occurred_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "automation": notice.automation,
        "model": None if notice.model is None else {"name": notice.model},
        "model_version": None
        if mv is None
        else {"id": mv.id, "number": mv.number, "name": mv.name},
        "dataset_version_id": notice.dataset_version_id,
        "runs": dict(notice.runs),
        "reason": notice.reason,
        "values": dict(notice.values),
        "links": links.for_notice(notice) if links else {},
        "text": text_of(notice),
    }
