"""Operator commands: `status`, `explain`, `replay`, `skip`. They read and write the ledger only
(the daemon picks up a replay or skip on its next tick), so they work while the daemon runs.
`rename_automation` too, but only while no daemon runs (the CLI holds the state dir's lock)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from service.core.actions import (
    TERMINAL_STATES,
    ActionKind,
    ActionState,
    ParsedKey,
    parse_action_key,
)
from service.core.automation import DEFAULT_AUTOMATION
from service.core.evaluation import EVALUATING
from service.core.scoring import SCORING_ID
from service.engine import LAST_POLL_KEY
from service.ledger import (
    Action,
    Approval,
    AutomationRows,
    Ledger,
    ProductionChange,
    Subject,
    epoch,
)
from service.notify import outbox
from service.settings import AUTOMATION_NAME
from service.stages.context import DATASET, MODEL, WAITING_SINCE
from service.stages.evaluation import DATASET_DETAILS
from service.stages.pipeline_holds import HELD_PREFIX
from service.stages.scoring import NEWEST_KEY as NEWEST_SCORING_KEY
from service.stages.training_gate import SUPERSEDED_BY, describe_gates, explain_queue

OPEN_STATES = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)
WAITING_LISTED = 50  # the versions waiting longest; `waiting_total` counts them all
PRODUCTION_CHANGES_LISTED = 5  # per automation, the latest


class OperationError(Exception):
    """An operator asked for something the ledger cannot do; the message says why."""


def status(
    ledger: Ledger,
    in_store: dict[str, list[str]] | None = None,
    timeouts: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """What the daemon is doing: cursors and lag, open actions, recent failures, production,
    the versions awaiting approval (with how long they waited and their `timeouts`, per
    automation) and the last production changes.

    A dataset or model stream's cursor is its floor: every version created before it was
    judged. `in_store` maps a stream to the ids of the versions at or above its floor, when the
    caller could ask the store; the lag is then those the automation has not judged yet.
    """
    cursors = []
    for stream, value in ledger.cursors().items():
        automation = stream.partition("/")[0]
        entry: dict[str, Any] = {"automation": automation, "stream": stream, "cursor": value}
        if in_store is not None and stream in in_store:
            entry["above_floor"] = len(in_store[stream])
            entry["not_judged_yet"] = sum(
                ledger.subject(automation, id) is None for id in in_store[stream]
            )
        cursors.append(entry)
    production = {s: v for s, v in ledger.cursors().items() if "/production:" in s}
    waiting = sorted(
        (
            _describe_waiting(s)
            for kind in (DATASET, MODEL)
            for s in ledger.subjects_with_status(kind, "waiting")
        ),
        key=lambda w: -(w.get("waited_seconds") or 0.0),
    )
    evaluating = [
        _describe_evaluating(ledger, action)
        for action in ledger.actions_in(ActionState.PENDING, kind=ActionKind.PROMOTE)
        if action.details.get("phase") == EVALUATING
    ]
    held = {
        key.removeprefix(HELD_PREFIX): json.loads(record)
        for key, record in ledger.meta_with_prefix(HELD_PREFIX).items()
    }
    newest_scoring = {
        key.removeprefix(NEWEST_SCORING_KEY): json.loads(stored)
        for key, stored in ledger.meta_with_prefix(NEWEST_SCORING_KEY).items()
    }
    return {
        "last_successful_poll": ledger.get_meta(LAST_POLL_KEY),
        "pipelines_broken": held,  # automations held until their pipelines pass their check
        "production": production,
        "newest_scoring_dataset": newest_scoring,  # what a production change scores
        "cursors": cursors,
        "waiting": waiting[:WAITING_LISTED],
        "waiting_total": len(waiting),
        "evaluating": evaluating,  # candidates waiting for their evaluations to end
        "actions_by_automation": ledger.count_actions(),
        "open": [_describe(a) for a in ledger.actions_in(*OPEN_STATES)],
        "recent_failures": [_describe(a) for a in ledger.recent_actions(ActionState.FAILED)],
        "recently_skipped": [_describe(a) for a in ledger.recent_actions(ActionState.SKIPPED)],
        "awaiting_approval": [
            _describe_approval(approval, (timeouts or {}).get(approval.automation))
            for approval in ledger.approvals_in("waiting", limit=WAITING_LISTED)
        ],
        "production_changes": {
            automation: [
                _describe_change(change)
                for change in ledger.production_changes(automation, PRODUCTION_CHANGES_LISTED)
            ]
            for automation in sorted(
                {s.partition("/")[0] for s in ledger.cursors() if "/production:" in s}
            )
        },
        "notifications": outbox.summary(ledger),
        **describe_gates(ledger),  # training gates' queues, schedules' last fires (issue 20)
    }


def explain(ledger: Ledger, subject_id: str, version: str | None = None) -> dict[str, Any]:
    """Why a dataset or model version was or wasn't acted on, by each automation that judged
    it, and how each action ended; for a model version, its wait for approval and the
    production changes it took part in (promoted, approved, rolled back to or from).
    `explain MODEL VERSION`: the model's version of that number, as the ledger knows it."""
    if version is not None:
        subject_id = _model_version_id(ledger, subject_id, version)
    subjects = ledger.subjects(subject_id)
    # A scoring dataset version's inferences are the production version's actions.
    actions = ledger.actions_for_subject(subject_id) + ledger.actions_scoring(subject_id)
    approvals = ledger.approvals_of(subject_id)
    changes = ledger.production_changes_of(subject_id)
    gates = explain_queue(ledger, subject_id)
    if not (subjects or actions or approvals or changes or gates):
        raise OperationError(
            f"{subject_id} is not in the ledger: the daemon has not seen it (not a watched "
            "artifact or model, created before the daemon's start-from point and never "
            "selected, or not polled yet)"
        )
    explanation: dict[str, Any] = {"id": subject_id}
    if subjects:
        explanation |= {"kind": subjects[0].kind, "name": subjects[0].name}
        explanation["version"] = subjects[0].version
    explanation["judgements"] = [
        {
            "automation": subject.automation,
            "status": subject.status,
            "reason": subject.reason,
            "final": subject.final,
            "seen": subject.details,
            "judged_at": subject.updated_at,
        }
        for subject in subjects
    ]
    if gates:  # queued at a training gate: what it waits for, and until when
        explanation["training_gate"] = gates
    explanation["actions"] = [_describe(a) for a in actions]
    if approvals:
        explanation["approval"] = [_describe_approval(a, None) for a in approvals]
    if changes:
        explanation["production_changes"] = [_describe_change(c) for c in changes]
    return explanation


