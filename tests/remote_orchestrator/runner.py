"""The detached process of one run: `python -m tests.remote_orchestrator.runner <snapshot id>
<run id> <source root> <root>`. Waits while `<root>/hold` exists, then runs the snapshot's steps
in order through the stack's orchestrator (as the local orchestrator does, but here, in a
process of its own), and ends early when the run was stopped or closed in the store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from uuid import UUID

ENDED = {"stopping", "stopped", "failed", "completed", "cancelled"}


def main(snapshot_id: str, run_id: str, source_root: str, root: str) -> int:
    sys.path.insert(0, source_root)
    from zenml.client import Client
    from zenml.utils import source_utils
    from zenml.utils.env_utils import temporary_environment

    from tests.remote_orchestrator.flavor import HOLD

    source_utils.set_custom_source_root(source_root)
    folder = Path(root)
    client = Client()
    try:
        while (folder / HOLD).exists():
            if _ended(client, run_id):
                return 0
            time.sleep(0.2)
        snapshot = client.zen_store.get_snapshot(UUID(snapshot_id))
        environments = json.loads((folder / f"{run_id}.env.json").read_text())
        orchestrator = client.active_stack.orchestrator
        orchestrator._prepare_run(snapshot=snapshot)
        for name, step in snapshot.step_configurations.items():
            if _ended(client, run_id):
                print(f"run {run_id} ended in the store: not running step {name}", flush=True)
                return 0
            with temporary_environment(environments.get(name, {})):
                orchestrator.run_step(step=step)  # a failed step is recorded by ZenML, raises
        return 0
    finally:
        (folder / f"{run_id}.pid").unlink(missing_ok=True)


def _ended(client: object, run_id: str) -> bool:
    from zenml.client import Client

    assert isinstance(client, Client)
    status = client.zen_store.get_run(UUID(run_id), hydrate=False).status
    return str(status.value) in ENDED


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
