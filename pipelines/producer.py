"""Demo producer: publishes a new dataset every few seconds by running feature engineering.

It cycles through a fixed script of cases (good/poor data, with and without the
``approved`` tag) so that a watching autopilot sees every branch of its logic::

    python -m pipelines.producer [--interval 20] [--count N] [--start-delay 0]

SIGINT/SIGTERM stop it cleanly: a wait is abandoned, a run in progress is finished
first (it runs in a worker thread, out of reach of ZenML's step signal handler), and
the process exits 0 without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path
from types import FrameType
from typing import Any

APPROVED_TAG = "approved"
# Without pyarrow this logger warns "stores data as a .csv file" three times per run,
# which would drown the one line per dataset this demo exists to print.
PANDAS_MATERIALIZER_LOGGER = "zenml.integrations.pandas.materializers.pandas_materializer"
POOR_LABEL_NOISE = 0.7
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Case:
    """One scripted dataset: how to build it and whether to approve it."""

    name: str
    random_state: int = 0
    label_noise: float = 0.0
    tags: tuple[str, ...] = field(default_factory=tuple)


SCRIPT: tuple[Case, ...] = (
    Case("approved-good", random_state=0, tags=(APPROVED_TAG,)),
    Case("unapproved-good", random_state=1),
    Case("approved-poor", random_state=2, label_noise=POOR_LABEL_NOISE, tags=(APPROVED_TAG,)),
    Case("approved-good-seed3", random_state=3, tags=(APPROVED_TAG,)),
)


def scripted_cases(count: int | None) -> Iterator[Case]:
    """Yield the script's cases in order, forever or ``count`` times."""
    return islice(cycle(SCRIPT), count)


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
    """Run feature engineering for ``case`` and describe the training version it wrote."""
    from pipelines.feature_engineering import launch_feature_engineering

    published = launch_feature_engineering(
        random_state=case.random_state,
        label_noise=case.label_noise,
        training_tags=list(case.tags),
    )
    return (
        f"{case.name}: iris_training_dataset version {published.training_version} "
        f"id {published.training_id}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Publish scripted datasets until ``--count`` is reached or a signal arrives."""
    args = parse_args(argv)
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
