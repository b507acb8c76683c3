"""What differs between the stores ZenML runs on, tried on each for real: a MySQL store
(MariaDB, as Compose's stand-in) compares names ignoring case and keeps `created` to the second;
SQLite compares names exactly and keeps microseconds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from service.core.actions import ActionState
from tests.integration.engine_harness import make_engine
from tests.support import MariaDB

pytestmark = pytest.mark.integration

DATASET, MODEL = "iris_training_dataset", "iris_classifier"


def _save(name: str, approved: bool = True) -> str:
    from zenml import save_artifact

    tags = ["approved"] if approved else []
    return str(save_artifact(pd.DataFrame({"x": [1]}), name=name, tags=tags).id)


def _claimed(engine: Any) -> set[str]:
    return {a.key for a in engine.ledger.actions_in(ActionState.PENDING)}


def _events(output: str, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in output.splitlines() if line.startswith("{"))
    return [event for event in lines if event.get("event") == name]


def two_automations(first: tuple[str, str], second: tuple[str, str]) -> dict[str, str]:
    """Automations `a` and `b`, each (dataset name, model name)."""
    environ = {}
    for name, (dataset, model) in (("A", first), ("B", second)):
        environ[f"AUTOPILOT_AUTOMATIONS__{name}__DATASET_NAMES"] = dataset
        environ[f"AUTOPILOT_AUTOMATIONS__{name}__MODEL_NAME"] = model
    return environ


def test_a_misspelt_name_on_sqlite_is_named_at_start_up_with_the_stores_close_match(
    zenml_store, tmp_path, capsys
):
    """SQLite compares names exactly: a typo watches nothing, silently but for this warning."""
    _save(DATASET)
    environ = two_automations(("iris_trainig_dataset", "model_a"), (DATASET, "model_b"))
    engine = make_engine(tmp_path / "state", environ=environ)
    engine.datasets.tick()

    warned = {
        (e["kind"], e["name"]): e
        for e in _events(capsys.readouterr().out, "config.name_not_in_store")
    }
    typo = warned[("artifact", "iris_trainig_dataset")]
    assert typo["level"] == "warning" and typo["close_matches"] == [DATASET]
    assert typo["variables"] == ["AUTOPILOT_AUTOMATIONS__A__DATASET_NAMES"]
    assert warned[("model", "model_a")]["level"] == "info"  # nothing like it: yet to come
    assert ("artifact", DATASET) not in warned
    assert {k.split(":")[1] for k in _claimed(engine)} == {"b"}  # the other one goes on


def _truncate_to_seconds(zenml_store: Any) -> None:
    """Every `created` in the SQLite store to the whole second, as MySQL keeps it (written as
    SQLAlchemy writes a whole second, so that ZenML's filters compare it as before)."""
    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as db:
        for table in ("artifact_version", "model_version"):
            db.execute(f"UPDATE {table} SET created = substr(created, 1, 20) || '000000'")


def _same_created(zenml_store: Any, table: str, id: str, as_id: str) -> None:
    database = Path(zenml_store) / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as db:
        db.execute(
            f"UPDATE {table} SET created = (SELECT created FROM {table} WHERE id = ?) WHERE id = ?",
            (as_id.replace("-", ""), id.replace("-", "")),
        )


def test_a_version_created_in_the_newest_ones_second_after_a_first_start_is_judged(
    zenml_store, tmp_path
):
    """START_FROM=now on a store with whole-second `created` (truncated here, as MySQL keeps
    it): a dataset and a model version created after the first start, in the second of the
    newest one before it, are judged; those before the start are not."""
    from zenml.client import Client

    client = Client()
    before = _save(DATASET)
    client.create_model(MODEL)
    model_before = str(client.create_model_version(MODEL, name="before").id)
    _truncate_to_seconds(zenml_store)
    engine = make_engine(  # no tags: no reconciliation pass finds it, the floor alone decides
        tmp_path / "state",
        start_from="now",
        dataset_required_tags="",
        reconcile_interval_seconds=3600,
    )

    after = _save(DATASET)
    model_after = str(client.create_model_version(MODEL, name="after").id)
    _truncate_to_seconds(zenml_store)
    _same_created(zenml_store, "artifact_version", after, before)
    _same_created(zenml_store, "model_version", model_after, model_before)
    engine.datasets.tick()
    engine.models.tick()

    assert _claimed(engine) == {f"train:{after}"}
    judged = engine.ledger.subject("default", model_after)
    assert judged is not None and judged.reason == "no_training_run_linked_yet"
    assert engine.ledger.subject("default", before).reason == "predates_start_from"
    assert engine.ledger.subject("default", model_before).reason == "predates_start_from"


# -- MySQL (MariaDB) ------------------------------------------------------------------------------


def test_names_that_differ_only_in_case_match_on_mysql_and_stall_nothing(
    zenml_mysql_store, tmp_path, capsys
):
    """MySQL returns `iris_training_dataset`'s versions for `Iris_Training_Dataset`: they reach
    the automation that watches that spelling (they once raised KeyError in every tick, which
    stopped every automation), production is seen under it, and start-up names the store's
    spelling. Another automation goes on beside it."""
    from zenml.client import Client

    client = Client()
    for model in (MODEL, "other_model"):
        client.create_model(model)
    dataset, other = _save(DATASET), _save("other")
    environ = two_automations(
        ("Iris_Training_Dataset", "IRIS_Classifier"), ("other", "other_model")
    )
    engine = make_engine(tmp_path / "state", environ=environ)
    version = client.create_model_version(MODEL, name="by-hand")
    other_version = client.create_model_version("other_model", name="by-hand")
    for _ in range(2):
        engine.datasets.tick()
        engine.models.tick()
    assert _claimed(engine) == {f"train:a:{dataset}", f"train:b:{other}"}
    judged = engine.ledger.subject("a", dataset)
    assert (judged.name, judged.status) == ("Iris_Training_Dataset", "selected")
    assert engine.ledger.subject("a", str(version.id)).kind == "model"
    assert engine.ledger.subject("b", str(other_version.id)).kind == "model"
    warned = {
        (e["kind"], e["name"]): (e["level"], e["store_spelling"])
        for e in _events(capsys.readouterr().out, "config.name_not_in_store")
    }
    assert warned == {
        ("artifact", "Iris_Training_Dataset"): ("warning", DATASET),
        ("model", "IRIS_Classifier"): ("warning", MODEL),
    }

    client.update_model_version(MODEL, version.id, stage="production")
    engine.production.tick()
    assert f"infer:{version.id}" in _claimed(engine)
    assert engine.ledger.action(f"infer:{version.id}").automation == "a"


def test_on_mysql_a_version_created_in_the_newest_ones_second_after_a_first_start_is_judged(
    zenml_mysql_store, mariadb: MariaDB, tmp_path
):
    """MySQL keeps `created` to the second: a version made after the first start in the second
    of the newest one has its very `created` (made equal here, as one second allows), and is
    judged."""
    from zenml.client import Client

    database = Client().zen_store.config.database
    before = _save(DATASET)
    engine = make_engine(  # no tags: no reconciliation pass finds it, the floor alone decides
        tmp_path / "state",
        start_from="now",
        dataset_required_tags="",
        reconcile_interval_seconds=3600,
    )
    after = _save(DATASET)
    mariadb.execute(
        database,
        "UPDATE artifact_version AS a JOIN artifact_version AS b ON b.id = "
        f"'{before.replace('-', '')}' SET a.created = b.created "
        f"WHERE a.id = '{after.replace('-', '')}'",
    )
    engine.datasets.tick()
    assert _claimed(engine) == {f"train:{after}"}
