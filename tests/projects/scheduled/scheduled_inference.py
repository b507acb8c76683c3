"""An inference pipeline that scores nothing and takes as long as it is told to: a scheduled
inference that is still going at the next fire (an overlap), or one that ends at once.

A user's project as the daemon sees one (its own source root, `module:attribute`); the daemon
pins each run to the production version it was launched for, as any inference."""

from __future__ import annotations

import time

from zenml import get_step_context, pipeline, step


@step(enable_cache=False)
def score(seconds: float) -> str:
    time.sleep(seconds)
    model = get_step_context().model
    return f"{model.name}:{model.version}"


@pipeline(enable_cache=False)
def scheduled_inference(seconds: float = 0.0) -> None:
    score(seconds)
