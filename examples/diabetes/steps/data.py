"""Load scikit-learn's diabetes data and split it into a train and a test set."""

from typing import Annotated

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from zenml import add_tags, step


@step
def split_diabetes(
    random_state: int = 0, noise: float = 0.0, approved: bool = True
) -> tuple[
    Annotated[pd.DataFrame, "diabetes_train"],
    Annotated[pd.DataFrame, "diabetes_test"],
]:
    """Split the data 75/25; optionally spoil the train labels; tag train `approved`.

    Args:
        random_state: Seed of the split and of the noise.
        noise: Standard deviation of the Gaussian noise added to the train targets, in
            standard deviations of `target` (0 leaves the data clean).
        approved: Tag the `diabetes_train` version `approved`.

    Returns:
        The train and the test set, with the label in column `target`.
    """
    frame = load_diabetes(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.25, random_state=random_state)
    if noise:
        rng = np.random.default_rng(random_state)
        spread = noise * float(frame["target"].std())
        train = train.assign(target=train["target"] + rng.normal(0.0, spread, len(train)))
    if approved:
        add_tags(tags=["approved"], infer_artifact=True, artifact_name="diabetes_train")
    return train, test
