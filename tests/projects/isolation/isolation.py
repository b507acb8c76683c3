"""Pipelines that test what one run can leave to the next in the worker that runs them:
`meddle` changes everything a run can change in its own process, then fails; `probe` reports
what it finds (printed as one `PROBE {...}` line, and returned).

This module is imported afresh for every run (its source root's modules are), so what it
leaves in its own globals cannot tell a reused process; what it leaves in ZenML (the `Client`
singleton, the cached `Stack` of the active stack) and in the process itself can."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from zenml import pipeline, step

LEFT_BEHIND: list[bytes] = []  # what `meddle` leaks: module state outlives a run in a process
MARKER = "AUTOPILOT_TEST_LEFT_BEHIND"
BOGUS_STACK = "00000000-0000-0000-0000-000000000000"
ZENML_MARK = "_autopilot_left_behind"  # set on ZenML's own objects by `meddle`


def process_identity() -> list[int]:
    """This process: its pid and its start time (in clock ticks since boot), which together
    never name two processes."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return [os.getpid(), int(fields[19])]


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


@step
def meddle_step(leak_mib: int) -> None:
    from zenml.client import Client
    from zenml.utils import source_utils

    leaked = b"x" * (leak_mib << 20)  # written, so resident
    LEFT_BEHIND.append(leaked)
    client = Client()  # ZenML's singleton, and its cached Stack: both outlive this module
    setattr(client, ZENML_MARK, leaked)
    setattr(client.active_stack, ZENML_MARK, "meddle")
    os.chdir("/")
    os.environ[MARKER] = "meddle"
    os.environ["ZENML_ACTIVE_STACK_ID"] = BOGUS_STACK
    handler = logging.NullHandler()
    handler.set_name("left-behind")
    logging.getLogger().addHandler(handler)
    source_utils.set_custom_source_root("/")
    meddler = {"resident_mib": resident_mib(), "process": process_identity()}
    print("MEDDLER " + json.dumps(meddler), flush=True)
    raise RuntimeError("meddled with its process, and failed on purpose")


@pipeline
def meddle(leak_mib: int = 300) -> None:
    meddle_step(leak_mib=leak_mib)


@step
def probe_step() -> dict[str, Any]:
    import importlib

    import numpy as np
    from zenml.client import Client
    from zenml.utils import source_utils

    stacks = importlib.import_module("zenml.stack.stack")._STACK_CACHE.values()
    seen = {
        "process": process_identity(),
        "zenml_client_marked": hasattr(Client(), ZENML_MARK),
        "zenml_stacks_marked": sum(hasattr(cached, ZENML_MARK) for cached in stacks),
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
