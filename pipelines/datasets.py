"""Dataset contract and pure helpers shared by the pipelines (no zenml import here).

Dataset contract
----------------
A *training dataset* is a ``pandas.DataFrame`` of numeric feature columns with the
label in a column named ``target``, exactly what
``sklearn.datasets.load_iris(as_frame=True).frame`` gives. An *inference dataset* has
the same feature columns without ``target``.

Datasets reach the store in two ways and both must work:

* as outputs of ``feature_engineering_pipeline`` (artifacts ``iris_training_dataset``,
  ``iris_testing_dataset`` and ``iris_inference_dataset``), or
* registered directly with ``zenml.save_artifact(df, name=...)`` (pandas materializer).

Without ``pyarrow`` the pandas materializer stores frames as CSV, so only plain numeric
columns and the index survive a round trip; that is one more reason to keep the
contract this narrow.

The functions here are deliberately free of zenml so that they are cheap to import and
to unit-test, and so that the same validation runs inside steps and in tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

LABEL_COLUMN = "target"


def load_iris_frame() -> pd.DataFrame:
    """Return the iris dataset in the contract's shape (features + ``target``)."""
    frame = load_iris(as_frame=True).frame
    assert isinstance(frame, pd.DataFrame)
    return frame


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Return the feature column names, i.e. every column except the label."""
    return [str(column) for column in frame.columns if column != LABEL_COLUMN]


def _stratify_labels(frame: pd.DataFrame) -> pd.Series | None:
    """Labels to stratify on, or None when a class is too small to be split.

    Stratifying keeps every class in both parts of small datasets like iris, but
    scikit-learn refuses to stratify a class with a single row.
    """
    if LABEL_COLUMN not in frame.columns:
        return None
    labels = frame[LABEL_COLUMN]
    if labels.value_counts().min() < 2:
        return None
    return labels


def split_frame(
    frame: pd.DataFrame, test_size: float = 0.25, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a labelled frame into (train, test), stratified by label when possible.

    The split is deterministic for a given ``random_state`` so that a dataset version
    can be reproduced from its parameters.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be strictly between 0 and 1, got {test_size}")
    train, test = train_test_split(
        frame,
        test_size=test_size,
        random_state=random_state,
        stratify=_stratify_labels(frame),
    )
    return train, test


def scoring_frame(rows: int = 30, random_state: int = 0) -> pd.DataFrame:
    """New unlabelled data to score: ``rows`` iris rows (features only), drawn by
    ``random_state``, as a batch arriving in production would be."""
    features = load_iris_frame().drop(columns=[LABEL_COLUMN])
    return features.sample(n=rows, random_state=random_state)


def add_label_noise(frame: pd.DataFrame, fraction: float, random_state: int = 0) -> pd.DataFrame:
    """Return a copy where ``fraction`` of the labels are replaced by a *different* class.

    Used to publish deliberately bad datasets (e.g. ``fraction=0.7`` yields a poor
    model), so the autopilot's quality gate has something to reject. Exactly
    ``round(fraction * len(frame))`` rows change label, which makes the effect
    predictable in tests.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    noisy = frame.copy()
    n_noisy = round(fraction * len(noisy))
    if n_noisy == 0:
        return noisy
    classes = np.asarray(sorted(noisy[LABEL_COLUMN].unique()))
    if len(classes) < 2:
        raise ValueError("label noise needs at least two classes in the 'target' column")
    rng = np.random.default_rng(random_state)
    rows = rng.choice(len(noisy), size=n_noisy, replace=False)
    column = noisy.columns.get_loc(LABEL_COLUMN)
    labels = noisy[LABEL_COLUMN].to_numpy(copy=True)
    for row in rows:
        others = classes[classes != labels[row]]
        labels[row] = rng.choice(others)
    noisy.iloc[:, column] = labels
    return noisy


def validate_training_frame(frame: object) -> None:
    """Raise ``ValueError`` with a specific message if ``frame`` breaks the contract.

    Steps call this before training so that a malformed dataset fails the run with a
    message that names the problem instead of a scikit-learn stack trace.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"dataset must be a pandas DataFrame, got {type(frame).__module__}."
            f"{type(frame).__qualname__}"
        )
    if frame.empty:
        raise ValueError(f"dataset is empty (shape {frame.shape}): it has no rows to train on")
    if LABEL_COLUMN not in frame.columns:
        raise ValueError(
            f"dataset has no label column {LABEL_COLUMN!r}; columns are {list(frame.columns)}"
        )
    features = feature_columns(frame)
    if not features:
        raise ValueError(f"dataset has no feature columns besides the label {LABEL_COLUMN!r}")
    non_numeric = [
        f"{column} ({frame[column].dtype})"
        for column in features
        if not is_numeric_dtype(frame[column])
    ]
    if non_numeric:
        raise ValueError(
            "dataset feature columns must be numeric; non-numeric columns: "
            + ", ".join(non_numeric)
        )
    with_missing = [column for column in features if frame[column].isna().any()]
    if with_missing:
        raise ValueError(
            "dataset feature columns contain missing values: " + ", ".join(with_missing)
        )
    if frame[LABEL_COLUMN].isna().any():
        raise ValueError(f"dataset label column {LABEL_COLUMN!r} contains missing values")
    if frame[LABEL_COLUMN].nunique() < 2:
        raise ValueError(
            f"dataset label column {LABEL_COLUMN!r} needs at least two classes, "
            f"found {frame[LABEL_COLUMN].nunique()}"
        )
