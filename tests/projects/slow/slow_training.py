"""A training pipeline that takes as long as it is told to: a run that is still going when a
test stops the daemon, kills a worker or starts a second daemon beside it.

It is a user's project as the daemon sees one (its own source root, `module:attribute`); it
trains nothing, so the model version its run creates has no metric and is rejected.
"""

from __future__ import annotations

import time

from zenml import pipeline, step


@step(enable_cache=False)
def wait_then_finish(dataset_version_id: str, seconds: float) -> str:
    time.sleep(seconds)
    return dataset_version_id


@pipeline(enable_cache=False)
def slow_training(dataset_version_id: str, seconds: float = 10.0) -> None:
    wait_then_finish(dataset_version_id, seconds)
