"""The hold's decisions, on a real ledger and a real file tree, with the pipeline check (a child
process importing the project, run for real in tests/integration/test_reload.py) replaced by a
verdict the test gives."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import pytest

from service.core.actions import ActionKind, ActionState
from service.ledger import Ledger
from service.logs import configure
from service.settings import load_settings
from service.stages import pipeline_holds
from service.stages.context import Context
from service.stages.pipeline_holds import HELD_PREFIX, PipelineHolds


class FakeCheck:
    """A check whose verdict the test sets (`verdict`), counted when started."""

    started: ClassVar[list[FakeCheck]] = []
    verdict: ClassVar[list[str] | None] = None

    def __init__(self, automations: object, stack: str | None = None) -> None:
        FakeCheck.started.append(self)

    def done(self) -> bool:
        return FakeCheck.verdict is not None

    def problems(self) -> list[str]:
        assert FakeCheck.verdict is not None
        return FakeCheck.verdict

    def abandon(self) -> None:
        pass


@pytest.fixture
def holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    configure("json", "INFO")  # to this test's output: an earlier test's is closed by now
    FakeCheck.started, FakeCheck.verdict = [], None
    monkeypatch.setattr(pipeline_holds, "PipelineCheck", FakeCheck)
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "train.py").write_text("x = 1\n")
    settings = load_settings(
        {
            "AUTOPILOT_STATE_DIR": str(tmp_path / "state"),
            "AUTOPILOT_AUTOMATIONS__A__SOURCE_ROOT": str(root),
            "AUTOPILOT_AUTOMATIONS__A__DATASET_NAMES": "d",
            "AUTOPILOT_AUTOMATIONS__A__MODEL_NAME": "m",
            "AUTOPILOT_AUTOMATIONS__A__TRAINING_PIPELINE": "pipelines.train:training",
        }
    )
    ledger = Ledger(settings.ledger_path)
    yield PipelineHolds(Context(settings, ledger, None)), ledger, root  # type: ignore[arg-type]
    ledger.close()


def _failed_attempt(ledger: Ledger, key: str, state: ActionState = ActionState.RETRY_WAIT):
    ledger.claim(key, ActionKind.TRAIN, key.rsplit(":", 1)[1], {}, "a")
    ledger.transition(key, ActionState.RUNNING, attempts=1)
    return ledger.transition(key, state, error="ImportError: boom")


def _edit(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_check_that_passes_leaves_the_attempt_counted_and_is_not_repeated_on_that_code(holds):
    holds, ledger, root = holds
    holds.failed_before_run(_failed_attempt(ledger, "train:a:1"), "some error")
    assert holds.blocks("a") and not holds.held("a")  # nothing dispatched while it checks

    FakeCheck.verdict = []
    holds.tick()
    assert not holds.blocks("a")
    action = ledger.action("train:a:1")
    assert (action.state, action.attempts) == (ActionState.RETRY_WAIT, 1)

    holds.failed_before_run(_failed_attempt(ledger, "train:a:2"), "some error")
    assert len(FakeCheck.started) == 1 and not holds.blocks("a")  # that code passed already
    _edit(root / "pipelines" / "train.py")
    holds.failed_before_run(_failed_attempt(ledger, "train:a:3"), "some error")
    assert len(FakeCheck.started) == 2 and holds.blocks("a")


def test_a_broken_pipeline_is_held_its_attempts_given_back_until_a_check_passes(holds):
    holds, ledger, root = holds
    ledger.set_meta(f"{HELD_PREFIX}gone", "{}")  # written by an earlier process
    holds.start()
    assert ledger.meta_with_prefix(HELD_PREFIX) == {}

    holds.failed_before_run(_failed_attempt(ledger, "train:a:1"), "ImportError: boom")
    holds.failed_before_run(_failed_attempt(ledger, "train:a:2", ActionState.FAILED), "again")
    FakeCheck.verdict = ["AUTOPILOT_AUTOMATIONS__A__TRAINING_PIPELINE=...: cannot be imported"]
    holds.tick()
    assert holds.held("a")
    for key in ("train:a:1", "train:a:2"):
        action = ledger.action(key)
        assert (action.state, action.attempts) == (ActionState.PENDING, 0)
    (record,) = ledger.meta_with_prefix(HELD_PREFIX).values()
    assert json.loads(record)["problems"] == FakeCheck.verdict
    # One launched before the hold, failing after it: given back at once.
    holds.failed_before_run(_failed_attempt(ledger, "train:a:3"), "ImportError: boom")
    assert ledger.action("train:a:3").state is ActionState.PENDING

    FakeCheck.verdict = None
    holds.tick()
    assert len(FakeCheck.started) == 1  # the code did not change: no new check yet
    _edit(root / "pipelines" / "train.py")
    holds.tick()
    assert len(FakeCheck.started) == 2 and holds.held("a")  # held until the check passes
    FakeCheck.verdict = ["AUTOPILOT_AUTOMATIONS__A__TRAINING_PARAMETERS: does not accept 'x'"]
    holds.tick()
    (record,) = ledger.meta_with_prefix(HELD_PREFIX).values()
    assert json.loads(record)["problems"] == FakeCheck.verdict  # what is wrong now
    FakeCheck.verdict = None
    _edit(root / "pipelines" / "train.py")
    holds.tick()
    FakeCheck.verdict = []
    holds.tick()
    assert not holds.blocks("a")
    assert ledger.meta_with_prefix(HELD_PREFIX) == {}
