"""The status page's read model: plain dicts, the same for the HTML page and `/api/status`.

Built from the ledger (a read-only connection of the caller's) and the daemon's health
snapshot, never from the store. Every list is bounded (`LIMITS`) and read through an index, so
the page costs the same with 1,000 or 100,000 judged versions. Texts that may carry a secret
(errors) are scrubbed as log lines are; every field is chosen here, none passed through whole.
The schema is documented in docs/status-page.md; `SCHEMA` changes when a field changes meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service import metrics
from service.core.actions import (
    TERMINAL_STATES,
    ActionKind,
    ActionState,
    action_key,
    parse_action_key,
)
from service.core.automation import Automation
from service.core.scoring import SCORING_ID
from service.ledger import Action, Approval, Ledger, ProductionChange, Subject, epoch
from service.redact import redact as scrub

SCHEMA = 1
LIMITS = {
    "candidates": 20,  # the chart's points
    "chains": 10,
    "open_actions": 20,
    "failed_actions": 10,
    "production_changes": 5,
}
OPEN_STATES = (ActionState.PENDING, ActionState.RUNNING, ActionState.RETRY_WAIT)
ERROR_CHARS = 500
AWAITING_APPROVAL = "awaiting_approval"  # a decision's outcome in PROMOTION_MODE=approval
Links = Mapping[str, str]  # "run" / "model_version": URL templates with `{id}` (a ZenML server)


def build(
    ledger: Ledger | None,
    automations: Sequence[Automation],
    daemon: dict[str, Any],
    links: Links | None = None,
) -> dict[str, Any]:
    """The whole status: the daemon's health, then each automation's production, candidates,
    chains and open and failed actions. `ledger` None: the daemon has not opened it yet."""
    links = links or {}
    status: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": _iso(datetime.now(UTC)),
        "daemon": daemon,
        "limits": LIMITS,
        "automations": [],
        "unconfigured": {},
        "notifications": None,
    }
    if ledger is None:
        status["automations"] = [_configuration(a) for a in automations]
        return status
    counts = ledger.count_by_state(*OPEN_STATES, ActionState.FAILED)
    configured = {a.name for a in automations}
    status["automations"] = [
        _automation(ledger, automation, counts, links) for automation in automations
    ]
    for (automation, _, state), count in counts.items():
        if automation not in configured:  # renamed or removed: its actions wait (docs)
            waiting = status["unconfigured"].setdefault(automation or "(operator)", {})
            waiting[state] = waiting.get(state, 0) + count
    status["notifications"] = notification_outbox(ledger)
    return status


def daemon_health(
    alive: bool,
    health: Mapping[str, Any],
    ready: bool,
    readiness: Mapping[str, Any],
    last_poll: str | None,
    store: Mapping[str, Any],
) -> dict[str, Any]:
    """The daemon's own health, from the snapshot `/healthz` and `/readyz` serve, and the
    gauges the tick keeps (lag per stream, the worker template)."""
    error = readiness.get("store_error")
    return {
        "alive": alive,
        "store_reachable": ready,
        "store_error": None if error is None else _text(str(error)),
        "seconds_since_loop_activity": health.get("seconds_since_loop_activity"),
        "seconds_since_last_successful_poll": health.get("seconds_since_last_successful_poll"),
        "consecutive_failures": health.get("consecutive_failures"),
        "last_successful_poll": last_poll,
        "worker_template_ready": _gauge(metrics.TEMPLATE_READY) == 1.0,
        "lag_seconds": {
            sample.labels["stream"]: round(sample.value, 3)
            for family in metrics.LAG.collect()
            for sample in family.samples
        },
        "store": dict(store),
    }


def notification_outbox(ledger: Ledger) -> dict[str, Any] | None:
    """Undelivered notifications per destination, for the page's "Notification outbox"
    section: `{"destinations": [{"destination", "undelivered", "oldest"}]}`. None while the
    daemon has no outbox (issue "Tell people" fills this in from its own table)."""
    return None


# -- one automation ---------------------------------------------------------------------------


def _configuration(automation: Automation) -> dict[str, Any]:
    policy = automation.promotion
    return {
        "name": automation.name,
        "model": automation.model_name,
        "datasets": list(automation.dataset_names),
        "required_tags": list(automation.required_tags),
        "scoring_datasets": list(automation.scoring_dataset_names),
        "policy": {
            "metric": policy.metric,
            "threshold": policy.threshold,
            "goal": policy.goal.value,
            "must_beat_production": policy.must_beat_production,
            "source": policy.source,
            "mode": automation.promotion_mode.value,
            "approval_timeout_seconds": automation.approval_timeout_seconds,
        },
    }


def _automation(
    ledger: Ledger,
    automation: Automation,
    counts: Mapping[tuple[str, str, str], int],
    links: Links,
) -> dict[str, Any]:
    name = automation.name
    production_id = ledger.get_cursor(automation.production_stream)
    changes = ledger.production_changes(name, LIMITS["production_changes"])
    promotions = ledger.latest_actions(name, ActionKind.PROMOTE, LIMITS["candidates"] * 2)
    numbers = _numbers(ledger, name, promotions, changes)
    approvals = _approvals(ledger, automation, promotions)
    candidates = [
        _candidate(action, numbers, production_id, links, approvals.get(action.subject_id))
        for action in reversed(promotions[: LIMITS["candidates"]])
    ]

    def count(state: ActionState) -> int:
        return sum(n for (a, _, s), n in counts.items() if a == name and s == state.value)

    return {
        **_configuration(automation),
        "production": _production(ledger, production_id, changes, numbers, links),
        "production_changes": [_change(change, numbers) for change in changes],
        "awaiting_approval": _awaiting(ledger, automation, links),
        "candidates": candidates,
        "chains": _chains(ledger, name, promotions, numbers, links, approvals),
        "queue": {state.value: count(state) for state in OPEN_STATES},
        "open_actions": [
            _action(a, links) for a in ledger.open_actions(name, LIMITS["open_actions"])
        ],
        "failed_count": count(ActionState.FAILED),
        "failed_actions": [
            _action(a, links)
            for a in ledger.latest_in(ActionState.FAILED, name, LIMITS["failed_actions"])
        ],
    }


def _numbers(
    ledger: Ledger,
    automation: str,
    promotions: Iterable[Action],
    changes: Iterable[ProductionChange],
) -> dict[str, int]:
    """Model version numbers by id, from what the ledger recorded with them (and, for a ledger
    older than those records, from the versions it judged)."""
    numbers: dict[str, int] = {}
    for action in promotions:
        if isinstance(action.details.get("model_version_number"), int):
            numbers[action.subject_id] = action.details["model_version_number"]
    for change in changes:
        if change.model_version_id and change.model_version_number is not None:
            numbers[change.model_version_id] = change.model_version_number
    unknown = [a.subject_id for a in promotions if a.subject_id not in numbers]
    for id, subject in ledger.subjects_by_id(automation, unknown).items():
        if subject.version.isdigit():
            numbers[id] = int(subject.version)
    return numbers


def _production(
    ledger: Ledger,
    production_id: str | None,
    changes: Sequence[ProductionChange],
    numbers: Mapping[str, int],
    links: Links,
) -> dict[str, Any] | None:
    """The production version the daemon last saw: since when and by whom, when the change was
    recorded (a ledger from before production changes were recorded knows only which)."""
    if production_id is None:
        return None
    promotion = ledger.action(action_key(ActionKind.PROMOTE, production_id))
    decision = (promotion.details.get("decision") or {}) if promotion else {}
    number = numbers.get(production_id)
    if number is None:
        inferences = ledger.stint_actions(ActionKind.INFER, production_id)
        number = inferences[-1].details.get("model_version_number") if inferences else None
    latest = changes[0] if changes and changes[0].model_version_id == production_id else None
    previous = latest.previous_model_version_id if latest else None
    return {
        "model_version_id": production_id,
        "number": number,
        "url": _link(links, "model_version", production_id),
        "since": latest.changed_at if latest else None,
        "changed_by": latest.changed_by if latest else None,
        "by": latest.details.get("by") if latest else None,
        "reason": latest.details.get("reason") if latest else None,
        "recorded": latest is not None,
        "previous_model_version_id": previous,
        "previous_number": numbers.get(previous) if previous else None,
        "metric": decision.get("metric"),
        "value": decision.get("value"),
        "outcome": decision.get("outcome"),
    }


def _change(change: ProductionChange, numbers: Mapping[str, int]) -> dict[str, Any]:
    previous = change.previous_model_version_id
    return {
        "model_version_id": change.model_version_id,
        "number": change.model_version_number,
        "changed_by": change.changed_by,
        "changed_at": change.changed_at,
        "previous_model_version_id": previous,
        "previous_number": numbers.get(previous) if previous else None,
        "by": change.details.get("by"),
        "reason": _text(str(change.details["reason"])) if change.details.get("reason") else None,
        "stint": change.details.get("stint"),
    }


def _approvals(
    ledger: Ledger, automation: Automation, promotions: Sequence[Action]
) -> dict[str, Approval]:
    """How the waits for approval of these candidates ended (or not yet)."""
    if not ledger.has_table("approvals"):  # a ledger no daemon with approvals has opened
        return {}
    found = {}
    for action in promotions:
        if (action.details.get("decision") or {}).get("outcome") == AWAITING_APPROVAL:
            approval = ledger.approval(automation.name, action.subject_id)
            if approval is not None:
                found[action.subject_id] = approval
    return found


def _awaiting(ledger: Ledger, automation: Automation, links: Links) -> list[dict[str, Any]]:
    """The versions waiting for a person, the longest waiting first, with their timeout."""
    if not ledger.has_table("approvals"):
        return []
    timeout = automation.approval_timeout_seconds
    listed = []
    for approval in ledger.approvals_in("waiting", automation.name, LIMITS["candidates"]):
        waited = round(max(0.0, epoch() - approval.staged_at), 1)
        listed.append(
            {
                "model_version_id": approval.model_version_id,
                "number": approval.model_version_number,
                "url": _link(links, "model_version", approval.model_version_id),
                "metric": approval.details.get("metric"),
                "value": approval.details.get("value"),
                "staged_at": _iso(datetime.fromtimestamp(approval.staged_at, UTC)),
                "waited_seconds": waited,
                "approval_timeout_seconds": timeout,
                "expires_in_seconds": None if timeout is None else round(timeout - waited, 1),
                "approve": f"autopilot approve {approval.model_name} "
                f"{approval.model_version_number}",
            }
        )
    return listed


def _candidate(
    action: Action,
    numbers: Mapping[str, int],
    production_id: str | None,
    links: Links,
    approval: Approval | None = None,
) -> dict[str, Any]:
    decision = action.details.get("decision") or {}  # none while evaluations run
    return {
        "model_version_id": action.subject_id,
        "number": numbers.get(action.subject_id),
        "url": _link(links, "model_version", action.subject_id),
        "outcome": decision.get("outcome"),
        "reason": decision.get("reason"),
        "detail": _text(str(decision.get("detail", ""))),
        "metric": decision.get("metric"),
        "value": decision.get("value"),
        "threshold": decision.get("threshold"),
        "goal": decision.get("goal", "maximize"),
        "production_version_id": decision.get("production_version_id"),
        "production_value": decision.get("production_value"),
        "decided_at": action.created_at,
        "is_production": action.subject_id == production_id,
        "dataset_version_id": action.details.get("dataset_version_id"),
        "training_run_id": action.details.get("training_run_id"),
        "approval": None
        if approval is None
        else {"state": approval.state, "by": approval.by, "resolved_at": approval.resolved_at},
    }


# -- chains: dataset -> training run -> model version -> decision -> inference run -----------


def _chains(
    ledger: Ledger,
    automation: str,
    promotions: Sequence[Action],
    numbers: Mapping[str, int],
    links: Links,
    approvals: Mapping[str, Approval],
) -> list[dict[str, Any]]:
    trainings = ledger.latest_actions(automation, ActionKind.TRAIN, LIMITS["chains"])
    if not trainings:
        return []
    by_run = {
        str(a.details["training_run_id"]): a for a in promotions if a.details.get("training_run_id")
    }
    inference_keys = [action_key(ActionKind.INFER, a.subject_id) for a in promotions]
    inferences = ledger.actions_by_key(inference_keys)
    for promotion in promotions:  # first served in a later stint (its key is `@<stint>`)
        key = action_key(ActionKind.INFER, promotion.subject_id)
        if key not in inferences and _served(promotion):
            stints = ledger.stint_actions(ActionKind.INFER, promotion.subject_id)
            if stints:
                inferences[key] = stints[0]
    for inference in list(inferences.values()):  # a ledger older than the ids in promotions
        run = inference.details.get("training_run_id")
        promotion_key = action_key(ActionKind.PROMOTE, inference.subject_id)
        if run and str(run) not in by_run:
            found = next((a for a in promotions if a.key == promotion_key), None)
            if found is not None:
                by_run[str(run)] = found
    datasets = ledger.subjects_by_id(automation, [a.subject_id for a in trainings])
    # A deployment has its inference's stint (`deploy:<id>`, `deploy:<id>@<stint>`); the
    # evaluations are those the promotion records (`evaluate:<id>@<evaluation dataset id>`).
    deployments = ledger.actions_by_key([_deployment_key(i.key) for i in inferences.values()])
    evaluations = ledger.actions_by_key(
        [key for promotion in promotions for _, key in _evaluation_keys(promotion)]
    )
    related = Related(inferences, deployments, evaluations)
    return [
        _chain(
            training,
            datasets.get(training.subject_id),
            by_run,
            related,
            numbers,
            links,
            approvals,
        )
        for training in trainings
    ]


@dataclass(frozen=True)
class Related:
    """The actions of the chains' model versions, by key."""

    inferences: Mapping[str, Action]
    deployments: Mapping[str, Action]
    evaluations: Mapping[str, Action]