def _model_version_id(ledger: Ledger, model: str, version: str) -> str:
    """The id of a model's version by its number (or name), from the versions the daemon
    judged."""
    for subject in ledger.subjects_named(MODEL, model, version):
        return subject.id
    raise OperationError(
        f"the ledger knows no version {version!r} of model {model!r}: the daemon has not "
        "judged it (give its id to look it up anyway)"
    )


def replay(ledger: Ledger, key: str) -> Action:
    """Do a failed or skipped action again, from its first attempt."""
    _check_key(key)
    action = ledger.action(key)
    if action is None:
        raise OperationError(f"no action {key} in the ledger")
    if action.state not in (ActionState.FAILED, ActionState.SKIPPED, ActionState.SUPERSEDED):
        raise OperationError(
            f"{key} is {action.state}: only failed, skipped or superseded actions replay"
        )
    with ledger.transaction():
        replayed = _replayed(ledger, action)
        # What was failed because it runs after this one (an inference after its deployment,
        # `stages/actions.py`) comes back with it, and runs once this one succeeded.
        for blocked in ledger.actions_in(ActionState.FAILED):
            if blocked.details.get("blocked_by") == key:
                _replayed(ledger, blocked)
    return replayed


def _replayed(ledger: Ledger, action: Action) -> Action:
    return ledger.transition(
        action.key,
        ActionState.PENDING,
        attempts=0,
        not_before=0,
        error=None,
        details={"replayed_at": epoch(), "replayed_from": action.state.value, "blocked_by": None},
    )


