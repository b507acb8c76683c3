"""Train a diabetes regressor, score it, and optionally promote it."""

from uuid import UUID

from steps import evaluate_model, promote_model, train_model
from zenml import pipeline
from zenml.client import Client


@pipeline
def training(
    train_dataset_id: str,
    test_dataset_id: str,
    alpha: float = 0.0001,
    promote_below_rmse: float | None = None,
) -> None:
    """Train on one dataset version and evaluate on another, both given by id.

    The model (name, version, ...) comes from the run configuration, e.g.
    `configs/training.yaml`; the trained `diabetes_model` and its `rmse` land in it.

    Args:
        train_dataset_id: Id of a `diabetes_train` artifact version.
        test_dataset_id: Id of a `diabetes_test` artifact version.
        alpha: Strength of the L2 regularization.
        promote_below_rmse: If set, promote this run's model version to `production`
            when its test rmse is below this value.
    """
    client = Client()
    train_set = client.get_artifact_version(UUID(train_dataset_id))
    test_set = client.get_artifact_version(UUID(test_dataset_id))
    model = train_model(dataset=train_set, alpha=alpha)
    rmse = evaluate_model(model=model, dataset=test_set)
    if promote_below_rmse is not None:
        promote_model(rmse=rmse, promote_below_rmse=promote_below_rmse)
