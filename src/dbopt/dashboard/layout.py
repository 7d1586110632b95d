"""The page shell and the small HTML helpers every dashboard page uses (all text escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["PAGES", "bar", "e", "fmt_bytes", "fmt_ms", "page", "table", "tiles"]

#: (path, title) of each page, in the navigation's order.
PAGES: tuple[tuple[str, str], ...] = (
    ("/requests", "Requests"),
    ("/queries", "Queries"),
    ("/indexes", "Indexes"),
    ("/health", "Schema & health"),
    ("/partitions", "Partitions"),
    ("/pool", "Pool"),
)


def e(value: object) -> str:
    """Escaped text of ``value`` (None as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def fmt_ms(seconds: float | None) -> str:
    """Seconds as milliseconds text."""
    if seconds is None:
        return "-"
    ms = seconds * 1000.0
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2f}"


def fmt_bytes(n: float | None) -> str:
    """Bytes in a human unit."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def bar(share: float) -> str:
    """A horizontal bar for a share 0..1 (CSS classes, no inline style: the CSP forbids it)."""
    step = max(0, min(10, round(share * 10)))
    return f'<div class="bar" title="{share:.0%}"><span class="w{step}"></span></div>'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    row_classes: Sequence[str] = (),
    numeric: Iterable[int] = (),
    empty: str = "nothing recorded yet",
    attrs: str = "",
) -> str:
    """A sortable table; cells are HTML already escaped by the caller."""
    nums = set(numeric)
    body = [
        (f'<tr class="{e(row_classes[n])}">' if n < len(row_classes) and row_classes[n] else "<tr>")
        + "".join(
            f'<td class="num">{cell}</td>' if i in nums else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for n, row in enumerate(rows)
    ]
    if not body:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return (
        f'<table class="sortable"{attrs}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def tiles(items: Iterable[tuple[str, str]]) -> str:
    """Summary tiles of ``(value, label)`` (both plain text)."""
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><div class="v">{e(v)}</div><div class="k">{e(k)}</div></div>'
            for v, k in items
        )
        + "</div>"
    )


def page(base: str, current: str, title: str, body: str, *, csrf: str, brand: str) -> str:
    """A whole page: head (CSP-safe: external CSS and script only), navigation, body."""
    nav = "".join(
        f'<a href="{e(base + path)}"{" aria-current=page" if path == current else ""}>{e(name)}</a>'
        for path, name in PAGES
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="dbopt-csrf" content="{e(csrf)}">'
        f"<title>{e(title)} · {e(brand)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{e(base)}/static/app.css">'
        f'<script src="{e(base)}/static/app.js" defer></script></head><body>'
        f'<nav class="top"><span class="brand">{e(brand)}</span>{nav}</nav>'
        f"<main><h2>{e(title)}</h2>{body}</main></body></html>"
    )
