"""Pipeline parameters with `{{ placeholder }}` values, filled from the event that launches a run.

A string value that is exactly one placeholder becomes the placeholder's value (an id stays a
string, a number stays a number); a string with text around placeholders is interpolated; every
other JSON value passes through unchanged. Which names exist depends on the action: see
TRAINING_PLACEHOLDERS and INFERENCE_PLACEHOLDERS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")

DATASET_FIELDS = ("dataset.id", "dataset.name", "dataset.version", "dataset.run_id")
DATASET_PREFIXES = ("dataset.run_outputs.",)
TRAINING_PLACEHOLDERS = (*DATASET_FIELDS, "model.name")
INFERENCE_PLACEHOLDERS = (
    "model.name",
    "model_version.id",
    "model_version.number",
    "model_version.name",
    *DATASET_FIELDS,
)
INFERENCE_PREFIXES = ("model_version.metadata.", *DATASET_PREFIXES)
# An evaluation scores one model version on one version of the evaluation dataset.
EVALUATION_PLACEHOLDERS = (
    "model.name",
    "model_version.id",
    "model_version.number",
    "model_version.name",
    "evaluation_dataset.id",
    "evaluation_dataset.name",
    "evaluation_dataset.version",
)
EVALUATION_PREFIXES = ("model_version.metadata.",)
# Each kind of pipeline's placeholders: (names, prefixes of names).
KNOWN = {
    "training": (TRAINING_PLACEHOLDERS, DATASET_PREFIXES),
    "inference": (INFERENCE_PLACEHOLDERS, INFERENCE_PREFIXES),
    "evaluation": (EVALUATION_PLACEHOLDERS, EVALUATION_PREFIXES),
}


class PlaceholderMissing(LookupError):
    """A placeholder that this event cannot fill (no such sibling output, no known dataset)."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        super().__init__(f"placeholder {{{{ {name} }}}} cannot be filled: {why}")


def placeholders(parameters: Mapping[str, Any]) -> set[str]:
    """Every placeholder name used anywhere in the parameters (nested values included)."""
    return {match for value in _strings(parameters) for match in PLACEHOLDER.findall(value)}


def uses_dataset(parameters: Mapping[str, Any]) -> bool:
    """True when the parameters pass the triggering dataset on (any `dataset.*` placeholder)."""
    return any(name.startswith("dataset.") for name in placeholders(parameters))


def unknown_placeholders(parameters: Mapping[str, Any], training: bool) -> list[str]:
    """Placeholder names that no training (or inference) event can fill."""
    return unknown_for(parameters, "training" if training else "inference")


def unknown_for(parameters: Mapping[str, Any], kind: str) -> list[str]:
    """Placeholder names that no event of this kind of pipeline (`KNOWN`) can fill: a
    configuration error."""
    names, prefixes = KNOWN[kind]
    return sorted(
        name
        for name in placeholders(parameters)
        if name not in names and not any(_has_suffix(name, p) for p in prefixes)
    )


def render(parameters: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill every placeholder from `values`; PlaceholderMissing for the first one absent."""
    return {key: _render(value, values) for key, value in parameters.items()}


def _render(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, values) for item in value]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole is not None:
        return _value(whole.group(1), values)
    return PLACEHOLDER.sub(lambda match: str(_value(match.group(1), values)), value)


def _value(name: str, values: Mapping[str, Any]) -> Any:
    if name not in values:
        raise PlaceholderMissing(name, "this event has no such value")
    found = values[name]
    if isinstance(found, PlaceholderMissing):
        raise found
    return found


def _has_suffix(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and len(name) > len(prefix)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
