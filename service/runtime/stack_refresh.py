"""A run uses the stack as the store holds it when the run starts, not as the template saw it.

A worker is a fork of the template, which read the stack once while warming up. ZenML 0.98
keeps what it read for the life of the process, in two places:
- the active stack's model (`StackResponse`, its components embedded): on the `Client` when
  `ZENML_ACTIVE_STACK_ID` chooses the stack (`AUTOPILOT_STACK`), on the repository's client
  configuration, or on the `GlobalConfiguration` (`Client.active_stack_model`);
- the `Stack` objects built from it, in `zenml.stack.stack._STACK_CACHE`, keyed by the stack's
  id and `updated`, which a change to one of its components (say, its artifact store's path)
  does not bump.

So a fork ran on the components of the day the daemon started. `use_stack_as_stored` reads the
stack again (one query; building the `Stack` lists its components, a second one) and puts the
fresh model where the stale one was. Which stack is used is not re-decided: `AUTOPILOT_STACK`,
or the stack active when the template warmed up (the daemon's start, or its last re-warm).
"""

from __future__ import annotations

from typing import Any


def use_stack_as_stored() -> None:
    """Make this process read its active stack, and build its components, from the store."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.stack import stack

    client = Client()
    stack_id = client.active_stack_model.id  # which stack: cached, no query
    fresh = client.get_stack(stack_id)
    holders: tuple[Any, ...] = (client, client._config, GlobalConfiguration())
    for holder in holders:
        cached = getattr(holder, "_active_stack", None)
        if cached is not None and cached.id == stack_id:
            holder._active_stack = fresh  # private: ZenML writes no config file for it
    stack._STACK_CACHE.clear()
