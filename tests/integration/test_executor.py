"""The executor's worker template, with real processes on a real store: every worker is a fork
of one warm template, which can die and be replaced without losing track of a worker."""

from __future__ import annotations

import os
import signal

from service.runtime.executor import Executor
from service.runtime.worker import Job
from tests.support import PROJECT_ROOT, wait_for

ECHO = "tests.support:echo_launcher"
SLEEP = "tests.support:sleep_launcher"


def _executor(tmp_path, timeout: float = 300) -> Executor:
    return Executor(
        max_concurrent=2,
        timeout_seconds=timeout,
        warm_imports=((str(PROJECT_ROOT), "tests.support"),),
        warmup_log=str(tmp_path / "warmup.log"),
    )


def _job(tmp_path, key: str, seconds: float | None = None) -> Job:
    if seconds is None:
        return Job(key, ECHO, {"value": f"run-of-{key}"}, str(tmp_path / f"{key}.log"))
    kwargs = {"value": f"run-of-{key}", "seconds": seconds}
    return Job(key, SLEEP, kwargs, str(tmp_path / f"{key}.log"))


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _results(executor: Executor, count: int, timeout: float = 120) -> list:
    results: list = []

    def collect() -> bool:
        results.extend(executor.poll())
        return len(results) >= count

    wait_for(collect, timeout=timeout, interval=0.05, what=f"{count} result(s)")
    return results


def test_a_job_handed_to_the_template_while_it_warms_reports_its_own_result(zenml_store, tmp_path):
    executor = _executor(tmp_path)
    try:
        executor.warm_up()
        pid = executor.launch(_job(tmp_path, "first"))  # before the template can be warm
        assert pid is None  # no worker yet: it is forked once the warm-up is done

        # `run --once` waits on this: it returns whenever the template says something.
        results = []
        for _ in range(5):
            executor.wait_for_report(timeout=600)
            if results := executor.poll():
                break

        assert [(r.key, r.ok, r.run_id, r.error) for r in results] == [
            ("first", True, "run-of-first", None)
        ]
    finally:
        executor.close()


def test_every_worker_is_a_fork_of_one_warm_template(zenml_store, tmp_path):
    executor = _executor(tmp_path)
    try:
        executor.warm_up()
        wait_for(executor.template_ready, timeout=120, what="the template warm")
        template = executor._template.pid

        pids = [executor.launch(_job(tmp_path, key, seconds=2)) for key in ("a", "b")]

        assert None not in pids and pids[0] != pids[1]  # forked at once: the pid is known
        assert [_parent_of(pid) for pid in pids] == [template, template]
        results = _results(executor, 2)
        assert sorted((r.key, r.ok, r.run_id) for r in results) == [
            ("a", True, "run-of-a"),
            ("b", True, "run-of-b"),
        ]
        assert executor._template.pid == template  # no new template: each job only a fork
    finally:
        executor.close()


def test_a_template_that_dies_takes_its_workers_with_it_and_is_replaced(zenml_store, tmp_path):
    executor = _executor(tmp_path)
    try:
        executor.warm_up()
        wait_for(executor.template_ready, timeout=120, what="the template warm")
        dead_template = executor._template.pid
        worker = executor.launch(_job(tmp_path, "running", seconds=60))

        os.kill(dead_template, signal.SIGKILL)  # the OOM killer picks the biggest process

        (died,) = _results(executor, 1)
        assert (died.key, died.ok, died.exit_code) == ("running", False, -signal.SIGKILL)
        assert "template process died" in died.error
        wait_for(lambda: not os.path.exists(f"/proc/{worker}"), timeout=10, what="worker gone")
        executor.launch(_job(tmp_path, "after"))
        (after,) = _results(executor, 1)
        assert (after.key, after.ok, after.run_id) == ("after", True, "run-of-after")
        assert executor._template.pid != dead_template
    finally:
        executor.close()


def test_a_worker_past_its_timeout_is_killed_and_its_retry_gets_its_own_result(
    zenml_store, tmp_path
):
    executor = _executor(tmp_path, timeout=2)
    try:
        executor.warm_up()
        wait_for(executor.template_ready, timeout=120, what="the template warm")
        hung = executor.launch(_job(tmp_path, "key", seconds=600))

        (timed_out,) = _results(executor, 1, timeout=60)
        assert (timed_out.key, timed_out.ok, timed_out.timed_out) == ("key", False, True)
        assert not os.path.exists(f"/proc/{hung}")  # killed and reaped, not left running
        # The retry has the same key: the killed worker's end is not taken for the retry's.
        executor.launch(_job(tmp_path, "key"))
        (retry,) = _results(executor, 1)
        assert (retry.ok, retry.run_id, retry.exit_code) == (True, "run-of-key", None)
    finally:
        executor.close()


def test_code_changed_on_disk_gets_a_new_template_and_runs_on_the_old_one_finish(
    zenml_store, tmp_path
):
    root = tmp_path / "project"
    root.mkdir()
    module = root / "user_code.py"
    module.write_text("VERSION = 1\n")
    executor = Executor(
        max_concurrent=2,
        timeout_seconds=300,
        warm_imports=((str(root), "user_code"),),
        warmup_log=str(tmp_path / "warmup.log"),
    )
    try:
        executor.warm_up()
        wait_for(executor.template_ready, timeout=120, what="the template warm")
        old = executor._template
        started_on_old = executor.launch(_job(tmp_path, "long", seconds=5))
        assert _parent_of(started_on_old) == old.pid

        module.write_text("VERSION = 2  # edited\n")
        executor.launch(_job(tmp_path, "after-edit"))

        assert executor._template is not old  # a new one warms for the run after the edit
        results = {r.key: r for r in _results(executor, 2)}
        assert (results["after-edit"].ok, results["long"].ok) == (True, True)  # not killed
        wait_for(
            lambda: not old.process.is_alive(),
            timeout=30,
            between=executor.poll,
            what="the old template stopped once its run ended",
        )
        assert executor._template.process.is_alive()
    finally:
        executor.close()
