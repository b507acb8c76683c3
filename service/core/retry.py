"""Retry with exponential backoff for failed runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay_seconds: float
    max_delay_seconds: float = 600.0

    def delay_after(self, attempts: int) -> float | None:
        """Seconds to wait before the next attempt, or None when `attempts` used them all up.

        The delay doubles each time: base, 2*base, 4*base ... capped at max_delay_seconds.
        """
        if attempts >= self.max_attempts:
            return None
        return float(min(self.base_delay_seconds * 2 ** (attempts - 1), self.max_delay_seconds))
