"""The demo producer's script has the shape its docstring promises (no zenml involved).

The accuracies behind the shape are measured, not tested here: see the table in
``pipelines/producer.py``. These tests keep an edit of the script from quietly losing a
branch of the demo or the ladder of promotions.
"""

from __future__ import annotations

from itertools import islice, pairwise

from pipelines.producer import (
    APPROVED_TAG,
    CYCLE_SEED_STRIDE,
    DEMO_RANDOM_STATE,
    POOR_LABEL_NOISE,
    SCRIPT,
    Case,
    scripted_cases,
)


def _approved(case: Case) -> bool:
    return APPROVED_TAG in case.tags


def _promoting(case: Case) -> bool:
    """Approved, on the measured split, and not deliberately poor."""
    return (
        _approved(case)
        and case.random_state == DEMO_RANDOM_STATE
        and case.label_noise < POOR_LABEL_NOISE
    )


def test_names_are_unique_and_survive_the_printed_line():
    names = [case.name for case in SCRIPT]
    assert len(set(names)) == len(names)
    assert not any(":" in name for name in names)


def test_the_promoting_cases_climb_a_ladder_of_falling_label_noise():
    ladder = [case.label_noise for case in SCRIPT if _promoting(case)]
    assert len(ladder) >= 3
    assert all(later < earlier for earlier, later in pairwise(ladder))
    assert ladder[-1] == 0.0
    assert _promoting(SCRIPT[0]), "the first dataset should put a model in production"


def test_every_other_branch_appears_exactly_once():
    unapproved = [case for case in SCRIPT if not _approved(case) and not case.scoring]
    poor = [case for case in SCRIPT if _approved(case) and case.label_noise >= POOR_LABEL_NOISE]
    other = [
        case
        for case in SCRIPT
        if _approved(case) and not _promoting(case) and case.label_noise < POOR_LABEL_NOISE
    ]
    assert len(unapproved) == len(poor) == len(other) == 1
    assert poor[0].label_noise == POOR_LABEL_NOISE
    assert other[0].label_noise == 0.0, "clean data on another split clears the threshold"
    first_promotion = next(i for i, case in enumerate(SCRIPT) if _promoting(case))
    assert SCRIPT.index(other[0]) > first_promotion, "it needs a production to lose to"


def test_tags_are_only_ever_the_approval_tag():
    assert {case.tags for case in SCRIPT} <= {(), (APPROVED_TAG,)}


def test_scripted_cases_stops_after_count():
    assert len(list(scripted_cases(3))) == 3
    assert list(scripted_cases(len(SCRIPT))) == list(SCRIPT)


def test_later_cycles_repeat_the_script_on_new_splits():
    cycles = 3
    cases = list(islice(scripted_cases(None), cycles * len(SCRIPT)))
    for number in range(cycles):
        cycle = cases[number * len(SCRIPT) : (number + 1) * len(SCRIPT)]
        assert [(c.name, c.label_noise, c.tags) for c in cycle] == [
            (c.name, c.label_noise, c.tags) for c in SCRIPT
        ]
        assert [c.random_state for c in cycle] == [
            c.random_state + number * CYCLE_SEED_STRIDE for c in SCRIPT
        ]
    datasets = {(c.random_state, c.label_noise, c.scoring) for c in cases}
    assert len(datasets) == len(cases), "no cycle republishes an earlier dataset"


def test_scoring_batches_arrive_while_a_version_is_in_production_and_after_the_last_move():
    """`make run` shows an inference a new scoring batch set off: one arrives after the first
    promotion (production scores it at once) and one after the last (the version that stays
    in production scores every batch of the later cycles)."""
    scoring = [i for i, case in enumerate(SCRIPT) if case.scoring]
    promotions = [i for i, case in enumerate(SCRIPT) if _promoting(case)]
    assert len(scoring) >= 2
    assert promotions[0] < scoring[0] < promotions[-1] < scoring[-1]
    assert all(not SCRIPT[i].tags for i in scoring), "the demo scores every batch, untagged"
