"""Pipelines that test what one run can leave to the next in the worker that runs them:
`meddle` changes everything a run can change in its own process, then fails; `probe` reports
what it finds (printed as one `PROBE {...}` line, and returned)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from zenml import pipeline, step

LEFT_BEHIND: list[bytes] = []  # what `meddle` leaks: module state outlives a run in a process
MARKER = "AUTOPILOT_TEST_LEFT_BEHIND"
BOGUS_STACK = "00000000-0000-0000-0000-000000000000"


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


@step
def meddle_step(leak_mib: int) -> None:
    from zenml.utils import source_utils

    LEFT_BEHIND.append(b"x" * (leak_mib << 20))  # written, so resident
    os.chdir("/")
    os.environ[MARKER] = "meddle"
    os.environ["ZENML_ACTIVE_STACK_ID"] = BOGUS_STACK
    handler = logging.NullHandler()
    handler.set_name("left-behind")
    logging.getLogger().addHandler(handler)
    source_utils.set_custom_source_root("/")
    print("MEDDLER " + json.dumps({"resident_mib": resident_mib()}), flush=True)
    raise RuntimeError("meddled with its process, and failed on purpose")


@pipeline
def meddle(leak_mib: int = 300) -> None:
    meddle_step(leak_mib=leak_mib)


@step
def probe_step() -> dict[str, Any]:
    import numpy as np
    from zenml.utils import source_utils

    seen = {
        "cwd": os.getcwd(),
        "marker": os.environ.get(MARKER),
        "stack": os.environ.get("ZENML_ACTIVE_STACK_ID"),
        "handlers": [handler.get_name() for handler in logging.getLogger().handlers],
        "leaked": len(LEFT_BEHIND),
        "resident_mib": resident_mib(),
        "random": float(np.random.rand()),
        "source_root": source_utils.get_source_root(),
    }
    print("PROBE " + json.dumps(seen), flush=True)
    return seen


@pipeline
def probe() -> None:
    probe_step()
