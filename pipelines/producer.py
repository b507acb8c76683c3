"""Demo producer: publishes a new dataset every few seconds by running feature engineering,
and now and then a batch of new data to score.

It cycles through a fixed script of cases so that a watching autopilot (default rule:
``accuracy`` >= 0.9 and strictly above production's) sees production move several times
and every other branch of its logic once::

    python -m pipelines.producer [--interval 20] [--count N] [--start-delay 0]

What a person sees on a fresh store (``make clean && make run``), with the accuracies
measured below. First cycle, one dataset per ``--interval``:

1. ``approved-noise-13``: promoted, 0.921 becomes production (there was none).
2. ``unapproved-clean``: skipped, ``missing_tags``.
3. ``approved-noise-10``: promoted, 0.947 > 0.921.
4. ``scoring-batch-a``: 30 new unlabelled rows saved as ``iris_scoring_dataset``; an
   autopilot that scores it (``SCORING_DATASET_NAMES``, as ``make run``'s does) runs
   inference on it at once, pinned to the production version.
5. ``approved-poor``: trained and rejected, ``below_threshold`` (0.079).
6. ``approved-noise-6``: promoted, 0.974 > 0.947.
7. ``approved-other-split``: trained and rejected, ``not_better_than_production``
   (0.921 clears the threshold but is a different test split and not above 0.974).
8. ``approved-clean``: promoted, 1.0 > 0.974.
9. ``scoring-batch-b``: another batch, scored by that last production version.

Production moves four times, inference runs after each move (on the newest scoring batch,
for an autopilot that scores them; before the first batch, it has nothing to score), and
after each scoring batch. Later cycles repeat the cases with every ``random_state``
shifted by ``CYCLE_SEED_STRIDE`` per cycle, so each publishes data it never published
before; nothing can beat 1.0, so from then on every approved dataset is rejected
(``below_threshold`` or ``not_better_than_production``), the unapproved one is skipped,
production stays where the first cycle left it, and it scores each new batch.
The same holds when ``make run`` is restarted on a store that has been through this
once; ``make clean`` replays the demo from the start.

SIGINT/SIGTERM stop it cleanly: a wait is abandoned, a run in progress is finished
first (it runs in a worker thread, out of reach of ZenML's step signal handler), and
the process exits 0 without a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from service.credentials import keep_credentials_off_disk

APPROVED_TAG = "approved"
# Without pyarrow this logger warns "stores data as a .csv file" three times per run,
# which would drown the one line per dataset this demo exists to print.
PANDAS_MATERIALIZER_LOGGER = "zenml.integrations.pandas.materializers.pandas_materializer"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# On this split accuracy rises step by step as label noise falls (table below); on most
# splits it does not, so the promoting cases share it.
DEMO_RANDOM_STATE = 10
OTHER_RANDOM_STATE = 3
POOR_LABEL_NOISE = 0.7
CYCLE_SEED_STRIDE = 100
SCORING_RANDOM_STATE = 50  # the scoring batches' draws (any seed: they are not judged)
SCORING_ROWS = 30


@dataclass(frozen=True)
class Case:
    """One scripted dataset: how to build it and whether to approve it (a training dataset),
    or a batch of data to score (``scoring``)."""

    name: str
    random_state: int = 0
    label_noise: float = 0.0
    tags: tuple[str, ...] = field(default_factory=tuple)
    scoring: bool = False


APPROVED = (APPROVED_TAG,)
# Accuracy of the bundled training pipeline on each case of the first cycle, judged on the
# 38 clean rows of the run's own iris_testing_dataset (steps of 1/38 = 0.026):
#
#   case                  random_state  label_noise  accuracy        verdict (0.9, > production)
#   approved-noise-13     10            0.13         0.9211 (35/38)  promoted (first)
#   unapproved-clean      1             0.0          0.9737 (37/38)  skipped (never trained)
#   approved-noise-10     10            0.10         0.9474 (36/38)  promoted
#   approved-poor         10            0.7          0.0789 (3/38)   below_threshold
#   approved-noise-6      10            0.06         0.9737 (37/38)  promoted
#   approved-other-split  3             0.0          0.9211 (35/38)  not_better_than_production
#   approved-clean        10            0.0          1.0000 (38/38)  promoted
#
# Neighbouring noise levels score the same on split 10 (0.12-0.14: 35/38, 0.09-0.10: 36,
# 0.05-0.08: 37, 0.00-0.04: 38), so no step hangs on a single noisy row. Measured with
# ZENML_CONFIG_PATH=$(mktemp -d) ZENML_REPOSITORY_PATH=$(mktemp -d) ZENML_ANALYTICS_OPT_IN=false \
# ZENML_LOGGING_VERBOSITY=WARN .venv/bin/python -c '
# from zenml.client import Client
# from pipelines.feature_engineering import launch_feature_engineering
# from pipelines.producer import SCRIPT, use_project_source_root
# from pipelines.training import launch_training
# use_project_source_root()
# for case in [case for case in SCRIPT if not case.scoring]:
#     data = launch_feature_engineering(
#         random_state=case.random_state, label_noise=case.label_noise)
#     run = Client().get_pipeline_run(launch_training(str(data.training_id), "iris_classifier", []))
#     version = Client().get_model_version("iris_classifier", run.model_version.number)
#     print(case.name, version.run_metadata["accuracy"])'
SCRIPT: tuple[Case, ...] = (
    Case("approved-noise-13", DEMO_RANDOM_STATE, label_noise=0.13, tags=APPROVED),
    Case("unapproved-clean", 1),
    Case("approved-noise-10", DEMO_RANDOM_STATE, label_noise=0.10, tags=APPROVED),
    Case("scoring-batch-a", SCORING_RANDOM_STATE, scoring=True),
    Case("approved-poor", DEMO_RANDOM_STATE, label_noise=POOR_LABEL_NOISE, tags=APPROVED),
    Case("approved-noise-6", DEMO_RANDOM_STATE, label_noise=0.06, tags=APPROVED),
    Case("approved-other-split", OTHER_RANDOM_STATE, tags=APPROVED),
    Case("approved-clean", DEMO_RANDOM_STATE, tags=APPROVED),
    Case("scoring-batch-b", SCORING_RANDOM_STATE + 1, scoring=True),
)


def scripted_cases(count: int | None) -> Iterator[Case]:
    """Yield the script's cases in order, forever or ``count`` times.

    Cycle ``n`` (from 0) shifts every ``random_state`` by ``n * CYCLE_SEED_STRIDE``, so a
    later cycle publishes new splits instead of copies of the first cycle's datasets.
    """
    cases = (
        replace(case, random_state=case.random_state + number * CYCLE_SEED_STRIDE)
        for number in itertools.count()
        for case in SCRIPT
    )
    return itertools.islice(cases, count)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (``--interval`` seconds, optional ``--count``)."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.producer",
        description="Publish a new iris dataset version every --interval seconds.",
    )
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between datasets")
    parser.add_argument("--count", type=int, default=None, help="stop after N datasets")
    parser.add_argument(
        "--start-delay", type=float, default=0.0, help="seconds to wait before the first one"
    )
    args = parser.parse_args(argv)
    if args.interval < 0 or args.start_delay < 0:
        parser.error("--interval and --start-delay must be >= 0")
    if args.count is not None and args.count < 1:
        parser.error("--count must be >= 1")
    return args


Handler = Callable[[int, FrameType | None], Any] | int | None


def install_stop_handlers(stop: threading.Event) -> dict[int, Handler]:
    """Turn SIGINT/SIGTERM into setting ``stop``; return the handlers they replace."""

    def _handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return {sig: signal.signal(sig, _handle) for sig in STOP_SIGNALS}


def restore_handlers(previous: dict[int, Handler]) -> None:
    """Put back the handlers ``install_stop_handlers`` replaced (matters when embedded)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def use_project_source_root() -> None:
    """Resolve step code against this project wherever the producer is started from.

    Without ``zenml init`` ZenML guesses the source root from the main module, which
    is wrong for ``python -m pipelines.producer``.
    """
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(Path(__file__).resolve().parents[1]))


