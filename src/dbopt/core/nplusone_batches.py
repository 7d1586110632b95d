"""Batches that look like loops: pagination and chunked ``IN`` loads are not N+1s.

A loop over pages (``LIMIT 4 OFFSET 0``, ``OFFSET 4``, ... or keyset pages
``WHERE id > ? ORDER BY id LIMIT 4``) or over chunks of a key list
(``WHERE id IN (<100 keys>)`` per chunk) runs one statement shape from one
line with different values, as an N+1 does, but each statement reads a
batch: that is the fix, not the bug. Told apart from the statements and
their values alone (pytest-queryguard draws the same line, see
docs/nplusone.md "Against the peers"):

* **pages**: everything but the cursor (the ``OFFSET`` values, or the bound
  of a ``>``/``<`` comparison) has the same values in every statement, the
  ``LIMIT`` is more than one row, the cursor moves one way by at least a page
  from statement to statement (for a keyset bound, only the step after the
  last, short page may be smaller), and the walk starts again from its first
  cursor at most once. ``LIMIT 1 OFFSET n``, overlapping windows
  (``LIMIT 3 OFFSET i``) and ``WHERE fk = ? LIMIT 3`` per row stay N+1s.
* **chunks**: every statement binds at least :data:`MIN_CHUNK` values and
  has an ``IN`` list: a slice of a long key list, never one row's key.

Only groups whose text has ``LIMIT``/``OFFSET``/``FETCH`` keep their values
(at most :data:`MAX_PAGES` per group); other statements pay one ``is None``
test. Anything that cannot be read (an unknown placeholder style) counts as
not a batch, so the statements are reported as before.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "MAX_PAGES",
    "MIN_CHUNK",
    "Layout",
    "Page",
    "bound",
    "chunked",
    "layout_of",
    "page_of",
    "paginates",
    "walks",
]

#: Values bound per statement from which an ``IN`` statement is a chunk of keys.
MIN_CHUNK = 50
#: Statements of a paginating group whose values are kept for the decision.
MAX_PAGES = 256

_PAGING = re.compile(r"\b(?:LIMIT|OFFSET|FETCH)\b", re.IGNORECASE)
_IN_LIST = re.compile(r"\bIN\s*\(", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|\?|\$(\d+)|(?<![:\w]):(\w+)")
_LITERAL = re.compile(r"\b(LIMIT|OFFSET)\s+(\d+)\b", re.IGNORECASE)
_BEFORE_LIMIT = re.compile(r"\b(?:LIMIT|FIRST|NEXT)\s*\(?\s*$", re.IGNORECASE)
_BEFORE_OFFSET = re.compile(r"\bOFFSET\s*\(?\s*$", re.IGNORECASE)
_BEFORE_RANGE = re.compile(r"[<>]=?\s*\(?\s*$")

#: (a hash of the other values, limits, offsets, range bounds), each in text order.
Page = tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]


def paginates(sql: str) -> bool:
    """Whether a statement's text pages (``LIMIT``, ``OFFSET``, ``FETCH``)."""
    return _PAGING.search(sql) is not None


def chunked(sql: str, parameters: Any) -> int:
    """How many values an ``IN`` statement binds (0 when it has no ``IN`` list)."""
    return bound(parameters) if _IN_LIST.search(sql) is not None else 0


def bound(parameters: Any) -> int:
    """How many values a statement binds (0 when they cannot be counted)."""
    try:
        return len(parameters) if parameters is not None else 0
    except TypeError:
        return 0


#: Where a paging statement's values go: ``(role, key)`` per placeholder, in text order
#: (``key`` a parameter name, or an index), and whether LIMIT/OFFSET are also literals.
Layout = tuple[tuple[tuple[str, "str | int"], ...], bool]


