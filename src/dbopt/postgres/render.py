"""Identifier and literal quoting for the SQL dbopt prints as fixes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pglast.keywords import (
    COL_NAME_KEYWORDS,
    RESERVED_KEYWORDS,
    TYPE_FUNC_NAME_KEYWORDS,
)

__all__ = ["ident", "idents", "literal", "qualified", "snake_case"]

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
_KEYWORDS = (
    frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS) | frozenset(COL_NAME_KEYWORDS)
)


def ident(name: str) -> str:
    """``name`` as a SQL identifier: bare when that is unambiguous, double-quoted otherwise."""
    if _PLAIN.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str | None) -> str:
    """Dotted identifier of the non-empty ``parts``, each quoted as needed."""
    return ".".join(ident(p) for p in parts if p)


def literal(value: str) -> str:
    """``value`` as a SQL string literal (standard_conforming_strings)."""
    return "'" + value.replace("'", "''") + "'"


def idents(names: Iterable[str]) -> str:
    """Comma-separated quoted identifiers."""
    return ", ".join(ident(n) for n in names)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9_]+")


def snake_case(name: str) -> str:
    """A snake_case spelling of ``name`` (``"userId"`` → ``"user_id"``, ``"A B"`` → ``"a_b"``)."""
    text = _CAMEL.sub("_", name).lower()
    text = _NON_WORD.sub("_", text).strip("_")
    text = re.sub(r"_+", "_", text)
    if not text:
        return "unnamed"
    return text if not text[0].isdigit() else "_" + text
