"""What every stage of the tick shares: the ledger, the store, the settings, the automations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.core.actions import ActionKind, ActionState
from service.core.automation import Automation
from service.core.polling import format_floor, parse_floor
from service.core.records import RunInfo, RunStatus
from service.ledger import Ledger, Subject
from service.logs import get_logger
from service.notify.events import Notice
from service.notify.outbox import Outbox
from service.settings import Settings
from service.store import StoreAdapter

DATASET, MODEL = "dataset", "model"
# Kept in a waiting version's ledger details: when the daemon first saw it waiting (its own
# clock, epoch seconds), so that how long it has waited is a duration on one clock.
WAITING_SINCE = "waiting_since"
TRAINING_NOT_SETTLED = "training_run_not_settled"  # a model version's wait reason
ATTEMPT_TOKEN = "attempt_token"  # in an action's details: the id of its current attempt


@dataclass
class Context:
    settings: Settings
    ledger: Ledger
    store: StoreAdapter
    # The daemon's own clock, for durations only (how long a version has waited): epoch seconds,
    # so that a wait survives a restart. Never compared with the store's timestamps.
    clock: Callable[[], float] = time.time
    outbox: Outbox | None = None
    automations: dict[str, Automation] = field(init=False)
    _unwatched: set[tuple[str, str]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.automations = {a.name: a for a in self.settings.automations}

    def unwatched_name(self, kind: str, name: str) -> None:
        """A version the store listed under a name no automation watches (the store matched
        a watched name by its own rules, core/names): left alone, said once per name."""
        if (kind, name) not in self._unwatched:
            self._unwatched.add((kind, name))
            get_logger().warning(
                "store.unwatched_name_listed",
                kind=kind,
                name=name,
                detail="the store returned it for a watched name; its versions are ignored",
            )

    def notify(self, notice: Notice) -> None:
        """Record a notification (service/notify/) if it is configured: call it inside the
        ledger transaction that records what it reports."""
        if self.outbox is not None:
            self.outbox.add(notice)

    def log(self, automation: Automation | str) -> Any:
        """The logger of one automation: every event carries its name."""
        name = automation if isinstance(automation, str) else automation.name
        return get_logger().bind(automation=name)


def utc_now() -> datetime:
    """Naive UTC, like ZenML's timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def first_seen(prior: Subject | None, key: str, now: float) -> float:
    """When the daemon first saw a version in some state, on its own clock, as kept in the
    version's ledger details under `key`: `now` at first sight (or if the clock went back
    past it, so that a clock set back delays nothing for long)."""
    since = prior.details.get(key) if prior is not None and not prior.final else None
    if isinstance(since, int | float) and not isinstance(since, bool) and since <= now:
        return float(since)
    return now


def stored_floor(ledger: Ledger, stream: str) -> datetime | None:
    """A stream's floor (cursors written as version numbers are turned into floors at start)."""
    floor = parse_floor(ledger.get_cursor(stream))
    if isinstance(floor, int):
        raise RuntimeError(f"{stream} still holds a version number; start() upgrades it")
    return floor


def lowest_floor(floors: Iterable[datetime | None]) -> datetime | None:
    """The lowest of several floors; None (read from the beginning) is lowest of all."""
    listed = list(floors)
    return None if any(f is None for f in listed) else min(f for f in listed if f is not None)


def upgrade_cursor(
    context: Context, automation: Automation, stream: str, number: int, floor: datetime | None
) -> None:
    """Replace a version-number cursor by the floor at that version's creation."""
    context.ledger.set_cursor(stream, format_floor(floor))
    context.log(automation).info(
        "startup.cursor_upgraded", stream=stream, number=number, floor=format_floor(floor) or None
    )


AFTER = "after"  # in an action's details: the action it runs after (`stages/actions.py`)


def after_latest_deployment(
    ledger: Ledger, automation: Automation, model_version_id: str
) -> dict[str, str]:
    """With a DEPLOYMENT_PIPELINE, an inference of the production version that is not its
    production change's own (a schedule's fire, a new scoring version) runs after the
    version's latest deployment (issue 18), as that change's inference does: never against a
    server not yet serving it, and failed with it (blocked) if it failed."""
    if automation.deployment is None:
        return {}
    deployments = ledger.stint_actions(ActionKind.DEPLOY, model_version_id)
    return {AFTER: deployments[-1].key} if deployments else {}


def training_not_settled(ledger: Ledger, run: RunInfo | None) -> bool:
    """A finished run of a training attempt still `running`: its worker has not reported yet
    (a poll can see the run end in the store a moment before). What the run made waits for the
    report (a tick comes at once with it), so one chain's events read in causal order:
    `training.succeeded` before the decision on its model version."""
    if run is None or run.status is RunStatus.IN_PROGRESS:
        return False
    for tag in run.tags:
        if not tag.startswith(f"{ActionKind.TRAIN.value}:"):
            continue
        action = ledger.action(tag)
        if action is None or action.state is not ActionState.RUNNING:
            continue
        token = action.details.get(ATTEMPT_TOKEN)
        if not token or run.name.endswith(f"-{token}"):  # this attempt's run, not a failed one's
            return True
    return False
