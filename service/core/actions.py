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
    EVALUATE = "evaluate"  # a model version scored on an evaluation dataset version
    DEPLOY = "deploy"  # a production version deployed before its inference


class ActionState(StrEnum):
    """Where an action is in its life. Terminal states never change again."""

    PENDING = "pending"  # claimed: to be launched (or, for a promotion, applied)
    RUNNING = "running"  # launched: a run exists or is being created
    RETRY_WAIT = "retry_wait"  # an attempt failed; waits for its backoff to expire
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed, or the action cannot be done
    SKIPPED = "skipped"  # an operator said it is not to be done
    # A training the gate passed over for a newer version of the same automation (issue 20):
    # never run unless replayed.
    SUPERSEDED = "superseded"


TERMINAL_STATES = frozenset(
    {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.SKIPPED, ActionState.SUPERSEDED}
)

_ALLOWED: dict[ActionState, frozenset[ActionState]] = {
    ActionState.PENDING: frozenset(
        {
            ActionState.RUNNING,
            ActionState.SUCCEEDED,
            ActionState.FAILED,
            ActionState.SKIPPED,
            ActionState.SUPERSEDED,
        }
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
    ActionState.SUPERSEDED: frozenset({ActionState.PENDING}),  # operator replay
}


class IllegalTransition(ValueError):
    """A ledger write that would break an action's life cycle (a bug, never user input)."""


def check_transition(old: ActionState, new: ActionState) -> None:
    """Raise IllegalTransition unless an action may move from `old` to `new`."""
    if new not in _ALLOWED[old]:
        raise IllegalTransition(f"action cannot move from {old} to {new}")


# Between a key's subject and its qualifier. A qualifier tells apart several actions of one kind
# on one subject: a model version's second time in production (`infer:<id>@2`), the scoring
# dataset an inference scores (`infer:<id>@score:<dataset id>`), the dataset version an
# evaluation uses (`evaluate:<id>@<dataset id>`), a schedule's fire time. Ids hold no `@`.
QUALIFIER = "@"


def action_key(
    kind: ActionKind,
    subject_id: str,
    automation: str = DEFAULT_AUTOMATION,
    qualifier: str | None = None,
) -> str:
    """The idempotency key: one action of a kind per subject (and qualifier), ever.

    One dataset version may feed several automations, so a training key names its automation
    (`train:<automation>:<id>`), except the `default` one's, whose keys predate automations and
    are on runs in the store already. A model belongs to one automation: its keys need none.
    """
    base = f"{kind.value}:{subject_id}"
    if kind is ActionKind.TRAIN and automation != DEFAULT_AUTOMATION:
        base = f"{kind.value}:{automation}:{subject_id}"
    return base if qualifier is None else f"{base}{QUALIFIER}{qualifier}"


@dataclass(frozen=True)
class ParsedKey:
    kind: ActionKind
    subject_id: str
    automation: str | None  # None: not in the key (a promotion or an inference)
    qualifier: str | None = None


def parse_action_key(key: str) -> ParsedKey:
    """Split a key into its kind, subject id, automation and qualifier; ValueError for
    anything else."""
    base, at, qualifier = key.partition(QUALIFIER)
    if at and not qualifier:
        raise ValueError(f"empty qualifier after {QUALIFIER!r} in {key!r}")
    prefix, sep, rest = base.partition(":")
    if not sep or not rest:
        raise ValueError(f"not an action key: {key!r} (expected e.g. train:<dataset version id>)")
    try:
        kind = ActionKind(prefix)
    except ValueError:
        kinds = ", ".join(k.value for k in ActionKind)
        raise ValueError(f"unknown action kind {prefix!r} in {key!r} (one of {kinds})") from None
    automation, sep, subject = rest.rpartition(":")
    extra = qualifier or None
    if kind is not ActionKind.TRAIN or not sep:
        default = DEFAULT_AUTOMATION if kind is ActionKind.TRAIN else None
        return ParsedKey(kind, rest, default, extra)
    return ParsedKey(kind, subject, automation, extra)


def run_tags(key: str) -> list[str]:
    """Tags every launched run carries, so a crash can be resolved by looking in the store."""
    return [AUTOPILOT_TAG, key]
