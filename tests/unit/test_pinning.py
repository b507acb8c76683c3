"""Which version reference pins a run to exactly one model version (`service/core/pinning.py`)."""

from __future__ import annotations

import pytest

from service.core.pinning import Unpinnable, pin_reference


@pytest.mark.parametrize(
    ("name", "number"),
    [("4", 4), ("sgd", 1), ("2026-11-27", 3), ("Production", 2), ("v3", 3)],
)
def test_a_version_named_its_number_or_not_a_number_nor_a_stage_is_pinned_by_its_name(name, number):
    assert pin_reference("churn", name, number) == name


@pytest.mark.parametrize(
    ("name", "number", "resolves"),
    [
        ("3", 5, "the version numbered 3"),
        ("1", 10, "the version numbered 1"),
        ("production", 2, "stage 'production'"),
        ("latest", 7, "stage 'latest'"),
    ],
)
def test_a_version_named_another_number_or_a_stage_cannot_be_pinned(name, number, resolves):
    with pytest.raises(Unpinnable) as refused:
        pin_reference("churn", name, number)
    message = str(refused.value)
    assert f"version {number} of model churn is named {name!r}" in message
    assert resolves in message
