"""An inference pipeline that takes as long as it is told to: a scheduled inference that is
still going at the next fire (an overlap), or one that ends at once. Given a scoring dataset
version's id (`{{ scoring_dataset.id }}`), it loads that version, as a real scoring would.

A user's project as the daemon sees one (its own source root, `module:attribute`); the daemon
pins each run to the production version it was launched for, as any inference."""

from __future__ import annotations

import time

from zenml import get_step_context, pipeline, step
from zenml.client import Client


@step(enable_cache=False)
def score(seconds: float, scoring_dataset_id: str | None) -> str:
    time.sleep(seconds)
    model = get_step_context().model
    scored = ""
    if scoring_dataset_id is not None:
        scored = f" scored {Client().get_artifact_version(scoring_dataset_id).load()!r}"
    return f"{model.name}:{model.version}{scored}"


@pipeline(enable_cache=False)
def scheduled_inference(seconds: float = 0.0, scoring_dataset_id: str | None = None) -> None:
    score(seconds, scoring_dataset_id)
