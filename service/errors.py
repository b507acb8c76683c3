"""How an error is described in a log line or the ledger."""

from __future__ import annotations


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception: the step's own error, not ZenML's wrapper around it."""
    seen = set()
    while (error.__cause__ or error.__context__) is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return error


def describe_error(error: BaseException) -> str:
    cause = _root_cause(error)
    text = f"{type(cause).__name__}: {cause}"
    if cause is not error:
        text = f"{text} (raised as {type(error).__name__})"
    return text[:2000]
