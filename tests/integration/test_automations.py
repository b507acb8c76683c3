"""Automations against a real embedded store: parameters that cannot be filled, a ledger written
before automations, and inference pinned to exactly its version whatever the user's YAML says."""

from __future__ import annotations

import json
import sqlite3
from uuid import UUID

import pytest

from pipelines.feature_engineering import launch_feature_engineering
from service.core.actions import ActionState
from service.core.polling import parse_floor, plan_polls
from service.runtime.executor import Executor
from service.runtime.launch import LAUNCHER
from service.runtime.worker import Job
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import EXAMPLE_ROOT, diabetes_automation, publish_diabetes, wait_for

pytestmark = pytest.mark.integration


def _state(engine, key):
    action = engine.ledger.action(key)
    return action.state if action else None


def test_a_placeholder_that_cannot_be_filled_fails_that_action_at_once_and_nothing_else(
    zenml_store, tmp_path
):
    dataset = publish_diabetes()
    broken = json.dumps(
        {
            "train_dataset_id": "{{ dataset.id }}",
            "test_dataset_id": "{{ dataset.run_outputs.no_such_split }}",
        }
    )
    engine = make_engine(
        tmp_path / "state",
        environ={
            **diabetes_automation("broken", MODEL_NAME="m_broken", TRAINING_PARAMETERS=broken),
            **diabetes_automation("fine", MODEL_NAME="m_fine"),
        },
    )
    broken_key = f"train:broken:{dataset['train_id']}"
    fine_key = f"train:fine:{dataset['train_id']}"
    engine.tick()
    action = engine.ledger.action(broken_key)
    assert (action.state, action.attempts) == (ActionState.FAILED, 0)  # no retry, no attempt
    assert "{{ dataset.run_outputs.no_such_split }}" in action.error
    assert "no output named 'no_such_split'" in action.error
    assert runs_for(engine, broken_key) == []
    # The other automation, on the very same dataset version, is not held up.
    tick_until(engine, lambda: _state(engine, fine_key) is ActionState.SUCCEEDED, "training")
    (run,) = runs_for(engine, fine_key)
    from zenml.client import Client

    parameters = Client().get_pipeline_run(UUID(run.id)).config.parameters
    assert parameters["test_dataset_id"] == dataset["test_id"]


# The schema a single-automation daemon wrote (version 1), to turn a ledger back into one.
V1_SUBJECTS = """
CREATE TABLE subjects (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    version TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, final INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL);
"""


def _as_written_before_automations(path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            "DROP INDEX actions_by_automation; DROP INDEX actions_last_change;"  # schema 3's
            "DROP TABLE production_changes;"
            "ALTER TABLE subjects RENAME TO subjects_v2;"
            + V1_SUBJECTS
            + "INSERT INTO subjects SELECT id, kind, name, version, status, reason, final, "
            "details, updated_at FROM subjects_v2; DROP TABLE subjects_v2;"
            "ALTER TABLE actions DROP COLUMN automation;"
            "UPDATE cursors SET stream = substr(stream, 9);"
            "PRAGMA user_version = 0;"
        )


def test_a_ledger_from_before_automations_is_upgraded_and_nothing_is_done_again(
    zenml_store, tmp_path, capsys
):
    from zenml.client import Client

    approved = launch_feature_engineering(training_tags=["approved"], random_state=5)
    engine = make_engine(tmp_path / "state")
    train_key = f"train:{approved.training_id}"
    served = tick_until(
        engine,
        lambda: [a for a in engine.ledger.actions_in(ActionState.SUCCEEDED) if a.kind == "infer"],
        "the whole chain",
    )
    engine.executor.close()
    engine.ledger.close()
    _as_written_before_automations(tmp_path / "state" / "ledger.sqlite")
    capsys.readouterr()

    restarted = make_engine(tmp_path / "state")  # the same single-automation variables
    assert '"event": "ledger.upgraded"' in capsys.readouterr().out
    for _ in range(5):
        restarted.tick()
    assert restarted.ledger.action(train_key).state is ActionState.SUCCEEDED
    assert len(runs_for(restarted, train_key)) == 1
    assert len(runs_for(restarted, served[0].key)) == 1
    assert restarted.ledger.actions_in(ActionState.PENDING, ActionState.RUNNING) == []
    assert len(Client().list_model_versions(model="iris_classifier").items) == 1