def _deployment_key(inference_key: str) -> str:
    """The deployment an inference runs after: the same version, the same stint."""
    parsed = parse_action_key(inference_key)
    return action_key(ActionKind.DEPLOY, parsed.subject_id, qualifier=parsed.qualifier)


def _evaluation_keys(promotion: Action) -> list[tuple[str, str]]:
    """(role, key) of the evaluations a promotion was (or is being) decided on."""
    evaluation = promotion.details.get("evaluation") or {}
    sides = ((role, evaluation.get(role)) for role in ("candidate", "production"))
    return [
        (role, side["key"]) for role, side in sides if isinstance(side, dict) and side.get("key")
    ]


def _served(promotion: Action) -> bool:
    """A candidate that went to production (by the daemon, or approved): its chain has an
    inference, which is looked for beyond its first stint's key."""
    return (promotion.details.get("decision") or {}).get("outcome") in (
        "promoted",
        AWAITING_APPROVAL,
    )


def _chain(
    training: Action,
    dataset: Subject | None,
    promotions_by_run: Mapping[str, Action],
    related: Related,
    numbers: Mapping[str, int],
    links: Links,
    approvals: Mapping[str, Approval],
) -> dict[str, Any]:
    promotion = promotions_by_run.get(training.run_id or "")
    inferences = related.inferences
    # None until judged: a promotion waiting for its evaluations has no decision yet.
    decision = (promotion.details.get("decision") or None) if promotion else None
    inference = (
        inferences.get(action_key(ActionKind.INFER, promotion.subject_id)) if promotion else None
    )
    deployment = related.deployments.get(_deployment_key(inference.key)) if inference else None
    evaluations = [
        {"role": role, **_action(found, links)}
        for role, key in (_evaluation_keys(promotion) if promotion else [])
        if (found := related.evaluations.get(key)) is not None
    ]
    last = inference or promotion or training
    approval = approvals.get(promotion.subject_id) if promotion else None
    ended = _chain_ended(training, decision, inference, approval.state if approval else None)
    return {
        "dataset": {
            "id": training.subject_id,
            "name": dataset.name if dataset else training.details.get("artifact"),
            "version": dataset.version if dataset else training.details.get("version"),
        },
        "training": _action(training, links),
        "model_version": None
        if promotion is None
        else {
            "id": promotion.subject_id,
            "number": numbers.get(promotion.subject_id),
            "url": _link(links, "model_version", promotion.subject_id),
        },
        "decision": None
        if decision is None
        else {
            "outcome": decision.get("outcome"),
            "reason": decision.get("reason"),
            "value": decision.get("value"),
        },
        "evaluations": evaluations,
        "deployment": None if deployment is None else _action(deployment, links),
        "inference": None if inference is None else _action(inference, links),
        "started_at": training.created_at,
        "ended_at": last.updated_at if ended else None,
        "duration_seconds": _seconds_between(training.created_at, last.updated_at)
        if ended
        else None,
    }


