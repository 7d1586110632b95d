"""Inline SVG charts for the HTML report, drawn in Python (no script, no network).

Each function returns an ``<svg>`` element as text, sized by its
``viewBox`` so it scales with the page. Every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

__all__ = ["before_after_bars", "hbar_chart", "line_chart", "timeline"]

_WIDTH = 760
_BLUE = "#3b6fd4"
_GREEN = "#2f9e5b"
_RED = "#c8553d"
_GREY = "#9aa3ad"
_AMBER = "#d99a1e"


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def hbar_chart(items: Sequence[tuple[str, float]], *, unit: str, label: str) -> str:
    """Horizontal bars, one per ``(label, value)``, longest first as given."""
    if not items:
        return ""
    row, left, right = 26, 300, 90
    top = max((v for _, v in items), default=0.0) or 1.0
    span = _WIDTH - left - right
    body = []
    for i, (name, value) in enumerate(items):
        y = 8 + i * row
        w = max(1.0, span * value / top)
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="lbl">'
            f"{escape(_clip(name, 40))}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{_BLUE}"><title>{escape(name)}: {_fmt(value)} {escape(unit)}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="val">'
            f"{_fmt(value)} {escape(unit)}</text>"
        )
    return _svg(16 + row * len(items), body, label)


def before_after_bars(items: Sequence[tuple[str, float, float]], *, unit: str, label: str) -> str:
    """Paired bars per ``(label, before, after)``: before in red, after in green."""
    if not items:
        return ""
    row, left, right = 48, 300, 150
    top = max((max(b, a) for _, b, a in items), default=0.0) or 1.0
    span = _WIDTH - left - right
    body = [
        f'<rect x="{left}" y="4" width="12" height="10" fill="{_RED}"/>'
        f'<text x="{left + 16}" y="13" class="val">before</text>'
        f'<rect x="{left + 80}" y="4" width="12" height="10" fill="{_GREEN}"/>'
        f'<text x="{left + 96}" y="13" class="val">after</text>'
    ]
    for i, (name, before, after) in enumerate(items):
        y = 22 + i * row
        wb = max(1.0, span * before / top)
        wa = max(1.0, span * after / top)
        ratio = f" ({before / after:.1f}x)" if after > 0 else ""
        body.append(
            f'<text x="{left - 8}" y="{y + 22}" text-anchor="end" class="lbl">'
            f"{escape(_clip(name, 40))}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{wb:.1f}" height="16" rx="2" fill="{_RED}">'
            f"<title>before: {_fmt(before)} {escape(unit)}</title></rect>"
            f'<text x="{left + wb + 6:.1f}" y="{y + 15}" class="val">'
            f"{_fmt(before)} {escape(unit)}</text>"
            f'<rect x="{left}" y="{y + 21}" width="{wa:.1f}" height="16" rx="2" fill="{_GREEN}">'
            f"<title>after: {_fmt(after)} {escape(unit)}</title></rect>"
            f'<text x="{left + wa + 6:.1f}" y="{y + 34}" class="val">'
            f"{_fmt(after)} {escape(unit)}{escape(ratio)}</text>"
        )
    return _svg(30 + row * len(items), body, label)


_STATUS_COLOUR = {
    "existing": _BLUE,
    "create": _GREEN,
    "created": _GREEN,
    "detach": _AMBER,
    "detached": _AMBER,
    "drop": _RED,
}


def timeline(
    items: Sequence[tuple[str, datetime, datetime, str, int | None]],
    *,
    now: datetime | None,
    label: str,
) -> str:
    """Partitions on a time axis: ``(name, start, end, status, rows)``; ``now`` as a line.

    ``status`` colours a partition (existing, create(d), detach(ed), drop);
    the darker band inside shows its rows relative to the fullest partition.
    """
    if not items:
        return ""
    left, right, y0, h = 20, 20, 20, 44
    lo = min(s for _, s, _, _, _ in items)
    hi = max(e for _, _, e, _, _ in items)
    if now is not None:
        lo, hi = min(lo, now), max(hi, now)
    total = (hi - lo).total_seconds() or 1.0
    span = _WIDTH - left - right
    most = max((r or 0 for *_, r in items), default=0) or 1

    def x(t: datetime) -> float:
        return left + span * (t - lo).total_seconds() / total

    body = []
    for name, start, end, status, rows in items:
        x1, x2 = x(start), x(end)
        colour = _STATUS_COLOUR.get(status, _GREY)
        fill = min(1.0, (rows or 0) / most)
        tip = f"{name}: {start:%Y-%m-%d} .. {end:%Y-%m-%d}, {status}"
        if rows is not None:
            tip += f", ~{rows:,} rows"
        body.append(
            f'<rect x="{x1 + 1:.1f}" y="{y0}" width="{max(1.0, x2 - x1 - 2):.1f}" height="{h}" '
            f'rx="3" fill="{colour}" fill-opacity="0.35" stroke="{colour}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<rect x="{x1 + 1:.1f}" y="{y0 + h * (1 - fill):.1f}" '
            f'width="{max(1.0, x2 - x1 - 2):.1f}" height="{h * fill:.1f}" fill="{colour}"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{y0 + h + 16}" text-anchor="middle" '
            f'class="tick">{start:%b %y}</text>'
        )
    if now is not None:
        xn = x(now)
        body.append(
            f'<line x1="{xn:.1f}" x2="{xn:.1f}" y1="6" y2="{y0 + h + 4}" stroke="#222" '
            f'stroke-dasharray="4 3"/><text x="{xn + 4:.1f}" y="14" class="val">now</text>'
        )
    legend = [("existing", _BLUE), ("created", _GREEN), ("detached", _AMBER), ("dropped", _RED)]
    for i, (word, colour) in enumerate(legend):
        lx = left + i * 110
        body.append(
            f'<rect x="{lx}" y="{y0 + h + 28}" width="12" height="10" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{y0 + h + 37}" class="val">{word}</text>'
        )
    return _svg(y0 + h + 46, body, label)


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    ceiling: float,
    limit: float | None,
    unit: str,
    label: str,
) -> str:
    """A step line of ``(seconds, value)`` under ``ceiling``; ``limit`` as a dashed line."""
    if not points:
        return ""
    left, right, top, h = 50, 20, 12, 160
    t_max = max(t for t, _ in points) or 1.0
    span = _WIDTH - left - right
    ceiling = max(ceiling, 1e-9, *(v for _, v in points))

    def y(v: float) -> float:
        return top + h * (1 - v / ceiling)

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{left + span * t / t_max:.1f},{y(v):.1f}"
        for i, (t, v) in enumerate(points)
    )
    body = [
        f'<line x1="{left}" x2="{left + span}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<line x1="{left}" x2="{left + span}" y1="{y(ceiling):.1f}" y2="{y(ceiling):.1f}" '
        f'stroke="#999" stroke-dasharray="2 3"/>',
        f'<text x="{left - 6}" y="{y(ceiling) + 4:.1f}" text-anchor="end" class="tick">'
        f"{_fmt(ceiling)}</text>",
        f'<text x="{left - 6}" y="{y(0) + 4:.1f}" text-anchor="end" class="tick">0</text>',
        f'<path d="{path}" fill="none" stroke="{_BLUE}" stroke-width="2"/>',
        f'<text x="{left + span}" y="{y(0) + 16:.1f}" text-anchor="end" class="tick">'
        f"{t_max:.1f} s</text>",
        f'<text x="{left}" y="{y(0) + 16:.1f}" class="tick">0 s ({escape(unit)})</text>',
    ]
    if limit is not None and 0 < limit <= ceiling:
        body.append(
            f'<line x1="{left}" x2="{left + span}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
            f'stroke="{_RED}" stroke-dasharray="5 4"/>'
            f'<text x="{left + span}" y="{y(limit) - 4:.1f}" text-anchor="end" class="val">'
            f"target {_fmt(limit)}</text>"
        )
    return _svg(top + h + 24, body, label)
