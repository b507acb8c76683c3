"""Promote the run's own model version when it is good enough."""

from typing import Annotated

from zenml import get_step_context, step
from zenml.logger import get_logger

logger = get_logger(__name__)


@step
def promote_model(rmse: float, promote_below_rmse: float) -> Annotated[bool, "promoted"]:
    """Move this run's model version to `production` if its rmse is low enough.

    Args:
        rmse: The test rmse of the model trained in this run.
        promote_below_rmse: Promote only when `rmse` is below this.

    Returns:
        Whether the model version was promoted.
    """
    if rmse >= promote_below_rmse:
        logger.info("rmse %.2f is not below %.2f: not promoting.", rmse, promote_below_rmse)
        return False
    get_step_context().model.set_stage("production", force=True)
    logger.info("rmse %.2f is below %.2f: promoted to production.", rmse, promote_below_rmse)
    return True
