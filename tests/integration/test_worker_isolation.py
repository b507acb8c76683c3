"""One run cannot change the next: real pipeline runs, one after another through one executor
(so through one warm template), the first of which changes all it can in its own process and
in ZenML's in-process state. Each run has a process of its own: a worker reused for the next
run fails this test, whatever the run left."""

from __future__ import annotations

import json
import os

import pytest

from service.runtime.executor import Executor
from service.runtime.launch import LAUNCHER
from service.runtime.worker import Job
from tests.projects.isolation.isolation import BOGUS_STACK
from tests.support import ISOLATION_ROOT, wait_for

pytestmark = pytest.mark.integration

LEAK_MIB = 300


def _run(executor: Executor, tmp_path, key: str, pipeline: str, **parameters: object):
    job = Job(
        key,
        LAUNCHER,
        {
            "pipeline": pipeline,
            "source_root": str(ISOLATION_ROOT),
            "config_path": None,
            "parameters": parameters,
            "model_name": "isolation_model",
            "model_version": None,
            "model_version_id": None,
            "tags": ["autopilot", key],
            "run_config_path": str(tmp_path / f"{key}.run-config.yaml"),
        },
        str(tmp_path / f"{key}.log"),
    )
    executor.launch(job)
    pid = wait_for(lambda: executor.worker_pid(key), timeout=60, what=f"{key}'s worker")
    (result,) = wait_for(executor.poll, timeout=240, interval=0.1, what=f"{key} to finish")
    return result, (tmp_path / f"{key}.log").read_text(), pid


def _printed(log: str, prefix: str) -> dict:
    (line,) = [line for line in log.splitlines() if line.startswith(prefix)]
    return json.loads(line[len(prefix) :])


def test_a_run_that_meddles_with_its_process_and_fails_leaves_nothing_to_the_next(
    zenml_store, tmp_path
):
    executor = Executor(
        2,
        300,
        warm_imports=((str(ISOLATION_ROOT), "isolation"),),
        warmup_log=str(tmp_path / "warmup.log"),
    )
    try:
        meddled, meddle_log, meddle_pid = _run(
            executor, tmp_path, "meddle", "isolation:meddle", leak_mib=LEAK_MIB
        )
        first, first_log, first_pid = _run(executor, tmp_path, "probe-1", "isolation:probe")
        second, second_log, second_pid = _run(executor, tmp_path, "probe-2", "isolation:probe")
    finally:
        executor.close()

    # A worker of its own for each run: a reused process (or the template) would give one pid.
    workers = [meddle_pid, first_pid, second_pid]
    assert len(set(workers)) == 3, workers
    assert not meddled.ok and "failed on purpose" in meddled.error
    assert first.ok and second.ok, first_log[-2000:] + second_log[-2000:]
    meddler = _printed(meddle_log, "MEDDLER ")
    seen = [_printed(first_log, "PROBE "), _printed(second_log, "PROBE ")]
    processes = [meddler["process"], seen[0]["process"], seen[1]["process"]]
    assert [pid for pid, _ in processes] == workers  # each ran in the worker it was given
    assert len({tuple(process) for process in processes}) == 3
    for probe in seen:
        assert not probe["zenml_client_marked"]  # ZenML's Client singleton: not the meddler's
        assert probe["zenml_stacks_marked"] == 0  # nor its cached Stack objects
        assert probe["cwd"] == os.getcwd()
        assert probe["marker"] is None
        assert probe["stack"] != BOGUS_STACK  # ZenML sets it for a step: its own, not this
        assert "left-behind" not in probe["handlers"]
        assert probe["leaked"] == 0
        assert probe["resident_mib"] < meddler["resident_mib"] - LEAK_MIB // 2
        assert probe["source_root"] == str(ISOLATION_ROOT)
    assert seen[0]["random"] != seen[1]["random"]  # each run draws its own random numbers
    # Each run's output is in its own log, and only there.
    assert "PROBE" not in meddle_log and "failed on purpose" in meddle_log
    assert "MEDDLER" not in first_log + second_log
    assert first_log.count("PROBE ") == second_log.count("PROBE ") == 1
