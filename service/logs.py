"""Structured logging: one structlog event per thing that happened, JSON or console."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from service.redact import redact_text

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let this value reach a log line, wherever it appears."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    """`text` without registered secrets or credentials in any URL (`service.redact`): what
    every log line gets, and every text the status page shows."""
    redacted = redact_text(text)
    for secret in _secrets:
        if secret in redacted:
            redacted = redacted.replace(secret, "<redacted>")
    return redacted


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Registered secrets, and credentials in any URL, out of every field."""
    for key, value in event.items():
        if not isinstance(value, str):
            continue
        redacted = scrub(value)
        if redacted != value:
            event[key] = redacted
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
    structured events, so the daemon's stdout stays one JSON event per line."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ in ("ZenMLConsoleHandler", "_ZenMLToStructlog"):
            root.removeHandler(handler)
    root.addHandler(_ZenMLToStructlog(level))
    # ZenML's REST client retries each call itself; one `store.unavailable` event says it all.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
