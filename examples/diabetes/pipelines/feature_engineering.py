"""Publish a train/test pair of diabetes datasets: `diabetes_train` and `diabetes_test`."""

import argparse
import json

from steps import split_diabetes
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
    args = parser.parse_args()
    print(json.dumps(publish(args.random_state, args.noise, args.approved)))
