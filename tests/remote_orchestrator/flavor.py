"""The `detached` orchestrator flavor (test only): see the package docstring."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml.enums import ExecutionStatus, StackComponentType
from zenml.models import PipelineRunUpdate
from zenml.orchestrators import (
    BaseOrchestrator,
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
    SubmissionResult,
)

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import PipelineRunResponse, PipelineSnapshotResponse
    from zenml.stack import Stack

FLAVOR = "detached"
RUN_ID_ENV = "AUTOPILOT_TEST_DETACHED_RUN_ID"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOLD = "hold"


class DetachedOrchestratorConfig(BaseOrchestratorConfig):
    """`root`: the folder for pid files, run logs and the `hold` switch."""

    root: str

    @property
    def is_synchronous(self) -> bool:
        return False


class DetachedOrchestrator(BaseOrchestrator):
    """Submits each run to a detached process and returns at once; stops it by its pid."""

    @property
    def config(self) -> DetachedOrchestratorConfig:
        return self._config  # type: ignore[return-value]

    def get_orchestrator_run_id(self) -> str:
        """The run's id, set in the detached process (as the Modal orchestrator does)."""
        try:
            return os.environ[RUN_ID_ENV]
        except KeyError:
            raise RuntimeError("not inside a detached run") from None

    def submit_pipeline(
        self,
        snapshot: PipelineSnapshotResponse,
        stack: Stack,
        base_environment: dict[str, str],
        step_environments: dict[str, dict[str, str]],
        placeholder_run: PipelineRunResponse | None = None,
    ) -> SubmissionResult | None:
        from zenml.client import Client
        from zenml.utils import source_utils

        if placeholder_run is None:
            raise RuntimeError("the detached orchestrator runs only runs, not schedules")
        run_id = str(placeholder_run.id)
        # Known before the first step starts, so the run can be stopped from the start.
        Client().zen_store.update_run(
            placeholder_run.id, PipelineRunUpdate(orchestrator_run_id=run_id)
        )
        root = Path(self.config.root)
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{run_id}.env.json").write_text(json.dumps(step_environments))
        environment = {
            **os.environ,
            **base_environment,
            "ZENML_ACTIVE_STACK_ID": str(stack.id),
            RUN_ID_ENV: run_id,
        }
        arguments = [str(snapshot.id), run_id, source_utils.get_source_root(), str(root)]
        with open(root / f"{run_id}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.remote_orchestrator.runner", *arguments],
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the worker's process group or session
            )
        (root / f"{run_id}.pid").write_text(str(process.pid))
        return SubmissionResult(metadata={"detached_pid": process.pid})

    def _stop_run_forcefully(self, pipeline_run: PipelineRunResponse) -> None:
        """Kill the run's process, then close its unfinished steps as stopped (no process is
        left to do so), which makes the `stopping` run `stopped`."""
        from zenml.client import Client
        from zenml.orchestrators import publish_utils

        kill(Path(self.config.root), str(pipeline_run.id))
        steps = Client().list_run_steps(pipeline_run_id=pipeline_run.id, size=100)
        for step in steps.items:
            if not step.status.is_finished:
                publish_utils.publish_stopped_step_run(step.id)

    def fetch_status(
        self, run: PipelineRunResponse, include_steps: bool = False
    ) -> tuple[ExecutionStatus | None, dict[str, ExecutionStatus] | None]:
        """A run whose process is gone without finishing it has failed."""
        if run.status.is_finished or alive(pid_of(Path(self.config.root), str(run.id))):
            return run.status, None
        return ExecutionStatus.FAILED, None


class DetachedOrchestratorFlavor(BaseOrchestratorFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[DetachedOrchestratorConfig]:
        return DetachedOrchestratorConfig

    @property
    def implementation_class(self) -> type[DetachedOrchestrator]:
        return DetachedOrchestrator


# -- helpers for tests and the runner ----------------------------------------------------------


def pid_of(root: Path, run_id: str) -> int | None:
    try:
        return int((root / f"{run_id}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """True while the process runs (a zombie nobody reaped yet counts as ended)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill(root: Path, run_id: str, timeout: float = 10) -> None:
    """SIGKILL a run's process group and wait until it has ended."""
    pid = pid_of(root, run_id)
    if pid is not None and alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the session leader: pgid == pid
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    (root / f"{run_id}.pid").unlink(missing_ok=True)


def live_runs(root: Path) -> list[str]:
    """Ids of runs whose detached process still runs."""
    return [p.stem for p in root.glob("*.pid") if alive(pid_of(root, p.stem))]


def kill_all(root: Path) -> None:
    """Test teardown: no detached run outlives its test."""
    for pid_file in root.glob("*.pid"):
        kill(root, pid_file.stem)


def register_stack(client: Client, root: Path, name: str = "detached") -> str:
    """Register the flavor, an orchestrator of it and a stack with the default artifact store;
    returns the stack's name."""
    root.mkdir(parents=True, exist_ok=True)
    source = f"{__name__}.{DetachedOrchestratorFlavor.__name__}"
    client.create_flavor(source=source, component_type=StackComponentType.ORCHESTRATOR)
    client.create_stack_component(
        name=name,
        flavor=FLAVOR,
        component_type=StackComponentType.ORCHESTRATOR,
        configuration={"root": str(root)},
    )
    artifact_store = client.active_stack_model.components[StackComponentType.ARTIFACT_STORE][0]
    components: dict[StackComponentType, Any] = {
        StackComponentType.ORCHESTRATOR: name,
        StackComponentType.ARTIFACT_STORE: str(artifact_store.id),
    }
    client.create_stack(name=name, components=components)
    return name