def layout_of(sql: str) -> Layout:
    """The placeholders of a paging statement by role; one statement shape has one layout."""
    slots: list[tuple[str, str | int]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(sql):
        name, number, colon = match.group(1), match.group(2), match.group(3)
        key: str | int
        if name is not None or colon is not None:
            key = name if name is not None else colon
        else:
            key = int(number) - 1 if number is not None else position
            position += 1
        before = sql[max(0, match.start() - 24) : match.start()]
        if _BEFORE_LIMIT.search(before):
            role = "limit"
        elif _BEFORE_OFFSET.search(before):
            role = "offset"
        elif _BEFORE_RANGE.search(before):
            role = "bound"
        else:
            role = "plain"
        slots.append((role, key))
    return tuple(slots), _LITERAL.search(sql) is not None


def page_of(sql: str, parameters: Any, layout: Layout | None = None) -> Page | None:
    """The values of a paging statement by role; None when they cannot be read.

    ``layout`` is :func:`layout_of` of the statement's shape (computed when not given).
    """
    slots, literal = layout if layout is not None else layout_of(sql)
    found: dict[str, list[Any]] = {"plain": [], "limit": [], "offset": [], "bound": []}
    named = isinstance(parameters, dict)
    for role, key in slots:
        if isinstance(key, str) != named or parameters is None:
            return None
        try:
            value = parameters[key]
        except (IndexError, KeyError, TypeError):
            return None
        found[role].append(_hashable(value) if role == "plain" else value)
    if literal:
        for word, digits in _LITERAL.findall(sql):
            found["limit" if word.upper() == "LIMIT" else "offset"].append(int(digits))
    # the other values only need to be equal from page to page: kept as a hash
    return (
        (hash(tuple(found["plain"])),),
        tuple(found["limit"]),
        tuple(found["offset"]),
        tuple(found["bound"]),
    )


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _step(before: Any, after: Any) -> int:
    return int(after > before) - int(after < before)


def walks(pages: Sequence[Page | None]) -> bool:
    """Whether the statements of one group walk through one result, page by page."""
    if len(pages) < 2 or any(p is None for p in pages):
        return False
    runs = [p for p in pages if p is not None]
    first = runs[0]
    plain, limits, offsets, bounds = first
    if not offsets and not bounds:
        return False  # no cursor
    if not limits and not offsets:
        return False  # a range filter without LIMIT is a filter, not a page
    if any(r[0] != plain or repr(r[1]) != repr(limits) for r in runs):
        return False
    sizes = [v for v in limits if _is_int(v)]
    if any(size <= 1 for size in sizes):
        return False  # a page of one row is a loop
    page = min(sizes, default=None)
    try:
        return _walk(runs, first, page)
    except TypeError:  # cursors that do not compare
        return False


def _walk(runs: list[Page], first: Page, page: int | None) -> bool:
    def cursor(r: Page) -> tuple[Any, ...]:
        return r[2] + r[3]

    direction, length, restarts, ended = 0, 1, 0, False
    for before, after in itertools.pairwise(runs):
        step = _step(cursor(before), cursor(after))
        if step == 0:
            return False  # the same page again
        if length > 1 and step != direction:
            if cursor(after) != cursor(first) or restarts:
                return False  # not a fresh walk from the start, or a walk run in a loop
            restarts += 1
            direction, length, ended = 0, 1, False
            continue
        if ended:
            return False  # a short keyset step ends a walk
        if page is not None and before[2] != after[2]:
            moved = [
                abs(b - a)
                for a, b in zip(before[2], after[2], strict=True)
                if _is_int(a) and _is_int(b)
            ]
            if any(m < page for m in moved):
                return False  # overlapping windows
        if before[3] != after[3]:
            moved_bounds = [(a, b) for a, b in zip(before[3], after[3], strict=True) if a != b]
            if page is None or not all(_is_int(a) and _is_int(b) for a, b in moved_bounds):
                return False  # a string or date bound says nothing about pages
            ended = min(abs(b - a) for a, b in moved_bounds) < page
        direction, length = step, length + 1
    return length > 1