def publish_in_worker(case: Case) -> str:
    """Publish from a worker thread so that a started run always finishes.

    While a step runs on the main thread, ZenML swaps in its own SIGINT/SIGTERM handler
    that aborts the step and logs a traceback. It only does so on the main thread, so
    running the pipeline in a worker leaves our handler in charge; the main thread just
    waits for the result (a run takes about a second).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="producer") as pool:
        return pool.submit(publish, case).result()


def publish(case: Case) -> str:
    """Run feature engineering for ``case`` and describe the training version it wrote, or
    save its batch of data to score."""
    if case.scoring:
        return publish_scoring(case)
    from pipelines.feature_engineering import launch_feature_engineering

    published = launch_feature_engineering(
        random_state=case.random_state,
        label_noise=case.label_noise,
        training_tags=list(case.tags),
    )
    return (
        f"{case.name}: iris_training_dataset version {published.training_version} "
        f"id {published.training_id} "
        f"(random_state {case.random_state}, label_noise {case.label_noise:g})"
    )


def publish_scoring(case: Case) -> str:
    """Save a batch of new unlabelled rows as a new version of ``iris_scoring_dataset``, as a
    team's daily data would arrive, with the case's tags (none in the script: the demo's
    autopilot scores every version)."""
    from zenml import save_artifact

    from pipelines import SCORING_DATASET
    from pipelines.datasets import scoring_frame

    frame = scoring_frame(SCORING_ROWS, case.random_state)
    saved = save_artifact(frame, name=SCORING_DATASET, tags=list(case.tags) or None)
    return (
        f"{case.name}: {SCORING_DATASET} version {saved.version} id {saved.id} "
        f"({len(frame)} rows, random_state {case.random_state})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Publish scripted datasets until ``--count`` is reached or a signal arrives."""
    args = parse_args(argv)
    keep_credentials_off_disk()  # its API key (in Compose) never reaches ZenML's config dir
    logging.getLogger(PANDAS_MATERIALIZER_LOGGER).setLevel(logging.ERROR)
    use_project_source_root()
    stop = threading.Event()
    previous = install_stop_handlers(stop)
    try:
        for index, case in enumerate(scripted_cases(args.count)):
            if stop.wait(args.interval if index else args.start_delay):
                break
            print(publish_in_worker(case), flush=True)
    finally:
        restore_handlers(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
