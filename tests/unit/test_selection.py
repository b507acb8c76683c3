from service.core.actions import AUTOPILOT_TAG
from service.core.records import RunStatus
from service.core.selection import (
    LOOK_EVERY_TICK_FOR,
    LOOK_INTERVAL,
    TAGS_MAY_FOLLOW,
    SkipReason,
    Verdict,
    evaluate_dataset,
    look_again,
)
from tests.unit.factories import dataset, run

REQUIRED = ["approved"]


def test_version_with_every_required_tag_from_a_finished_run_is_selected():
    decision = evaluate_dataset(dataset({"approved", "extra"}, run()), REQUIRED)
    assert decision.verdict is Verdict.TRAIN
    assert decision.final


def test_version_saved_outside_a_pipeline_is_selected_at_once():
    assert evaluate_dataset(dataset({"approved"}, producer=None), REQUIRED).verdict is Verdict.TRAIN


def test_missing_tags_are_named_and_the_version_can_be_approved_later():
    decision = evaluate_dataset(dataset({"approved"}), ["approved", "validated"])
    assert decision.verdict is Verdict.SKIP
    assert decision.reason == SkipReason.MISSING_TAGS
    assert decision.missing_tags == ("validated",)
    assert not decision.final


def test_missing_tags_get_a_second_look_before_the_version_is_skipped():
    # ZenML attaches a new version's tags after committing it: a poll may see it untagged.
    first = evaluate_dataset(dataset(set(), producer=None), REQUIRED, first_look=True)
    assert (first.verdict, first.reason, first.missing_tags) == (
        Verdict.WAIT,
        TAGS_MAY_FOLLOW,
        ("approved",),
    )
    tagged_since = evaluate_dataset(dataset({"approved"}, producer=None), REQUIRED)
    assert tagged_since.verdict is Verdict.TRAIN
    still_untagged = evaluate_dataset(dataset(set(), producer=None), REQUIRED)
    assert still_untagged.reason == SkipReason.MISSING_TAGS
    tagged_at_once = evaluate_dataset(dataset({"approved"}, None), REQUIRED, first_look=True)
    assert tagged_at_once.verdict is Verdict.TRAIN


def test_nothing_is_judged_while_its_producing_run_is_still_going():
    decision = evaluate_dataset(dataset({"approved"}, run(RunStatus.IN_PROGRESS)), REQUIRED)
    assert decision.verdict is Verdict.WAIT
    assert not decision.final
    untagged = evaluate_dataset(dataset(set(), run(RunStatus.IN_PROGRESS)), REQUIRED)
    assert untagged.verdict is Verdict.WAIT  # its steps may still add the tags


def test_output_of_a_failed_run_is_never_selected():
    decision = evaluate_dataset(dataset({"approved"}, run(RunStatus.FAILED)), REQUIRED)
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, SkipReason.PRODUCER_RUN_FAILED)
    assert decision.final


def test_datasets_produced_by_the_autopilots_own_runs_are_never_selected():
    ours = run(tags=frozenset({AUTOPILOT_TAG, "train:x"}))
    decision = evaluate_dataset(dataset({"approved"}, ours), REQUIRED)
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, SkipReason.PRODUCED_BY_AUTOPILOT)
    assert decision.final
    still_running = run(RunStatus.IN_PROGRESS, tags=frozenset({AUTOPILOT_TAG}))
    assert evaluate_dataset(dataset({"approved"}, still_running), REQUIRED).verdict is Verdict.SKIP


def test_no_required_tags_selects_every_finished_version():
    assert evaluate_dataset(dataset(set(), run()), []).verdict is Verdict.TRAIN


def test_a_step_output_whose_producer_is_not_reported_yet_waits_not_hand_made():
    # ZenML commits a step's outputs before it reports their producing run: for a moment a
    # step output has no producer, like a `save_artifact`, but its `save_type` says otherwise.
    decision = evaluate_dataset(dataset({"approved"}, producer=None, from_step=True), REQUIRED)
    assert decision.verdict is Verdict.WAIT
    assert decision.reason == "producer_not_reported_yet"
    assert not decision.final


def test_a_wait_on_the_producer_is_bounded_and_then_final():
    """A producing run deleted (never reported) or stuck `running` is waited for
    `producer_wait` seconds, then the version is skipped for good."""
    for version in (
        dataset({"approved"}, producer=None, from_step=True),  # its run deleted
        dataset({"approved"}, run(RunStatus.IN_PROGRESS)),  # its run stuck
    ):
        waiting = evaluate_dataset(version, REQUIRED, producer_waited=99.0, producer_wait=100.0)
        assert waiting.verdict is Verdict.WAIT and not waiting.final
        over = evaluate_dataset(version, REQUIRED, producer_waited=100.0, producer_wait=100.0)
        assert (over.verdict, over.reason) == (Verdict.SKIP, SkipReason.PRODUCER_WAIT_EXCEEDED)
        assert over.final
    done = evaluate_dataset(dataset({"approved"}, run()), REQUIRED, 10**9, producer_wait=1.0)
    assert done.verdict is Verdict.TRAIN  # the bound is on waiting, nothing else


def test_a_version_waiting_on_its_producer_is_read_every_tick_then_once_a_minute():
    bound = 3600.0
    assert look_again(LOOK_EVERY_TICK_FOR - 1, since_last_look=0.1, producer_wait=bound)
    assert not look_again(
        LOOK_EVERY_TICK_FOR, since_last_look=LOOK_INTERVAL - 1, producer_wait=bound
    )
    assert look_again(LOOK_EVERY_TICK_FOR * 10, since_last_look=LOOK_INTERVAL, producer_wait=bound)
    assert look_again(bound, since_last_look=0.1, producer_wait=bound)  # its wait is over
    assert look_again(LOOK_EVERY_TICK_FOR * 10, since_last_look=None, producer_wait=bound)
