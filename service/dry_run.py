"""`autopilot run --dry-run`: the real engine on a scratch copy of the ledger, with a store that
does not write and an executor that does not launch. Every event carries `dry_run: true`.

It shows what the daemon would launch or promote now; since nothing is promoted for real, no
inference follows a would-be promotion.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from service.core.records import RunInfo
from service.logs import get_logger
from service.runtime.executor import Executor, WorkerResult
from service.runtime.worker import Job
from service.settings import Settings
from service.store import StoreAdapter


def scratch_settings(settings: Settings) -> Settings:
    """The settings with the state dir replaced by a copy, so the real ledger never changes."""
    scratch = Path(tempfile.mkdtemp(prefix="autopilot-dry-run-"))
    if settings.ledger_path.exists():
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{settings.ledger_path}{suffix}")
            if source.exists():
                shutil.copy2(source, scratch / source.name)
    return settings.model_copy(update={"state_dir": scratch})


class ReadOnlyStore(StoreAdapter):
    """Reads like the real adapter; logs the writes it would make instead of making them."""

    def set_stage(self, model: str, version_id: str, stage: str) -> None:
        get_logger().info("dry_run.would_set_stage", model_version_id=version_id, stage=stage)

    def record_decision(self, version_id: str, decision: dict[str, object]) -> None:
        get_logger().info("dry_run.would_record_decision", model_version_id=version_id)

    def record_version_metadata(self, version_id: str, metadata: dict[str, Any]) -> None:
        get_logger().info(
            "dry_run.would_record_metadata", model_version_id=version_id, keys=sorted(metadata)
        )

    def mark_run_failed(self, run_id: str, reason: str) -> None:
        get_logger().info("dry_run.would_close_run", run_id=run_id, reason=reason)

    def stop_run(self, run_id: str, reason: str) -> tuple[RunInfo | None, str | None]:
        get_logger().info("dry_run.would_stop_run", run_id=run_id, reason=reason)
        return self.run(run_id), "dry run"


class NoLaunchExecutor(Executor):
    """Accepts jobs and starts nothing; they stay `running` in the scratch ledger."""

    def __init__(self, max_concurrent: int) -> None:
        super().__init__(max_concurrent, timeout_seconds=float("inf"))
        self._accepted: set[str] = set()

    def warm_up(self) -> None:
        return

    def launch(self, job: Job) -> int | None:
        self._accepted.add(job.key)
        return 0

    def free_slots(self) -> int:
        return self.max_concurrent

    def is_running(self, key: str) -> bool:
        return key in self._accepted

    def poll(self) -> list[WorkerResult]:
        return []

    def wait(self, timeout: float) -> list[WorkerResult]:
        return []
