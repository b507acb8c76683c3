"""Evaluate the model on the test set and record the score on the model artifact."""

from typing import Annotated

import pandas as pd
from sklearn.metrics import root_mean_squared_error
from sklearn.pipeline import Pipeline
from zenml import get_step_context, log_metadata, step


@step
def evaluate_model(model: Pipeline, dataset: pd.DataFrame) -> Annotated[float, "rmse"]:
    """Compute the root mean squared error on the test set.

    The score is logged as `rmse` in the metadata of the model's own artifact version
    (the `diabetes_model` that this step received), where the model registry shows it.

    Args:
        model: The trained model.
        dataset: The test set, label in column `target`.

    Returns:
        The test rmse.
    """
    predictions = model.predict(dataset.drop(columns=["target"]))
    rmse = float(root_mean_squared_error(dataset["target"], predictions))
    model_artifact = get_step_context().inputs["model"][0]
    log_metadata(metadata={"rmse": rmse}, artifact_version_id=model_artifact.id)
    return rmse
