"""What a run sees of what changed while the daemon runs: the stack as the store holds it, and
the code as it is on disk, all of it (a user's project in a temp source root, real runs)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from service.core.actions import ActionState
from tests.integration.engine_harness import make_engine, tick_until

pytestmark = pytest.mark.integration

AUTOMATION = "reload"
DATASET = "reload_data"
TRAINING = """
import json
import os

from zenml import pipeline, step

try:
    import mylib  # the editable library, in the tests that install one
except ImportError:
    mylib = None

VERSION = "{version}"


@step(enable_cache=False)
def report(dataset_id: str) -> str:
    from zenml.client import Client
    from zenml.enums import StackComponentType

    components = Client().active_stack_model.components
    seen = {{
        "pipeline": VERSION,
        "library": mylib.VERSION if mylib else None,
        "stack_env": os.environ.get("RELOAD_STACK_ENV"),
        "artifact_store": components[StackComponentType.ARTIFACT_STORE][0].name,
    }}
    print("REPORT " + json.dumps(seen), flush=True)
    return VERSION


@pipeline(enable_cache=False)
def training(dataset_id: str) -> None:
    report(dataset_id)
"""


def write_project(root: Path, version: str = "1", body: str = TRAINING) -> Path:
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / "__init__.py").write_text("")
    (root / "pipelines" / "train.py").write_text(body.format(version=version))
    return root


def install_editable_library(tmp_path: Path, monkeypatch, version: str) -> Path:
    """`mylib`, a `src/` layout project installed in editable mode, as pip leaves one: its
    `.dist-info` (with `direct_url.json` saying `editable`) in a site folder, its `src` on
    the path. Returns its module file."""
    project = tmp_path / "mylib"
    module = project / "src" / "mylib" / "__init__.py"
    module.parent.mkdir(parents=True)
    module.write_text(f'VERSION = "{version}"\n')
    info = tmp_path / "site" / "mylib-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylib\nVersion: 0.1\n")
    direct_url = {"url": project.as_uri(), "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(direct_url))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(project / "src"))  # what its `.pth` file adds
    return module


def automation(root: Path, **fields: str) -> dict[str, str]:
    prefix = f"AUTOPILOT_AUTOMATIONS__{AUTOMATION.upper()}__"
    values = {
        "SOURCE_ROOT": str(root),
        "DATASET_NAMES": DATASET,
        "MODEL_NAME": "reload_model",
        "TRAINING_PIPELINE": "pipelines.train:training",
        "TRAINING_PARAMETERS": json.dumps({"dataset_id": "{{ dataset.id }}"}),
        **fields,
    }
    return {f"{prefix}{name}": value for name, value in values.items()}


def publish() -> str:
    """An approved dataset version, saved by hand."""
    from zenml import save_artifact

    return str(save_artifact({"rows": 1}, name=DATASET, tags=["approved"]).id)


def key(dataset_id: str) -> str:
    return f"train:{AUTOMATION}:{dataset_id}"


def trained(engine, dataset_id: str):
    """The action once it succeeded (ticking until then)."""

    def done():
        action = engine.ledger.action(key(dataset_id))
        assert action is None or action.state is not ActionState.FAILED, action.error
        return action if action is not None and action.state is ActionState.SUCCEEDED else None

    return tick_until(engine, done, f"{key(dataset_id)} to succeed")


def reported(engine, action) -> dict:
    """What the run's step printed (`REPORT {...}`), from the run's own log."""
    log = engine.settings.state_dir / "runs" / f"{action.key.replace(':', '_')}.log"
    (line,) = [line for line in log.read_text().splitlines() if line.startswith("REPORT ")]
    return dict(json.loads(line.removeprefix("REPORT ")))


def output_uri(run_id: str) -> str:
    from zenml.client import Client

    (output,) = Client().get_pipeline_run(UUID(run_id)).steps["report"].outputs["output"]
    return str(output.uri)


def test_each_run_uses_the_stack_as_the_store_holds_it_when_the_run_starts(zenml_store, tmp_path):
    """The template read the stack at start-up; a component's new configuration (the stack
    itself unchanged) and a stack given another component and environment are both seen by the
    next run."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    store_a, store_b, store_c = (tmp_path / name for name in ("store-a", "store-b", "store-c"))
    client.create_stack_component(
        "store", "local", StackComponentType.ARTIFACT_STORE, {"path": str(store_a)}
    )
    client.create_stack_component(
        "other_store", "local", StackComponentType.ARTIFACT_STORE, {"path": str(store_c)}
    )
    client.create_stack(
        "swap",
        components={
            StackComponentType.ORCHESTRATOR: "default",
            StackComponentType.ARTIFACT_STORE: "store",
        },
    )
    root = write_project(tmp_path / "project")
    engine = make_engine(
        tmp_path / "state", environ={**automation(root), "AUTOPILOT_STACK": "swap"}
    )

    first = trained(engine, publish())
    assert output_uri(first.run_id).startswith(str(store_a))

    # The component changes, not the stack: ZenML's Stack cache is keyed by the stack's `updated`.
    client.update_stack_component(
        "store", StackComponentType.ARTIFACT_STORE, configuration={"path": str(store_b)}
    )
    second = trained(engine, publish())
    assert output_uri(second.run_id).startswith(str(store_b))

    assert reported(engine, second)["stack_env"] is None

    # The stack changes: the template's cached model of the active stack is stale (its
    # environment comes from that model, its components are listed again).
    client.update_stack(
        "swap",
        component_updates={StackComponentType.ARTIFACT_STORE: ["other_store"]},
        environment={"RELOAD_STACK_ENV": "set later"},
    )
    third = trained(engine, publish())
    assert output_uri(third.run_id).startswith(str(store_c))
    assert reported(engine, third)["stack_env"] == "set later"
    # What ZenML's client says the active stack is, as image builds and
    # `get_stack_component` read it.
    assert reported(engine, third)["artifact_store"] == "other_store"


