"""Structured logging: one structlog event per thing that happened, JSON or console."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from service.redact import redact_all


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Registered secrets, and credentials in any URL (`service.redact`), out of every field,
    also inside the dicts and lists of one (a run's filled `parameters`)."""
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            event[key] = redact_all(value)
    return event


def configure(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog. Call after importing zenml, which rewires the root logger."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    processors: Iterable[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=list(processors),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("autopilot")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _ZenMLToStructlog(logging.Handler):
    """Re-emit a stdlib log record (ZenML's, or a Python warning) as a `zenml.log` event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = _ANSI.sub("", record.getMessage())
            get_logger().log(record.levelno, "zenml.log", logger=record.name, message=message)
        except Exception:  # a log line must never take the daemon down
            self.handleError(record)


def capture_zenml_logs(level: int = logging.WARNING) -> None:
    """Replace ZenML's coloured console handler on the root logger with one that writes
    structured events, so the daemon's stdout stays one JSON event per line; and log what was
    held back before (`stdout_held`)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ in ("ZenMLConsoleHandler", "_ZenMLToStructlog"):
            root.removeHandler(handler)
    root.addHandler(_ZenMLToStructlog(level))
    # ZenML's REST client retries each call itself; one `store.unavailable` event says it all.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    for line in take_held_lines():
        get_logger().warning("zenml.log", logger="stdout", message=line)


_held_lines: list[str] = []


@contextmanager
def stdout_held() -> Iterator[None]:
    """Hold back whatever is written to stdout in the block: ZenML's console handler (warnings
    of `import zenml`, of a user's pipeline module), a `print`, a child process started in the
    block (it inherits the file descriptor). Before the log is configured nothing may reach a
    stdout that must be one JSON event per line; `capture_zenml_logs` logs each held line as a
    `zenml.log` event, and a command that prints a document instead shows them on stderr
    (`take_held_lines`). A child must have ended by the end of the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            held.seek(0)
            text = _ANSI.sub("", held.read().decode(errors="replace"))
            _held_lines.extend(line.rstrip() for line in text.splitlines() if line.strip())


def take_held_lines() -> list[str]:
    """The lines `stdout_held` kept (ANSI colours removed), each given out once."""
    lines = list(_held_lines)
    _held_lines.clear()
    return lines
