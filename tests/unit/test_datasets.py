"""Unit tests of the dataset contract helpers (no zenml involved)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.datasets import (
    LABEL_COLUMN,
    add_label_noise,
    feature_columns,
    load_iris_frame,
    split_frame,
    validate_training_frame,
)


@pytest.fixture
def iris() -> pd.DataFrame:
    return load_iris_frame()


def test_load_iris_frame_matches_the_contract(iris):
    assert iris.shape == (150, 5)
    assert LABEL_COLUMN in iris.columns
    assert len(feature_columns(iris)) == 4
    validate_training_frame(iris)


def test_split_frame_sizes_are_deterministic_and_stratified(iris):
    train, test = split_frame(iris, test_size=0.25, random_state=0)
    again_train, _ = split_frame(iris, test_size=0.25, random_state=0)
    assert (len(train), len(test)) == (112, 38)
    assert train.index.equals(again_train.index)
    assert set(train.index).isdisjoint(test.index)
    assert test[LABEL_COLUMN].value_counts().min() >= 12


def test_split_frame_rejects_a_bad_test_size(iris):
    with pytest.raises(ValueError, match="test_size"):
        split_frame(iris, test_size=1.0)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.7, 1.0])
def test_label_noise_changes_exactly_that_fraction(iris, fraction):
    noisy = add_label_noise(iris, fraction, random_state=0)
    changed = (noisy[LABEL_COLUMN] != iris[LABEL_COLUMN]).sum()
    assert changed == round(fraction * len(iris))
    assert set(noisy[LABEL_COLUMN]) <= set(iris[LABEL_COLUMN])
    assert noisy.drop(columns=LABEL_COLUMN).equals(iris.drop(columns=LABEL_COLUMN))


def test_label_noise_zero_copies_and_never_mutates(iris):
    original = iris.copy()
    noisy = add_label_noise(iris, 0.0)
    assert noisy.equals(iris) and noisy is not iris
    add_label_noise(iris, 0.5)
    assert iris.equals(original)


def test_label_noise_is_reproducible(iris):
    first = add_label_noise(iris, 0.4, random_state=7)
    second = add_label_noise(iris, 0.4, random_state=7)
    other = add_label_noise(iris, 0.4, random_state=8)
    assert first.equals(second)
    assert not first.equals(other)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_label_noise_rejects_fractions_outside_0_1(iris, fraction):
    with pytest.raises(ValueError, match="fraction"):
        add_label_noise(iris, fraction)


def test_label_noise_needs_two_classes(iris):
    single = iris[iris[LABEL_COLUMN] == 0]
    with pytest.raises(ValueError, match="two classes"):
        add_label_noise(single, 0.5)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((3, 2)), "must be a pandas DataFrame, got numpy.ndarray"),
        ([1, 2, 3], "must be a pandas DataFrame, got builtins.list"),
        (pd.Series([1.0, 2.0]), "must be a pandas DataFrame, got pandas.Series"),
        (pd.DataFrame(), "dataset is empty"),
    ],
)
def test_validation_rejects_non_frames_and_empty_frames(frame, message):
    with pytest.raises(ValueError, match=message):
        validate_training_frame(frame)


def test_validation_rejects_a_frame_without_rows(iris):
    with pytest.raises(ValueError, match=r"dataset is empty \(shape \(0, 5\)\)"):
        validate_training_frame(iris.iloc[0:0])


def test_validation_rejects_a_missing_label_column(iris):
    with pytest.raises(ValueError, match="no label column 'target'"):
        validate_training_frame(iris.drop(columns=LABEL_COLUMN))


def test_validation_rejects_a_frame_with_only_the_label(iris):
    with pytest.raises(ValueError, match="no feature columns"):
        validate_training_frame(iris[[LABEL_COLUMN]])


def test_validation_names_non_numeric_feature_columns(iris):
    frame = iris.assign(colour="red")
    frame["sepal length (cm)"] = frame["sepal length (cm)"].astype(str)
    with pytest.raises(ValueError, match="must be numeric") as error:
        validate_training_frame(frame)
    assert "colour" in str(error.value)
    assert "sepal length (cm)" in str(error.value)
    assert "petal width" not in str(error.value)


def test_validation_rejects_missing_feature_values(iris):
    frame = iris.copy()
    frame.loc[0, "petal width (cm)"] = np.nan
    with pytest.raises(ValueError, match=r"missing values: petal width \(cm\)"):
        validate_training_frame(frame)


def test_validation_rejects_missing_labels(iris):
    frame = iris.astype({LABEL_COLUMN: float})
    frame.loc[3, LABEL_COLUMN] = np.nan
    with pytest.raises(ValueError, match="label column 'target' contains missing values"):
        validate_training_frame(frame)


def test_validation_rejects_a_single_class(iris):
    with pytest.raises(ValueError, match="at least two classes, found 1"):
        validate_training_frame(iris[iris[LABEL_COLUMN] == 2])


def test_validation_accepts_bool_and_int_features(iris):
    validate_training_frame(iris.assign(flag=True, count=1))