def test_a_run_after_an_edit_sees_the_new_pipeline_and_the_new_editable_library_together(
    zenml_store, tmp_path, monkeypatch, capsys
):
    """The template imported `mylib` (an editable install, outside the source root) when it
    warmed up; a pipeline module is imported again by each run. Both edited: the next run must
    see both new versions, not the new pipeline on the old library."""
    library = install_editable_library(tmp_path, monkeypatch, "1")
    root = write_project(tmp_path / "project", version="1")
    engine = make_engine(tmp_path / "state", environ=automation(root))

    first = reported(engine, trained(engine, publish()))
    assert (first["pipeline"], first["library"]) == ("1", "1")

    library.write_text('VERSION = "2, edited"\n')
    write_project(root, version="2, edited")
    second = reported(engine, trained(engine, publish()))
    assert (second["pipeline"], second["library"]) == ("2, edited", "2, edited")
    (changed,) = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"executor.code_changed"' in line
    ]
    assert str(library) in changed["changed"]
    assert str(root / "pipelines" / "train.py") in changed["changed"]


DOES_NOT_IMPORT = TRAINING.replace("import json\n", "import json\nimport no_such_module\n", 1)
DROPS_A_PARAMETER = TRAINING.replace(
    "def training(dataset_id: str) -> None:\n    report(dataset_id)",
    'def training() -> None:\n    report("no dataset")',
)


def _events(capsys, seen: list[dict]) -> list[dict]:
    """Every event the engine logged so far in this test (its log is this test's stdout)."""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            seen.append(json.loads(line))
    return seen


@pytest.mark.parametrize(
    "broken", [DOES_NOT_IMPORT, DROPS_A_PARAMETER], ids=["import", "signature"]
)
def test_a_pipeline_broken_while_the_daemon_runs_is_held_with_one_error_and_burns_no_attempt(
    zenml_store, tmp_path, capsys, broken
):
    root = write_project(tmp_path / "project")
    engine = make_engine(
        tmp_path / "state", environ=automation(root), max_concurrent_runs=2, max_attempts=3
    )
    engine.tick()  # running: its template warms up on the code as it was
    write_project(root, body=broken)
    datasets = [publish() for _ in range(3)]
    seen: list[dict] = []

    tick_until(engine, lambda: engine.holds.held(AUTOMATION), "the automation held")
    for _ in range(10):  # held: nothing more is launched, nothing more is said
        engine.tick()
    events = _events(capsys, seen)
    (broken_event,) = [e for e in events if e["event"] == "automation.pipeline_broken"]
    problem = " ".join(broken_event["problems"])
    assert f"AUTOPILOT_AUTOMATIONS__{AUTOMATION.upper()}__TRAINING_" in problem
    assert ("no_such_module" if broken is DOES_NOT_IMPORT else "'dataset_id'") in problem
    assert not [e for e in events if e["event"] in ("training.failed", "tick.failed")]
    for dataset in datasets:
        action = engine.ledger.action(key(dataset))
        assert (action.state, action.attempts) == (ActionState.PENDING, 0)
        assert engine.store.runs_for_key(key(dataset)) == []
    launched = [e for e in events if e["event"] == "training.launched"]
    assert 1 <= len(launched) <= 2  # what was launched before the first failure came back
    assert sorted(broken_event["attempts_given_back"]) == sorted(e["key"] for e in launched)
    from service import operations

    assert AUTOMATION in operations.status(engine.ledger)["pipelines_broken"]

    write_project(root, version="fixed")
    for dataset in datasets:
        action = trained(engine, dataset)
        assert action.attempts == 1
        assert len(engine.store.runs_for_key(key(dataset))) == 1
        assert reported(engine, action)["pipeline"] == "fixed"
    events = _events(capsys, seen)
    assert [e["event"] for e in events].count("automation.pipeline_fixed") == 1
    assert [e["event"] for e in events].count("automation.pipeline_broken") == 1
    assert operations.status(engine.ledger)["pipelines_broken"] == {}
