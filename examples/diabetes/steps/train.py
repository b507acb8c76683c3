"""Train the regressor."""

from typing import Annotated

import pandas as pd
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType


@step
def train_model(
    dataset: pd.DataFrame, alpha: float = 0.0001
) -> Annotated[Pipeline, ArtifactConfig(name="diabetes_model", artifact_type=ArtifactType.MODEL)]:
    """Fit a linear model on degree-2 features with SGD (deterministic: fixed seed).

    The squares and products of the features give the model enough freedom to be
    pulled around by noisy labels, so a noisy dataset trains a visibly worse model.

    Args:
        dataset: The train set, label in column `target`.
        alpha: Strength of the L2 regularization.

    Returns:
        The fitted scikit-learn pipeline.
    """
    model = make_pipeline(
        PolynomialFeatures(degree=2),
        StandardScaler(),
        SGDRegressor(alpha=alpha, random_state=0),
    )
    model.fit(dataset.drop(columns=["target"]), dataset["target"])
    return model
