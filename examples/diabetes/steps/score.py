"""Score a model on an evaluation dataset, logging the score on this step's run."""

from typing import Annotated

import pandas as pd
from sklearn.metrics import root_mean_squared_error
from sklearn.pipeline import Pipeline
from zenml import log_metadata, step


@step
def score_model(model: Pipeline, dataset: pd.DataFrame) -> Annotated[float, "holdout_rmse"]:
    """Compute the root mean squared error on an evaluation dataset.

    The score is logged as `rmse` on this step's run (a bare `log_metadata` call), not on
    the model or its artifact: those keep the score the training measured on its own test
    split.

    Args:
        model: The model to score.
        dataset: The evaluation dataset, label in column `target`.

    Returns:
        The rmse on that dataset.
    """
    predictions = model.predict(dataset.drop(columns=["target"]))
    rmse = float(root_mean_squared_error(dataset["target"], predictions))
    log_metadata(metadata={"rmse": rmse})
    return rmse
