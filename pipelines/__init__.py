"""Pipelines that ZenML Autopilot launches, plus the names they share with the service.

The service only needs these names to find datasets, models and predictions in the
store, so importing this package is kept cheap: it must not import zenml (importing
zenml takes about a second and reconfigures logging).
"""

TRAINING_DATASET = "iris_training_dataset"
TESTING_DATASET = "iris_testing_dataset"
INFERENCE_DATASET = "iris_inference_dataset"
SCORING_DATASET = "iris_scoring_dataset"  # new data to score (the demo's producer saves it)
TRAINED_MODEL = "trained_model"
PREDICTIONS = "predictions"
DEFAULT_MODEL_NAME = "iris_classifier"

__all__ = [
    "DEFAULT_MODEL_NAME",
    "INFERENCE_DATASET",
    "PREDICTIONS",
    "SCORING_DATASET",
    "TESTING_DATASET",
    "TRAINED_MODEL",
    "TRAINING_DATASET",
]
