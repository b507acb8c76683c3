"""A helper module that reads a file when imported, and fails where the file is missing."""

from __future__ import annotations

from pathlib import Path


def load_labels() -> list[str]:
    return Path("labels.txt").read_text().split()  # the line the start-up check points at


LABELS = load_labels()
