"""Run the real pipelines against an isolated embedded ZenML store.

zenml-dependent modules are imported inside the tests, after the ``zenml_store``
fixture has pointed zenml at its temporary configuration.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pandas as pd
import pytest

from pipelines import (
    INFERENCE_DATASET,
    PREDICTIONS,
    SCORING_DATASET,
    TESTING_DATASET,
    TRAINED_MODEL,
    TRAINING_DATASET,
)
from pipelines.datasets import LABEL_COLUMN, load_iris_frame

pytestmark = pytest.mark.integration


def _save_frame(frame: pd.DataFrame, name: str) -> str:
    """Register a frame outside any pipeline, the way a user would with save_artifact."""
    from zenml import save_artifact
    from zenml.integrations.pandas.materializers.pandas_materializer import PandasMaterializer

    return str(save_artifact(frame, name=name, materializer=PandasMaterializer).id)


def _only_input(step_run: Any, name: str) -> UUID:
    """The id of the single artifact a step run received as input ``name``."""
    (artifact,) = step_run.inputs[name]
    return UUID(str(artifact.id))


def test_feature_engineering_publishes_three_datasets_tagged_training_only(zenml_store):
    from pipelines.feature_engineering import launch_feature_engineering

    client = zenml_store.client
    first = launch_feature_engineering(training_tags=["approved"], run_tags=["fe-test"])
    second = launch_feature_engineering(random_state=1)

    training = client.get_artifact_version(first.training_id)
    testing = client.get_artifact_version(first.testing_id)
    inference = client.get_artifact_version(first.inference_id)
    assert (training.name, testing.name, inference.name) == (
        TRAINING_DATASET,
        TESTING_DATASET,
        INFERENCE_DATASET,
    )
    assert [tag.name for tag in training.tags] == ["approved"]
    assert testing.tags == [] and inference.tags == []
    approved = client.list_artifact_versions(tags=["approved"])
    assert [version.id for version in approved.items] == [first.training_id]

    assert second.training_version == "2", "caching must be off: each run adds versions"
    assert client.get_artifact_version(second.training_id).tags == []
    assert "fe-test" in [tag.name for tag in client.get_pipeline_run(first.run_id).tags]

    train_frame, test_frame, unlabeled = (v.load() for v in (training, testing, inference))
    assert isinstance(train_frame, pd.DataFrame)
    assert len(train_frame) + len(test_frame) == 150
    assert LABEL_COLUMN not in unlabeled.columns
    assert list(unlabeled.columns) == [c for c in test_frame.columns if c != LABEL_COLUMN]


def test_training_uses_exactly_the_given_version_and_its_testing_dataset(zenml_store):
    from pipelines.feature_engineering import launch_feature_engineering
    from pipelines.training import launch_training

    client = zenml_store.client
    chosen = launch_feature_engineering(training_tags=["approved"])
    newer = launch_feature_engineering(random_state=5, label_noise=0.7)

    run_id = launch_training(str(chosen.training_id), "test_classifier", ["autopilot"], "train-1")

    run = client.get_pipeline_run(run_id)
    assert run.status == "completed" and run.name == "train-1"
    assert "autopilot" in [tag.name for tag in run.tags]
    assert run.model_version is not None
    assert (run.model_version.model.name, run.model_version.number) == ("test_classifier", 1)
    train_step, evaluate_step = run.steps["train_classifier"], run.steps["evaluate_classifier"]
    assert _only_input(train_step, "train") == chosen.training_id != newer.training_id
    assert _only_input(evaluate_step, "evaluation") == chosen.testing_id

    metadata = client.get_model_version("test_classifier", 1, hydrate=True).run_metadata
    assert metadata["accuracy"] >= 0.8
    assert metadata["eval_source"] == "testing_dataset"
    assert metadata["dataset_version_id"] == str(chosen.training_id)
    assert metadata["dataset_artifact_name"] == TRAINING_DATASET
    assert metadata["dataset_artifact_version"] == chosen.training_version
    assert (metadata["n_train_rows"], metadata["n_eval_rows"]) == (112, 38)
    assert 0.0 <= metadata["f1_macro"] <= 1.0
    model_artifact = client.get_model_version("test_classifier", 1).get_model_artifact(
        TRAINED_MODEL
    )
    assert model_artifact is not None
    assert model_artifact.load().predict(load_iris_frame().drop(columns=LABEL_COLUMN)).shape == (
        150,
    )


def test_training_on_noisy_labels_scores_poorly(zenml_store):
    from pipelines.feature_engineering import launch_feature_engineering
    from pipelines.training import launch_training

    noisy = launch_feature_engineering(label_noise=0.7, random_state=2)
    launch_training(str(noisy.training_id), "noisy_classifier", [])

    metadata = zenml_store.client.get_model_version("noisy_classifier", 1).run_metadata
    assert metadata["accuracy"] < 0.6


def test_training_on_a_saved_artifact_evaluates_on_a_holdout_split(zenml_store):
    from pipelines.training import launch_training

    dataset_id = _save_frame(load_iris_frame(), "uploaded_dataset")

    run_id = launch_training(dataset_id, "holdout_classifier", ["manual"])

    run = zenml_store.client.get_pipeline_run(run_id)
    assert _only_input(run.steps["split_holdout"], "dataset") == UUID(dataset_id)
    metadata = zenml_store.client.get_model_version("holdout_classifier", 1).run_metadata
    assert metadata["eval_source"] == "holdout_split"
    assert metadata["accuracy"] >= 0.8
    assert metadata["n_train_rows"] + metadata["n_eval_rows"] == 150
    assert metadata["dataset_artifact_name"] == "uploaded_dataset"


@pytest.mark.parametrize(
    ("malformed", "message"),
    [
        (load_iris_frame().drop(columns=LABEL_COLUMN), "dataset has no label column 'target'"),
        (load_iris_frame().iloc[0:0], "dataset is empty"),
        (
            load_iris_frame().assign(species="setosa"),
            "dataset feature columns must be numeric; non-numeric columns: species",
        ),
    ],
    ids=["missing-label", "empty", "non-numeric"],
)
def test_training_on_a_malformed_dataset_fails_with_a_clear_message(
    zenml_store, malformed, message
):
    from pipelines._launch import PipelineRunFailed
    from pipelines.training import launch_training

    dataset_id = _save_frame(malformed, "malformed_dataset")

    with pytest.raises(PipelineRunFailed) as raised:
        launch_training(dataset_id, "malformed_classifier", [], run_name="malformed-run")

    assert isinstance(raised.value, RuntimeError)
    assert f"split_holdout: ValueError: {message}" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    run = zenml_store.client.get_pipeline_run("malformed-run")
    assert raised.value.run_id == run.id
    assert run.status == "failed"
    failures = [step for step in run.steps.values() if step.status == "failed"]
    assert [step.name for step in failures] == ["split_holdout"]
    assert failures[0].exception_info is not None
    assert message in (failures[0].exception_info.message or "")


def test_training_with_an_unknown_dataset_id_fails_before_any_run(zenml_store):
    from pipelines.training import launch_training

    with pytest.raises(KeyError):
        launch_training("00000000-0000-0000-0000-000000000000", "ghost_classifier", [])
    assert zenml_store.client.list_pipeline_runs().total == 0
    assert zenml_store.client.list_models().total == 0


def test_inference_is_pinned_to_one_model_version(zenml_store):
    from pipelines.feature_engineering import launch_feature_engineering
    from pipelines.inference import launch_inference
    from pipelines.training import launch_training

    client = zenml_store.client
    good = launch_feature_engineering(training_tags=["approved"])
    launch_training(str(good.training_id), "pinned_classifier", [])
    launch_training(str(good.training_id), "pinned_classifier", [])
    latest_data = launch_feature_engineering(random_state=9)

    run_id = launch_inference("pinned_classifier", 1, INFERENCE_DATASET, ["batch"], "infer-1")

    run = client.get_pipeline_run(run_id)
    version_1 = client.get_model_version("pinned_classifier", 1)
    version_2 = client.get_model_version("pinned_classifier", 2)
    assert run.model_version is not None and run.model_version.id == version_1.id
    predict_step = run.steps["predict"]
    model_1 = version_1.get_model_artifact(TRAINED_MODEL)
    assert model_1 is not None
    assert _only_input(predict_step, "classifier") == model_1.id
    assert _only_input(predict_step, "data") == latest_data.inference_id

    (predictions,) = predict_step.outputs[PREDICTIONS]
    linked = version_1.get_data_artifact(PREDICTIONS)
    assert linked is not None and linked.id == predictions.id
    assert version_2.get_data_artifact(PREDICTIONS) is None
    assert client.list_model_versions(model="pinned_classifier").total == 2

    values = predictions.load()
    unlabeled = client.get_artifact_version(latest_data.inference_id).load()
    assert isinstance(values, pd.Series)
    assert values.index.equals(unlabeled.index)
    assert set(values) <= {0, 1, 2}


def test_inference_on_a_missing_model_version_raises_key_error(zenml_store):
    from pipelines.inference import launch_inference

    with pytest.raises(KeyError):
        launch_inference("nobody", 3, INFERENCE_DATASET, [])
    assert zenml_store.client.list_pipeline_runs().total == 0


def test_producer_publishes_the_scripted_cases(zenml_store, capsys):
    """One full cycle as scripted, then the next cycle starts on a new split."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    from pipelines.producer import CYCLE_SEED_STRIDE, SCORING_ROWS, SCRIPT, main

    assert main(["--interval", "0", "--count", str(len(SCRIPT) + 1)]) == 0

    expected = [*SCRIPT, SCRIPT[0]]
    lines = [line for line in capsys.readouterr().out.splitlines() if "version" in line]
    assert [line.split(":")[0] for line in lines] == [case.name for case in expected]
    training = [case for case in expected if not case.scoring]
    versions = zenml_store.client.list_artifact_versions(
        artifact=TRAINING_DATASET, sort_by="asc:version_number", hydrate=True
    ).items
    assert [sorted(tag.name for tag in v.tags) for v in versions] == [
        sorted(case.tags) for case in training
    ]
    assert [v.run_metadata["label_noise"] for v in versions] == [
        case.label_noise for case in training
    ]
    seeds = [v.run_metadata["random_state"] for v in versions]
    assert seeds == [case.random_state for case in SCRIPT if not case.scoring] + [
        SCRIPT[0].random_state + CYCLE_SEED_STRIDE
    ]
    # The batches to score: new versions of their own artifact, unlabelled, untagged.
    batches = zenml_store.client.list_artifact_versions(
        artifact=SCORING_DATASET, sort_by="asc:version_number", hydrate=True
    ).items
    assert len(batches) == sum(case.scoring for case in SCRIPT)
    assert all(not batch.tags for batch in batches)
    frame = batches[0].load()
    assert LABEL_COLUMN not in frame.columns and len(frame) == SCORING_ROWS
    assert signal.getsignal(signal.SIGINT) == before


def test_producer_stops_cleanly_on_sigterm_after_finishing_its_run(zenml_store, capsys):
    import os
    import signal
    import threading
    import time

    from pipelines.producer import SCRIPT, main

    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()

    assert main(["--interval", "60", "--count", "3"]) == 0

    assert time.monotonic() - started < 30
    lines = [line for line in capsys.readouterr().out.splitlines() if "version" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{SCRIPT[0].name}:")
    assert zenml_store.client.list_pipeline_runs().items[0].status == "completed"
    assert signal.getsignal(signal.SIGTERM) == before
