"""Scoring versions: which one is newest, and how an inference action carries one."""

from datetime import datetime

from service.core.actions import parse_action_key
from service.core.scoring import ScoringVersion, newer, scoring_key

T0 = datetime(2026, 11, 28, 9, 0, 0)


def _version(id: str, created: datetime = T0, number: int | None = 1) -> ScoringVersion:
    return ScoringVersion(id, "iris_scoring_dataset", str(number), number, created, "run-1")


def test_the_newest_is_by_the_stores_created_then_number_then_id():
    first = _version("a", T0, 1)
    assert newer(first, None)
    assert newer(_version("b", T0.replace(second=1), 1), first)
    assert not newer(_version("b", T0, 0), first)
    # The same second (MySQL keeps `created` to the second): the higher number is newer.
    assert newer(_version("c", T0, 2), first)
    assert not newer(_version("c", T0, None), first)  # a custom name has no number
    assert not newer(first, first)


def test_an_actions_details_carry_the_scoring_version_and_read_back():
    version = ScoringVersion("d1", "scores", "2026-11-28", None, T0.replace(microsecond=5), None)
    details = {"model_version_id": "mv", **version.details()}
    assert ScoringVersion.from_details(details) == version
    assert ScoringVersion.from_details({"model_version_id": "mv"}) is None


def test_a_scoring_key_is_the_production_versions_inference_qualified_by_the_dataset():
    key = scoring_key("mv-1", "ds-1")
    assert key == "infer:mv-1@score:ds-1"
    parsed = parse_action_key(key)
    assert (parsed.kind, parsed.subject_id, parsed.qualifier) == ("infer", "mv-1", "score:ds-1")
