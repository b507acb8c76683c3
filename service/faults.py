"""Test-only fault injection: inert unless AUTOPILOT_TEST_CRASH_AT names a crash point.

`crashpoint("after_dataset_claimed")` kills the daemon with SIGKILL right there, so tests can
show that a restart completes the chain with nothing lost and nothing done twice. Every crash
point's name is listed in CRASH_POINTS and in RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "AUTOPILOT_TEST_CRASH_AT"

CRASH_POINTS = (
    "after_cursor_read",  # a dataset cursor read, nothing judged yet
    "after_dataset_claimed",  # train key and cursor committed, nothing launched
    "after_marked_running",  # action marked running, worker not yet started
    "after_launch",  # worker started, its launch not yet logged
    "after_run_finished",  # worker done, outcome not yet recorded
    "after_promotion_decided",  # decision in the ledger, stage not yet changed
    "after_stage_changed",  # model in production, decision metadata not yet written
    "after_production_seen",  # production change recorded and infer key claimed
)


def crashpoint(name: str) -> None:
    """SIGKILL this process if the test switch names this point; otherwise do nothing."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