def replay_failed(ledger: Ledger, automation: str) -> list[Action]:
    """Do every failed action of an automation again, each from its first attempt (after a
    fix to its pipeline, say)."""
    automation = automation.strip().lower()  # automation names are case-insensitive
    known = ledger.count_actions()
    if automation not in known:
        names = ", ".join(sorted(name for name in known if name)) or "none"
        raise OperationError(f"no action of automation {automation!r} in the ledger ({names})")
    failed = [a for a in ledger.actions_in(ActionState.FAILED) if a.automation == automation]
    return [replay(ledger, action.key) for action in failed]


def skip(ledger: Ledger, key: str) -> Action:
    """Mark an action as not to be done, now or when the daemon gets to it."""
    parsed = _check_key(key)
    kind = parsed.kind
    with ledger.transaction():
        # A promotion or inference key does not name its automation: '' until the daemon knows.
        details = {"claimed_by": "operator"}
        ledger.claim(key, kind, parsed.subject_id, details, parsed.automation or "")
        action = ledger.action(key)
        assert action is not None
        if action.state in TERMINAL_STATES - {ActionState.FAILED}:
            raise OperationError(f"{key} is already {action.state}")
        if action.state is ActionState.RUNNING:
            raise OperationError(f"{key} is running: let it finish or fail, then skip or replay")
        if action.state is ActionState.PENDING and kind is ActionKind.PROMOTE:
            raise OperationError(
                f"{key} is a promotion decision being applied; it cannot be skipped"
            )
        return ledger.transition(key, ActionState.SKIPPED, details={"skipped_at": epoch()})


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str
    carried_over: AutomationRows  # what `old` held
    replaced: AutomationRows  # what `new` held before (streams, skipped versions)

    def log_fields(self) -> dict[str, Any]:
        return {
            "automation": self.new,
            "renamed_from": self.old,
            "carried_over": asdict(self.carried_over),
            "replaced": asdict(self.replaced),
        }


def rename_automation(ledger: Ledger, old: str, new: str, configured: set[str]) -> Renamed:
    """Carry an automation's streams, judgements and actions (open ones included) over to a new
    name, so that renaming it in the configuration strands nothing and redoes nothing. `new`
    must be configured and `old` no longer; `new` may hold what a start under the new name
    wrote before it acted (streams, skipped versions), which `old`'s replace, but no action."""
    old, new = old.strip().lower(), new.strip().lower()
    if not AUTOMATION_NAME.fullmatch(new):
        raise OperationError(f"{new!r} is not an automation name (a-z, 0-9, _; at most 40)")
    if old == new:
        raise OperationError(f"{old} and {new} are the same automation")
    if old in configured:
        variables = (
            "the single-automation AUTOPILOT_* variables"
            if old == DEFAULT_AUTOMATION
            else f"its AUTOPILOT_AUTOMATIONS__{old.upper()}__* variables"
        )
        raise OperationError(
            f"{old} is still configured: rename it in the configuration first ({variables}), "
            "then carry its work over"
        )
    if new not in configured:
        raise OperationError(
            f"{new} is not configured (configured: {', '.join(sorted(configured))}): configure "
            "it first, so its work is not stranded again"
        )
    with ledger.transaction():
        rows = ledger.rows_by_automation()
        none = AutomationRows()
        renamed = Renamed(old, new, rows.get(old, none), rows.get(new, none))
        if renamed.carried_over.empty:
            raise OperationError(f"the ledger holds nothing of automation {old}")
        if renamed.replaced.actions:
            raise OperationError(
                f"{new} has {renamed.replaced.actions} actions of its own already (a daemon ran "
                f"it): its history and {old}'s cannot be merged"
            )
        ledger.rename_automation(old, new)
    return renamed


def _check_key(key: str) -> ParsedKey:
    try:
        return parse_action_key(key)
    except ValueError as error:
        raise OperationError(str(error)) from None


