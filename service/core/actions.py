"""Action keys and the life cycle of an action in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.core.automation import DEFAULT_AUTOMATION

AUTOPILOT_TAG = "autopilot"


class ActionKind(StrEnum):
    """What the daemon does. The value is the prefix of the action's idempotency key."""

    TRAIN = "train"
    PROMOTE = "promote"
    INFER = "infer"


class ActionState(StrEnum):
    """Where an action is in its life. Terminal states never change again."""

    PENDING = "pending"  # claimed: to be launched (or, for a promotion, applied)
    RUNNING = "running"  # launched: a run exists or is being created
    RETRY_WAIT = "retry_wait"  # an attempt failed; waits for its backoff to expire
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed, or the action cannot be done
    SKIPPED = "skipped"  # an operator said it is not to be done


TERMINAL_STATES = frozenset({ActionState.SUCCEEDED, ActionState.FAILED, ActionState.SKIPPED})

_ALLOWED: dict[ActionState, frozenset[ActionState]] = {
    ActionState.PENDING: frozenset(
        {ActionState.RUNNING, ActionState.SUCCEEDED, ActionState.FAILED, ActionState.SKIPPED}
    ),
    ActionState.RUNNING: frozenset(
        {
            ActionState.PENDING,  # the launch never reached the store (crash): launch again
            ActionState.RETRY_WAIT,
            ActionState.SUCCEEDED,
            ActionState.FAILED,
        }
    ),
    ActionState.RETRY_WAIT: frozenset({ActionState.PENDING, ActionState.SKIPPED}),
    ActionState.SUCCEEDED: frozenset(),
    ActionState.FAILED: frozenset({ActionState.PENDING, ActionState.SKIPPED}),  # operator replay
    ActionState.SKIPPED: frozenset({ActionState.PENDING}),  # operator replay
}


class IllegalTransition(ValueError):
    """A ledger write that would break an action's life cycle (a bug, never user input)."""


def check_transition(old: ActionState, new: ActionState) -> None:
    """Raise IllegalTransition unless an action may move from `old` to `new`."""
    if new not in _ALLOWED[old]:
        raise IllegalTransition(f"action cannot move from {old} to {new}")


def action_key(kind: ActionKind, subject_id: str, automation: str = DEFAULT_AUTOMATION) -> str:
    """The idempotency key: one action of a kind per dataset or model version, ever.

    One dataset version may feed several automations, so a training key names its automation
    (`train:<automation>:<id>`), except the `default` one's, whose keys predate automations and
    are on runs in the store already. A model belongs to one automation: its keys need none.
    """
    if kind is ActionKind.TRAIN and automation != DEFAULT_AUTOMATION:
        return f"{kind.value}:{automation}:{subject_id}"
    return f"{kind.value}:{subject_id}"


@dataclass(frozen=True)
class ParsedKey:
    kind: ActionKind
    subject_id: str
    automation: str | None  # None: not in the key (a promotion or an inference)


def parse_action_key(key: str) -> ParsedKey:
    """Split a key into its kind, subject id and automation; ValueError for anything else."""
    prefix, sep, rest = key.partition(":")
    if not sep or not rest:
        raise ValueError(f"not an action key: {key!r} (expected e.g. train:<dataset version id>)")
    try:
        kind = ActionKind(prefix)
    except ValueError:
        kinds = ", ".join(k.value for k in ActionKind)
        raise ValueError(f"unknown action kind {prefix!r} in {key!r} (one of {kinds})") from None
    automation, sep, subject = rest.rpartition(":")
    if kind is not ActionKind.TRAIN or not sep:
        default = DEFAULT_AUTOMATION if kind is ActionKind.TRAIN else None
        return ParsedKey(kind, rest, default)
    return ParsedKey(kind, subject, automation)


def run_tags(key: str) -> list[str]:
    """Tags every launched run carries, so a crash can be resolved by looking in the store."""
    return [AUTOPILOT_TAG, key]
