"""Load scikit-learn's diabetes data: a fixed holdout, and train/test splits of the rest."""

from typing import Annotated

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from zenml import add_tags, step

# The holdout is the same rows for every dataset: carved out first with a fixed seed, so no
# train or test split ever holds one of them.
HOLDOUT_SHARE = 0.2
HOLDOUT_SEED = 4


def _split_off_holdout(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows outside the holdout, and the holdout."""
    rest, holdout = train_test_split(frame, test_size=HOLDOUT_SHARE, random_state=HOLDOUT_SEED)
    return rest, holdout


@step
def split_diabetes(
    random_state: int = 0, noise: float = 0.0, approved: bool = True
) -> tuple[
    Annotated[pd.DataFrame, "diabetes_train"],
    Annotated[pd.DataFrame, "diabetes_test"],
]:
    """Split the data outside the holdout 75/25; optionally spoil the train labels; tag
    train `approved`.

    Args:
        random_state: Seed of the split and of the noise.
        noise: Standard deviation of the Gaussian noise added to the train targets, in
            standard deviations of `target` (0 leaves the data clean).
        approved: Tag the `diabetes_train` version `approved`.

    Returns:
        The train and the test set, with the label in column `target`.
    """
    frame = load_diabetes(as_frame=True).frame
    rest, _ = _split_off_holdout(frame)
    train, test = train_test_split(rest, test_size=0.25, random_state=random_state)
    if noise:
        rng = np.random.default_rng(random_state)
        spread = noise * float(frame["target"].std())
        train = train.assign(target=train["target"] + rng.normal(0.0, spread, len(train)))
    if approved:
        add_tags(tags=["approved"], infer_artifact=True, artifact_name="diabetes_train")
    return train, test


@step
def holdout_diabetes(approved: bool = True) -> Annotated[pd.DataFrame, "diabetes_holdout"]:
    """The holdout: rows no dataset trains or tests on, to score every model on.

    Args:
        approved: Tag the `diabetes_holdout` version `approved`.

    Returns:
        The holdout, with the label in column `target`.
    """
    _, holdout = _split_off_holdout(load_diabetes(as_frame=True).frame)
    if approved:
        add_tags(tags=["approved"], infer_artifact=True, artifact_name="diabetes_holdout")
    return holdout
