"""Publish a train/test pair of diabetes datasets, `diabetes_train` and `diabetes_test`, or
the holdout every model is scored on, `diabetes_holdout`."""

import argparse
import json

from steps import holdout_diabetes, split_diabetes
from zenml import pipeline
from zenml.client import Client


@pipeline(enable_cache=False)
def feature_engineering(random_state: int = 0, noise: float = 0.0, approved: bool = True) -> None:
    """Split the diabetes data; `noise` spoils the train labels; `approved` tags train.

    Args:
        random_state: Seed of the split and of the noise.
        noise: Gaussian noise on the train targets, in standard deviations of `target`.
        approved: Tag the `diabetes_train` version `approved`.
    """
    split_diabetes(random_state=random_state, noise=noise, approved=approved)


@pipeline(enable_cache=False)
def holdout(approved: bool = True) -> None:
    """Publish the holdout (the same rows each time: none of any train or test split).

    Args:
        approved: Tag the `diabetes_holdout` version `approved`.
    """
    holdout_diabetes(approved=approved)


def publish_holdout(approved: bool = True) -> dict[str, str]:
    """Run `holdout` in-process and return the ids of its run and of the holdout.

    Args:
        approved: Tag the `diabetes_holdout` version `approved`.

    Returns:
        `run_id` and `holdout_id`, as strings.

    Raises:
        RuntimeError: If the pipeline did not run (e.g. it was only scheduled).
    """
    run = holdout(approved=approved)
    if run is None:
        raise RuntimeError("holdout did not run")
    outputs = Client().get_pipeline_run(run.id).steps["holdout_diabetes"].outputs
    return {"run_id": str(run.id), "holdout_id": str(outputs["diabetes_holdout"][0].id)}


def publish(random_state: int = 0, noise: float = 0.0, approved: bool = True) -> dict[str, str]:
    """Run `feature_engineering` in-process and return the ids of its run and datasets.

    Args:
        random_state: Seed of the split and of the noise.
        noise: Gaussian noise on the train targets, in standard deviations of `target`.
        approved: Tag the `diabetes_train` version `approved`.

    Returns:
        `run_id`, `train_id` and `test_id` (the two artifact version ids), as strings.

    Raises:
        RuntimeError: If the pipeline did not run (e.g. it was only scheduled).
    """
    run = feature_engineering(random_state=random_state, noise=noise, approved=approved)
    if run is None:
        raise RuntimeError("feature_engineering did not run")
    outputs = Client().get_pipeline_run(run.id).steps["split_diabetes"].outputs
    return {
        "run_id": str(run.id),
        "train_id": str(outputs["diabetes_train"][0].id),
        "test_id": str(outputs["diabetes_test"][0].id),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--no-approve", dest="approved", action="store_false")
    parser.add_argument("--holdout", action="store_true", help="publish the holdout instead")
    args = parser.parse_args()
    if args.holdout:
        print(json.dumps(publish_holdout(args.approved)))
    else:
        print(json.dumps(publish(args.random_state, args.noise, args.approved)))
