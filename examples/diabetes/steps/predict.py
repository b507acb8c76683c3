"""Batch predictions."""

from typing import Annotated

import pandas as pd
from sklearn.pipeline import Pipeline
from zenml import step


@step
def predict(model: Pipeline, dataset: pd.DataFrame) -> Annotated[pd.Series, "diabetes_predictions"]:
    """Predict `target` for every row of the dataset (a `target` column is ignored).

    Args:
        model: The model to predict with.
        dataset: The rows to predict for.

    Returns:
        One prediction per row, with the dataset's index.
    """
    features = dataset.drop(columns=["target"], errors="ignore")
    return pd.Series(model.predict(features), index=features.index, name="prediction")
