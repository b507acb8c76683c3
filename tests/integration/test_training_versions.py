"""The model versions the daemon's runs write into (tests/projects/pinned): every training
creates a new version, whatever the user's code says, and a run that writes into a version it did
not create is rejected; every inference runs on exactly its version, or is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.core.actions import ActionKind, ActionState
from service.core.records import REJECTED_RUN_TAG, RunStatus
from service.stages import actions
from service.store import DECISION_METADATA_KEY
from tests.integration.engine_harness import make_engine, runs_for, tick_until
from tests.support import PINNED_ROOT

pytestmark = pytest.mark.integration

V1_MODEL, PRODUCTION_MODEL, BESIDE_MODEL = "pinned_v1", "pinned_production", "pinned_beside"
RENAMED_MODEL = "renamed"


def _automation(name: str, model: str, pipeline: str) -> dict[str, str]:
    fields = {
        "SOURCE_ROOT": str(PINNED_ROOT),
        "DATASET_NAMES": f"data_{name}",
        "MODEL_NAME": model,
        "TRAINING_PIPELINE": f"pinned_training:{pipeline}",
        "TRAINING_PARAMETERS": json.dumps({"dataset_version_id": "{{ dataset.id }}"}),
        "INFERENCE_PIPELINE": "pinned_training:serve",
        "INFERENCE_PARAMETERS": "{}",
    }
    return {f"AUTOPILOT_AUTOMATIONS__{name.upper()}__{k}": v for k, v in fields.items()}


def _hand_made_version(
    model: str, name: str | None, stage: str | None = None, accuracy: float = 0.5
) -> Any:
    """A version made by a person before the daemon started."""
    from zenml.client import Client
    from zenml.enums import MetadataResourceTypes
    from zenml.models import RunMetadataResource

    client = Client()
    try:
        client.get_model(model)
    except KeyError:
        client.create_model(name=model)
    version = client.create_model_version(model_name_or_id=model, name=name)
    resource = RunMetadataResource(id=version.id, type=MetadataResourceTypes.MODEL_VERSION)
    client.create_run_metadata(metadata={"accuracy": accuracy}, resources=[resource])
    if stage is not None:
        client.update_model_version(model, version.id, stage=stage)
    return client.get_model_version(model, version.id)


def _save_dataset(name: str) -> str:
    import pandas as pd
    from zenml import save_artifact

    return str(save_artifact(pd.DataFrame({"x": [1]}), name=f"data_{name}", tags=["approved"]).id)


def _untouched(version: Any) -> None:
    """No run is linked to the version, and its metadata is what it was."""
    from zenml.client import Client

    client = Client()
    links = client.list_model_version_pipeline_run_links(model_version_id=version.id)
    assert links.total == 0, [link.pipeline_run.name for link in links.items]
    assert dict(client.get_model_version(version.model.name, version.id).run_metadata) == dict(
        version.run_metadata
    )


def _settled(engine: Any, keys: list[str]) -> bool:
    ended = (ActionState.SUCCEEDED, ActionState.FAILED)
    return all((a := engine.ledger.action(key)) is not None and a.state in ended for key in keys)


def test_a_version_set_in_code_never_receives_a_training(zenml_store, tmp_path):
    """`@pipeline(model=Model(name=..., version="v1"))` and `version="production"` in code: each
    training still creates a new numbered version, judged and promoted as usual."""
    from zenml.client import Client

    client = Client()
    v1 = _hand_made_version(V1_MODEL, "v1")
    production = _hand_made_version(PRODUCTION_MODEL, None, stage="production")
    environ = {
        **_automation("v1", V1_MODEL, "training_into_v1"),
        **_automation("prod", PRODUCTION_MODEL, "training_into_production"),
    }
    engine = make_engine(tmp_path / "state", environ=environ, start_from="now")
    keys = [f"train:{name}:{_save_dataset(name)}" for name in ("v1", "prod")]
    tick_until(engine, lambda: _settled(engine, keys), "the trainings", timeout=300)

    trained = set()
    for key in keys:
        action = engine.ledger.action(key)
        assert action.state is ActionState.SUCCEEDED, action.error
        (run,) = runs_for(engine, key)
        version = client.get_pipeline_run(run.id).model_version
        assert version.name == str(version.number)  # numbered by ZenML: new
        trained.add(version.id)
    assert len(trained) == 2 and not trained & {v1.id, production.id}

    promoted = tick_until(
        engine,
        lambda: (engine.store.production_versions(PRODUCTION_MODEL) or [None])[0],
        "a new production version",
    )
    assert promoted.id != str(production.id)
    assert promoted.metadata[DECISION_METADATA_KEY]["outcome"] == "promoted"
    _untouched(v1)
    _untouched(production)


def test_a_training_that_writes_into_another_version_is_rejected_and_its_version_too(
    zenml_store, tmp_path, monkeypatch
):
    """A step configured with the production version writes into it, whatever the run's own
    configuration says: the launcher rejects the run (tagged), its attempt fails and is retried,
    and the version the run created is rejected, never promoted. While the run is complete but
    not yet checked (held here), its version waits instead of being judged."""
    from zenml.client import Client

    client = Client()
    production = _hand_made_version(BESIDE_MODEL, None, stage="production")
    monkeypatch.setattr(actions, "LAUNCHER", "tests.support:launch_with_check_held")
    engine = make_engine(
        tmp_path / "state",
        environ=_automation("beside", BESIDE_MODEL, "training_beside_production"),
        start_from="now",
        max_attempts=2,
    )
    key = f"train:beside:{_save_dataset('beside')}"

    def completed_run() -> Any:
        runs = runs_for(engine, key)
        return runs[0] if runs and runs[0].status is RunStatus.SUCCEEDED else None

    run = tick_until(engine, completed_run, "the first run to complete, its check held")
    version_id = client.get_pipeline_run(run.id).model_version.id
    for _ in range(3):  # polls that see a completed run and its version (0.95, beats 0.5)
        engine.tick()
    waiting = engine.ledger.subject("beside", str(version_id))
    assert waiting is not None and waiting.reason == "training_run_not_settled"
    assert engine.ledger.actions_in(*ActionState, kind=ActionKind.PROMOTE) == []

    (tmp_path / "state" / "runs" / "release-check").touch()
    tick_until(engine, lambda: _settled(engine, [key]), "both attempts", timeout=300)
    action = engine.ledger.action(key)
    assert action.state is ActionState.FAILED and action.attempts == 2
    assert f"also wrote into version {production.name} of model {BESIDE_MODEL}" in action.error
    runs = runs_for(engine, key)
    assert len(runs) == 2  # the rejected run did not count as the action done
    assert all(REJECTED_RUN_TAG in r.tags and r.status is RunStatus.SUCCEEDED for r in runs)

    def decisions() -> list[dict[str, Any]] | None:
        versions = [client.get_pipeline_run(r.id).model_version for r in runs]
        found = [v.run_metadata.get(DECISION_METADATA_KEY) for v in versions]
        return found if all(found) else None

    for decision in tick_until(engine, decisions, "both versions judged"):
        assert (decision["outcome"], decision["reason"]) == ("rejected", "training_run_rejected")
    (still,) = engine.store.production_versions(BESIDE_MODEL)
    assert still.id == str(production.id)
    assert engine.ledger.actions_in(*ActionState, kind=ActionKind.INFER) == []


def test_inference_runs_on_exactly_its_version_or_is_refused(zenml_store, tmp_path):
    """A person renamed version 4 to "blue" and version 5 to "3", then promotes each. ZenML
    resolves "3" to version 3 when it creates a run, and to version 5 where a step loads it by
    name: no reference pins version 5 exactly, so its inference is refused, at once; "blue" is
    one name everywhere, and its run (and its step's lazy loading) is on version 4."""
    from zenml.client import Client

    client = Client()
    versions = [_hand_made_version(RENAMED_MODEL, None, accuracy=n / 10) for n in range(1, 6)]
    for number, name in ((3, "three"), (4, "blue"), (5, "3")):
        client.update_model_version(RENAMED_MODEL, versions[number - 1].id, name=name)
    engine = make_engine(
        tmp_path / "state",
        environ=_automation("renamed", RENAMED_MODEL, "training_into_v1"),
        start_from="now",
    )
    engine.tick()

    def served(version: Any) -> Any:
        client.update_model_version(RENAMED_MODEL, version.id, stage="production", force=True)
        key = f"infer:{version.id}"
        tick_until(engine, lambda: _settled(engine, [key]), f"{key} to settle", timeout=240)
        return engine.ledger.action(key)

    blue = served(versions[3])
    assert blue.state is ActionState.SUCCEEDED, blue.error
    run = client.get_pipeline_run(blue.run_id)
    assert run.model_version.id == versions[3].id
    assert run.steps["predict"].outputs["output"][0].load() == 0.4  # lazily loaded: version 4

    three = served(versions[4])
    assert three.state is ActionState.FAILED and three.attempts == 0
    assert f"version 5 of model {RENAMED_MODEL} is named '3'" in three.error
    assert runs_for(engine, three.key) == []