def _describe_evaluating(ledger: Ledger, promotion: Action) -> dict[str, Any]:
    """A candidate waiting for its evaluations: on which dataset version, and how each one
    stands."""
    record = promotion.details["evaluation"]
    sides = [("candidate", record["candidate"]), ("production", record.get("production"))]
    evaluations = []
    for role, side in sides:
        if side is None:
            continue
        evaluation = ledger.action(side["key"])
        state = evaluation.state.value if evaluation is not None else "not claimed"
        evaluations.append({"role": role, "key": side["key"], "state": state})
    return {
        "automation": promotion.automation,
        "key": promotion.key,
        "model_version_id": promotion.subject_id,
        "evaluation_dataset": f"{record['dataset_name']}:{record['dataset_version']}",
        "evaluation_dataset_version_id": record["dataset_version_id"],
        "evaluations": evaluations,
    }


def _describe_waiting(subject: Subject) -> dict[str, Any]:
    """A version the daemon waits on (its producing or training run), and for how long: since
    the daemon first saw it waiting, on the daemon's clock."""
    described: dict[str, Any] = {
        "automation": subject.automation,
        "kind": subject.kind,
        "id": subject.id,
        "name": subject.name,
        "version": subject.version,
        "reason": subject.reason,
    }
    since = subject.details.get(WAITING_SINCE)
    if isinstance(since, int | float):
        described["waited_seconds"] = round(max(0.0, epoch() - since), 1)
    return described


def _describe_approval(approval: Approval, timeout: float | None) -> dict[str, Any]:
    """A version staged for approval: how long it waited, and how its wait ended."""
    waited = round(max(0.0, epoch() - approval.staged_at), 1)
    described: dict[str, Any] = {
        "automation": approval.automation,
        "model": approval.model_name,
        "model_version_id": approval.model_version_id,
        "number": approval.model_version_number,
        "state": approval.state,
        "staged_at": datetime.fromtimestamp(approval.staged_at, UTC).isoformat(timespec="seconds"),
        "value": approval.details.get("value"),
        "metric": approval.details.get("metric"),
    }
    if approval.state == "waiting":
        described["waited_seconds"] = waited
        described["approval_timeout_seconds"] = timeout
        described["expires_in_seconds"] = (
            None if timeout is None else round(max(0.0, timeout - waited), 1)
        )
    else:
        described |= {
            "by": approval.by,
            "resolved_at": approval.resolved_at,
            **{k: approval.details[k] for k in ("note", "via") if approval.details.get(k)},
        }
    return described


def _describe_change(change: ProductionChange) -> dict[str, Any]:
    return {
        "automation": change.automation,
        "model_version_id": change.model_version_id,
        "number": change.model_version_number,
        "previous_model_version_id": change.previous_model_version_id,
        "changed_by": change.changed_by,
        "changed_at": change.changed_at,
        **{k: v for k, v in change.details.items() if v is not None},
    }


def _describe(action: Action) -> dict[str, Any]:
    described: dict[str, Any] = {
        "key": action.key,
        "automation": action.automation,
        "state": action.state.value,
        "attempts": action.attempts,
        "updated_at": action.updated_at,
    }
    for name in ("run_id", "error"):
        if getattr(action, name):
            described[name] = getattr(action, name)
    if action.state is ActionState.RETRY_WAIT:
        described["retry_in_seconds"] = round(max(0.0, action.not_before - epoch()), 1)
    decision = action.details.get("decision")
    if decision is not None:
        described["decision"] = decision
    for name in ("phase", "evaluation", *DATASET_DETAILS):  # champion against challenger
        if action.details.get(name) is not None:
            described[name] = action.details[name]
    for name in (
        "replayed_at",
        "skipped_at",
        "claimed_by",
        "after",
        "blocked_by",
        "stint",
        SUPERSEDED_BY,
        "fire",
        SCORING_ID,
    ):
        if action.details.get(name) is not None:
            described[name] = action.details[name]
    return described