def test_training_makes_a_new_version_per_run_and_inference_uses_exactly_its_pin(
    zenml_store, tmp_path
):
    """The example's YAML names `version: sgd` for training and `version: production` for
    inference; the launcher runs neither as written."""
    from zenml.client import Client

    client = Client()
    dataset = publish_diabetes()
    executor = Executor(2, 300, warmup_log=str(tmp_path / "warmup.log"))
    common = {"source_root": str(EXAMPLE_ROOT), "model_name": "diabetes_regressor"}

    def run(key: str, **arguments: object) -> str:
        job = Job(
            key,
            LAUNCHER,
            {**common, "tags": ["autopilot", key], "run_config_path": f"{tmp_path}/{key}.yaml"}
            | arguments,
            str(tmp_path / f"{key}.log"),
        )
        executor.launch(job)
        (result,) = wait_for(executor.poll, timeout=240, what=f"{key} to finish")
        assert result.ok, (tmp_path / f"{key}.log").read_text()[-3000:]
        return str(result.run_id)

    training = {
        "pipeline": "pipelines.training:training",
        "config_path": str(EXAMPLE_ROOT / "configs" / "training.yaml"),
        "parameters": {
            "train_dataset_id": dataset["train_id"],
            "test_dataset_id": dataset["test_id"],
        },
        "model_version": None,
        "model_version_id": None,
    }
    try:
        first, second = run("train-1", **training), run("train-2", **training)
        versions = [client.get_pipeline_run(UUID(r)).model_version for r in (first, second)]
        assert [v.name for v in versions] == ["1", "2"]  # not one version named `sgd`
        assert all(v.description and "diabetes" in v.description for v in versions)
        assert {t.name for t in client.get_pipeline_run(UUID(first)).tags} >= {
            "autopilot",
            "train-1",
        }
        older, newer = versions
        client.update_model_version("diabetes_regressor", newer.id, stage="production")

        served = run(
            "infer-older",
            pipeline="pipelines.inference:inference",
            config_path=str(EXAMPLE_ROOT / "configs" / "inference.yaml"),  # says production
            parameters={"dataset_id": dataset["test_id"]},
            model_version=older.name,
            model_version_id=str(older.id),
        )
        inference = client.get_pipeline_run(UUID(served))
        assert inference.model_version.id == older.id  # the pin, not production
        predictions = client.get_model_version("diabetes_regressor", older.id).data_artifact_ids
        assert "diabetes_predictions" in predictions
        written = (tmp_path / "infer-older.yaml").read_text()
        assert "version: '1'" in written and "enable_cache: false" in written
    finally:
        executor.close()


def test_a_step_output_whose_producer_is_not_reported_yet_waits_instead_of_being_hand_made(
    zenml_store, tmp_path
):
    """ZenML commits a step's outputs before it reports their producing run. Replayed in the
    real store: an approved version whose `save_type` says `step_output` but with no producer."""
    from pathlib import Path

    import pandas as pd
    from zenml import save_artifact

    from pipelines.datasets import load_iris_frame

    version = save_artifact(
        pd.DataFrame(load_iris_frame()), name="iris_training_dataset", tags=["approved"]
    )
    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"

    def save_type(value: str) -> None:
        with sqlite3.connect(database) as db:
            db.execute(
                "UPDATE artifact_version SET save_type = ? WHERE id = ?",
                (value, version.id.hex),
            )

    save_type("step_output")
    engine = make_engine(tmp_path / "state")
    engine.tick()
    judged = engine.ledger.subject("default", str(version.id))
    assert (judged.status, judged.reason) == ("waiting", "producer_not_reported_yet")
    assert engine.ledger.action(f"train:{version.id}") is None
    save_type("manual")  # it really was saved by hand: judged on the next look
    engine.tick()
    assert engine.ledger.action(f"train:{version.id}") is not None


def test_an_inference_on_a_hand_made_version_with_no_dataset_fails_at_once_naming_it(
    zenml_store, tmp_path
):
    from zenml import Model
    from zenml.client import Client

    engine = make_engine(tmp_path / "state", environ=diabetes_automation())
    hand_made = Model(name="diabetes_regressor", version="by-hand")._get_or_create_model_version()
    Client().update_model_version("diabetes_regressor", hand_made.id, stage="production")
    engine.tick()
    action = engine.ledger.action(f"infer:{hand_made.id}")
    assert (action.state, action.attempts) == (ActionState.FAILED, 0)
    assert "{{ dataset.run_outputs.diabetes_test }}" in action.error
    assert "was not trained on a known dataset" in action.error
    assert runs_for(engine, action.key) == []


def test_automations_polled_together_see_each_new_version_once(zenml_store, tmp_path):
    """Artifacts with different numbers of versions share one query (`oneof:`, judged versions
    recognised by id): each new version is selected once by its automation, nothing else."""
    import pandas as pd
    from zenml import save_artifact

    def save(name: str, approved: bool = True) -> str:
        tags = ["approved"] if approved else []
        return str(save_artifact(pd.DataFrame({"x": [1]}), name=name, tags=tags).id)

    names = {"a": 1, "b": 4, "c": 9}  # versions already there
    for name, count in names.items():
        for _ in range(count):
            save(f"data_{name}")
    environ = {}
    for name in names:
        environ[f"AUTOPILOT_AUTOMATIONS__{name.upper()}__DATASET_NAMES"] = f"data_{name}"
        environ[f"AUTOPILOT_AUTOMATIONS__{name.upper()}__MODEL_NAME"] = f"model_{name}"
    engine = make_engine(tmp_path / "state", environ=environ, start_from="now")
    engine.tick()
    assert engine.ledger.actions_in(ActionState.PENDING, ActionState.RUNNING) == []

    new = {name: [save(f"data_{name}"), save(f"data_{name}", approved=False)] for name in names}
    new["b"].append(save("data_b"))
    for _ in range(3):
        engine.datasets.tick()
    claimed = {a.key for a in engine.ledger.actions_in(ActionState.PENDING)}
    assert claimed == {
        f"train:a:{new['a'][0]}",
        f"train:b:{new['b'][0]}",
        f"train:b:{new['b'][2]}",
        f"train:c:{new['c'][0]}",
    }
    for name, ids in new.items():
        assert engine.ledger.subject(name, ids[1]).reason == "missing_tags"
    floors = {
        name: parse_floor(engine.ledger.get_cursor(f"{name}/dataset:data_{name}")) for name in names
    }
    assert len(plan_polls(floors)) == 1  # the next idle tick is one query for all three
