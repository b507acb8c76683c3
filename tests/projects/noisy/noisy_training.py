"""A user's project that is noisy when imported, and whose training fails with an error that
quotes a credential, as a step's error can (a connection string, a token it was given).

Imported, it writes to stdout three ways a real project does: a warning through ZenML's own
logger (ZenML's coloured console handler), a Python warning (ZenML routes those to its logger
too) and a `print`. The daemon's stdout must stay one JSON event per line all the same.
"""

from __future__ import annotations

import os
import warnings

from zenml import pipeline, step
from zenml.logger import get_logger

ERROR_VARIABLE = "NOISY_TRAINING_ERROR"
IMPORT_NOISE = (
    "noisy project: a warning through ZenML's logger",
    "noisy project: a Python warning",
    "noisy project: a print",
)

get_logger(__name__).warning(IMPORT_NOISE[0])
warnings.warn(IMPORT_NOISE[1], UserWarning, stacklevel=1)
print(IMPORT_NOISE[2])


@step(enable_cache=False)
def fail_as_told(dataset_version_id: str) -> None:
    raise RuntimeError(os.environ.get(ERROR_VARIABLE, "failed as told"))


@pipeline(enable_cache=False)
def noisy_training(dataset_version_id: str) -> None:
    fail_as_told(dataset_version_id)
