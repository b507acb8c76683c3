"""Test-only fault injection: inert unless AUTOPILOT_TEST_CRASH_AT names a crash point or
AUTOPILOT_TEST_PAUSE_AT names a pause point.

`crashpoint("after_dataset_claimed")` kills the daemon with SIGKILL right there, so tests can
show that a restart completes the chain with nothing lost and nothing done twice. Every crash
point's name is listed in CRASH_POINTS (or SCHEDULE_CRASH_POINTS) and in RELIABILITY.md.

`pausepoint("before_signal_handlers")` holds the daemon there (saying so on stderr) for a test
to act in a window that is otherwise too short to hit, a signal say. Every pause point's name
is listed in PAUSE_POINTS.
"""

from __future__ import annotations

import os
import signal
import sys
import time

CRASH_ENV = "AUTOPILOT_TEST_CRASH_AT"
PAUSE_ENV = "AUTOPILOT_TEST_PAUSE_AT"
PAUSE_SECONDS = 60  # then it goes on, as if it had never paused

CRASH_POINTS = (
    "after_cursor_read",  # a dataset cursor read, nothing judged yet
    "after_dataset_claimed",  # train key and cursor committed, nothing launched
    "after_marked_running",  # action marked running, worker not yet started
    "after_launch",  # worker started, its launch not yet logged
    "after_run_finished",  # worker done, outcome not yet recorded
    "after_promotion_decided",  # decision in the ledger, stage not yet changed
    "after_stage_changed",  # model in production, decision metadata not yet written
    "after_decision_stored",  # decision carried out in the store and logged, ledger not told
    "after_decision_recorded",  # decision logged, done in the ledger, notification in outbox
    "after_production_seen",  # production change recorded and infer key claimed
    "between_evaluations",  # one of a candidate's two evaluations recorded, the other not
    "after_staged",  # a candidate in staging (approval mode), its decision not yet recorded
    # `autopilot approve` / `reject`: the verdict recorded on the version, the stage unchanged
    "after_approval_recorded",
    # a rollback recorded on the version rolled back from, the restored one not yet production
    "after_rollback_recorded",
)
# Reached only by an automation with an evaluation pipeline and a production version
# (tests/e2e/test_evaluation.py), not by the iris chain of tests/e2e/test_crash_points.py.
EVALUATION_CRASH_POINTS = ("between_evaluations",)
# Reached only in approval mode or by a rollback (tests/e2e/test_promotion_gate.py), not by the
# iris chain of tests/e2e/test_crash_points.py.
GATE_CRASH_POINTS = (
    "after_staged",
    "after_approval_recorded",
    "after_rollback_recorded",
)

# Crash points of the schedules (issue 20), tested by tests/e2e/test_schedules.py: not on the
# chain every test_crash_points run goes through.
SCHEDULE_CRASH_POINTS = (
    "after_fire_recorded",  # a fire handled, its action claimed, nothing launched
)

PAUSE_POINTS = (
    # start-up: the state dir locked, the worker template forked, the logs configured; the
    # daemon's own signal handlers not yet installed (`cli._stop_while_starting` stops it)
    "before_signal_handlers",
)


def crashpoint(name: str) -> None:
    """SIGKILL this process if the test switch names this point; otherwise do nothing."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pausepoint(name: str) -> None:
    """Wait here for up to PAUSE_SECONDS if the test switch names this point, after saying so
    on stderr (`autopilot: paused at <name>`); otherwise do nothing. A signal handler that
    raises ends the wait."""
    if os.environ.get(PAUSE_ENV) == name:
        print(f"autopilot: paused at {name}", file=sys.stderr, flush=True)
        time.sleep(PAUSE_SECONDS)
