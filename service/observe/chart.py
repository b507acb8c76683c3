"""The candidates chart: metric per model version, the threshold line, production ringed.

Inline SVG written as text (no script, no asset), each point carrying its version, value and
outcome as data attributes and a `<title>` a browser shows on hover.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 680, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 76, 14, 30  # the threshold's label in the right margin
OUTCOME_COLOURS = {
    "promoted": "#1a7f37",
    "rejected": "#cf222e",
    "already_production": "#0969da",
    "awaiting_approval": "#9a6700",
}
OTHER_COLOUR = "#6e7781"


def number(value: float) -> str:
    """A metric value as people read it: 0.9667, 61.2, 1.2e-05."""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.2e}"


def candidates_chart(
    candidates: Sequence[Mapping[str, Any]], threshold: float, metric: str, goal: str
) -> str:
    """The SVG for these candidates (oldest first); an empty string when none has a value."""
    points = [
        (index, c, float(c["value"]))
        for index, c in enumerate(candidates)
        if isinstance(c.get("value"), int | float) and math.isfinite(c["value"])
    ]
    if not points:
        return ""
    low, high = _range([value for _, _, value in points] + [threshold])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(candidates), 1)

    def x(index: int) -> float:
        return LEFT + step * (index + 0.5)

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    better = "higher" if goal == "maximize" else "lower"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(metric)} of the last {len(candidates)} candidates '
        f'({better} is better), threshold {number(threshold)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{number(tick)}</text>'
        )
    ty = y(threshold)
    parts.append(
        f'<line class="threshold" data-threshold="{threshold}" x1="{LEFT}" '
        f'x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        f'<text class="threshold-label" x="{WIDTH - RIGHT + 6}" y="{ty - 2:.1f}">threshold</text>'
        f'<text class="threshold-label" x="{WIDTH - RIGHT + 6}" y="{ty + 11:.1f}">'
        f"{number(threshold)}</text>"
    )
    for index, candidate, value in points:
        parts.append(_point(x(index), y(value), candidate, value, metric))
    for index, candidate in enumerate(candidates):
        label = "?" if candidate.get("number") is None else f"#{candidate['number']}"
        parts.append(
            f'<text class="version" x="{x(index):.1f}" y="{HEIGHT - 10}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _point(cx: float, cy: float, candidate: Mapping[str, Any], value: float, metric: str) -> str:
    outcome = str(candidate.get("outcome") or "")
    colour = OUTCOME_COLOURS.get(outcome, OTHER_COLOUR)
    version = "" if candidate.get("number") is None else str(candidate["number"])
    title = f"#{version} {metric} {number(value)}: {outcome} ({candidate.get('reason')})"
    ring = ""
    if candidate.get("is_production"):
        ring = (
            f'<circle class="production-ring" data-version="{escape(version)}" cx="{cx:.1f}" '
            f'cy="{cy:.1f}" r="9" fill="none" stroke="{OUTCOME_COLOURS["already_production"]}" '
            f'stroke-width="2"/>'
        )
        title += ", in production"
    return (
        f'{ring}<circle class="point" data-version="{escape(version)}" '
        f'data-model-version-id="{escape(str(candidate.get("model_version_id")))}" '
        f'data-value="{value!r}" data-outcome="{escape(outcome)}" cx="{cx:.1f}" '
        f'cy="{cy:.1f}" r="5" fill="{colour}"><title>{escape(title)}</title></circle>'
    )


def _range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high) * 0.05, 0.05)
    return low - pad, high + pad


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """A few round values between low and high."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high]