def _chain_ended(
    training: Action,
    decision: Mapping[str, Any] | None,
    inference: Action | None,
    approval: str | None = None,
) -> bool:
    """Nothing more will happen in this chain unless a person steps in (a version awaiting
    approval: until its wait ended otherwise than approved)."""
    terminal = TERMINAL_STATES  # a superseded training (a training gate's) included
    if training.state is not ActionState.SUCCEEDED:
        return training.state in terminal
    if decision is None:
        return False  # its model version is not judged yet
    if inference is not None:  # promoted, or put in production by a person or its pipeline
        return inference.state in terminal
    if decision.get("outcome") == AWAITING_APPROVAL:
        return approval not in (None, "waiting", "approved")
    return decision.get("outcome") != "promoted"


# -- shared ---------------------------------------------------------------------------------


def _action(action: Action, links: Links) -> dict[str, Any]:
    described: dict[str, Any] = {
        "key": action.key,
        "kind": action.kind.value,
        "state": action.state.value,
        "attempts": action.attempts,
        "subject_id": action.subject_id,
        "run_id": action.run_id,
        "run_url": _link(links, "run", action.run_id),
        "duration_seconds": action.details.get("duration_seconds"),
        # An inference on a scoring dataset version (`infer:<mv>@score:<id>`, a production
        # change's or a schedule's fire on the newest): the version it scores.
        "scoring_dataset_version_id": action.details.get(SCORING_ID),
        "error": None if action.error is None else _text(action.error),
        "claimed_at": action.created_at,
        "updated_at": action.updated_at,
    }
    if action.state is ActionState.RETRY_WAIT:
        described["retry_in_seconds"] = round(max(0.0, action.not_before - epoch()), 1)
    return described


def _link(links: Links, kind: str, id: str | None) -> str | None:
    template = links.get(kind)
    return template.format(id=id) if template and id else None


def _text(text: str) -> str:
    scrubbed = scrub(text)
    return scrubbed if len(scrubbed) <= ERROR_CHARS else scrubbed[: ERROR_CHARS - 1] + "…"


def _gauge(gauge: Any) -> float | None:
    samples = [sample for family in gauge.collect() for sample in family.samples]
    return float(samples[0].value) if samples else None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return round(
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1
        )
    except ValueError:  # a time written by an older daemon, or a test's placeholder
        return None
