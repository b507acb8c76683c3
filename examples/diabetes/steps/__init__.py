"""The steps of the diabetes example."""

from steps.data import holdout_diabetes, split_diabetes
from steps.evaluate import evaluate_model
from steps.predict import predict
from steps.promote import promote_model
from steps.score import score_model
from steps.train import train_model

__all__ = [
    "evaluate_model",
    "holdout_diabetes",
    "predict",
    "promote_model",
    "score_model",
    "split_diabetes",
    "train_model",
]
