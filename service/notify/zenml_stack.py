"""What notifications need from ZenML (README "Who touches ZenML" lists this module): the
alerter of the stack the daemon runs its pipelines on, and where the server's dashboard shows a
run or a model version.

ZenML's alerters are stack components meant to be called in a step; `post()` also works
outside one (Slack's and Discord's fall back to the channel in the component's configuration;
ZenML-NOTES.md). The sender's alerter thread calls it; ZenML's client is shared across threads
there as it is in ZenML's own server (the REST store locks its session, the SQL store pools
connections).
"""

from __future__ import annotations

from collections.abc import Callable

from service.notify.sender import NoAlerter


def stack_alerter(stack: str | None) -> Callable[[str], bool]:
    """The `post` of the alerter of `stack` (the active stack when None); NoAlerter if it has
    none or it cannot be loaded (its integration is not installed)."""
    from zenml.client import Client
    from zenml.stack import Stack

    client = Client()
    model = (
        client.get_stack(stack, allow_name_prefix_match=False)
        if stack
        else client.active_stack_model
    )
    try:
        alerter = Stack.from_model(model).alerter
    except ImportError as error:
        raise NoAlerter(f"stack {model.name!r}: its alerter cannot be loaded: {error}") from None
    if alerter is None:
        raise NoAlerter(f"stack {model.name!r} has no alerter")
    post: Callable[[str], bool] = alerter.post
    return post
