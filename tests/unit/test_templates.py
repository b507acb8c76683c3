import pytest

from service.core import templates
from service.core.templates import PlaceholderMissing, render, unknown_placeholders

VALUES = {
    "dataset.id": "d-1",
    "dataset.run_outputs.test": "t-9",
    "model_version.number": 3,
}


def test_a_whole_placeholder_becomes_its_value_and_text_is_interpolated():
    parameters = {
        "train": "{{ dataset.id }}",
        "test": "{{dataset.run_outputs.test}}",
        "version": "{{ model_version.number }}",
        "label": "v{{ model_version.number }} of {{ dataset.id }}",
        "alpha": 0.5,
        "nested": {"ids": ["{{ dataset.id }}", 7]},
    }
    assert render(parameters, VALUES) == {
        "train": "d-1",
        "test": "t-9",
        "version": 3,
        "label": "v3 of d-1",
        "alpha": 0.5,
        "nested": {"ids": ["d-1", 7]},
    }


def test_a_value_that_cannot_be_filled_names_its_placeholder():
    why = PlaceholderMissing("dataset.run_outputs.test", "no such output")
    with pytest.raises(PlaceholderMissing, match=r"\{\{ dataset.run_outputs.test \}\}"):
        render({"test": "{{ dataset.run_outputs.test }}"}, {"dataset.run_outputs.test": why})
    with pytest.raises(PlaceholderMissing, match=r"model\.name"):
        render({"m": "{{ model.name }}"}, {})


def test_names_no_event_of_that_kind_has_are_unknown():
    training = {
        "a": "{{ dataset.id }}",
        "b": "{{ dataset.run_outputs.x }}",
        "c": "{{ model.name }}",
    }
    assert unknown_placeholders(training, training=True) == []
    assert unknown_placeholders({"a": "{{ model_version.id }}"}, training=True) == [
        "model_version.id"
    ]
    inference = {"a": "{{ model_version.metadata.rmse }}", "b": "{{ dataset.run_id }}"}
    assert unknown_placeholders(inference, training=False) == []
    assert unknown_placeholders({"a": "{{ dataset.run_outputs. }}"}, training=False) == [
        "dataset.run_outputs."
    ]
    assert templates.placeholders({"x": ["{{ a.b }}", {"y": "{{c}}"}]}) == {"a.b", "c"}


def test_an_inference_may_ask_for_the_scoring_dataset_it_scores():
    inference = {
        "rows": "{{ scoring_dataset.id }}",
        "name": "{{ scoring_dataset.name }}@{{ scoring_dataset.version }}",
        "run": "{{ scoring_dataset.run_id }}",
        "labels": "{{ scoring_dataset.run_outputs.labels }}",
    }
    assert unknown_placeholders(inference, training=False) == []
    assert templates.uses_scoring_dataset(inference)
    assert not templates.uses_scoring_dataset({"a": "{{ dataset.id }}"})
    # Training has no scoring dataset.
    assert unknown_placeholders({"a": "{{ scoring_dataset.id }}"}, training=True) == [
        "scoring_dataset.id"
    ]
