"""Demo producer: publishes a new dataset every few seconds by running feature engineering.

It cycles through a fixed script of cases (good/poor data, with and without the
``approved`` tag) so that a watching autopilot sees every branch of its logic::

    python -m pipelines.producer [--interval 20] [--count N]

SIGINT/SIGTERM stop it cleanly: a run in progress finishes, a wait is abandoned, and
the process exits 0 without a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import cycle, islice
from types import FrameType

APPROVED_TAG = "approved"
POOR_LABEL_NOISE = 0.7


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
    args = parser.parse_args(argv)
    if args.interval < 0:
        parser.error("--interval must be >= 0")
    if args.count is not None and args.count < 1:
        parser.error("--count must be >= 1")
    return args


def install_stop_handlers(stop: threading.Event) -> None:
    """Turn SIGINT/SIGTERM into setting ``stop`` instead of raising mid-run."""

    def _handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


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
    stop = threading.Event()
    install_stop_handlers(stop)
    for index, case in enumerate(scripted_cases(args.count)):
        if index and stop.wait(args.interval):
            break
        if stop.is_set():
            break
        print(publish(case), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
