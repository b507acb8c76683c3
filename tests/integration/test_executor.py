"""The executor's warm spare workers, with real spawned processes on a real store."""

from __future__ import annotations

from service.runtime.executor import Executor
from service.runtime.worker import Job
from tests.support import PROJECT_ROOT, wait_for

ECHO = "tests.support:echo_launcher"


def _executor(tmp_path, spares: int = 1) -> Executor:
    return Executor(
        max_concurrent=2,
        timeout_seconds=300,
        warm_imports=((str(PROJECT_ROOT), "tests.support"),),
        warmup_log=str(tmp_path / "warmup.log"),
        spares=spares,
    )


def _job(tmp_path, key: str) -> Job:
    return Job(key, ECHO, {"value": f"run-of-{key}"}, str(tmp_path / f"{key}.log"))


def test_a_job_handed_to_a_spare_still_warming_reports_its_own_result(zenml_store, tmp_path):
    executor = _executor(tmp_path)
    try:
        executor.warm_up()
        executor.launch(_job(tmp_path, "first"))  # before the spare can have said `ready`

        # It returns once something arrives (`run --once` waits on this): at most the spare's
        # `ready`, then the report, so two waits are enough.
        results = []
        for _ in range(2):
            executor.wait_for_report(timeout=600)
            if results := executor.poll():
                break

        assert [(r.key, r.ok, r.run_id, r.error) for r in results] == [
            ("first", True, "run-of-first", None)
        ]
    finally:
        executor.close()


def test_spares_are_warmed_one_at_a_time_and_a_used_one_is_replaced(zenml_store, tmp_path):
    executor = _executor(tmp_path, spares=2)
    results = []

    def tick() -> None:  # what the daemon does every poll
        results.extend(executor.poll())

    try:
        executor.warm_up()
        assert executor.warm_spares() == 0  # the first is still importing; none other started
        wait_for(lambda: executor.warm_spares() == 2, timeout=120, between=tick, what="2 warm")

        executor.launch(_job(tmp_path, "a"))
        assert executor.warm_spares() == 1  # one used; its replacement is still warming
        wait_for(lambda: executor.warm_spares() == 2, timeout=120, between=tick, what="refill")
        wait_for(lambda: results, timeout=30, between=tick, what="the worker's result")
        assert [(r.key, r.run_id) for r in results] == [("a", "run-of-a")]
    finally:
        executor.close()


def test_a_spare_that_dies_is_replaced_and_the_count_goes_on(zenml_store, tmp_path):
    import multiprocessing

    executor = _executor(tmp_path)
    try:
        executor.warm_up()
        wait_for(lambda: executor.warm_spares() == 1, timeout=120, what="a warm spare")
        (spare,) = [p for p in multiprocessing.active_children() if p.name == "autopilot-worker"]
        spare.kill()  # e.g. the OOM killer
        spare.join(10)

        assert executor.warm_spares() == 0  # a dead spare is not counted, nor an error
        wait_for(
            lambda: executor.warm_spares() == 1, timeout=120, between=executor.poll, what="refill"
        )
        executor.launch(_job(tmp_path, "after"))
        results = wait_for(executor.poll, timeout=60, what="the worker's result")
        assert [(r.key, r.ok, r.run_id) for r in results] == [("after", True, "run-of-after")]
    finally:
        executor.close()
