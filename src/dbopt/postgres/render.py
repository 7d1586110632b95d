"""The one module that turns names and values into SQL or Python text.

Everything dbopt prints for people or tools to run (advisor scripts and
Alembic revisions, lint fixes, partition DDL, migration advice, ERDs) renders
names and values here, so that generated text is data, never code:

* :func:`ident` / :func:`qualified` quote an identifier unless it is a plain
  lower-case ASCII name that is not a keyword (``force=True``: always). Any
  character PostgreSQL accepts (quotes, newline, CR, tab, unicode) survives
  a round trip through the server; NUL and the empty name are refused.
* :func:`literal` is a string literal for ``standard_conforming_strings = on``
  (NUL refused: PostgreSQL text cannot hold it).
* :func:`comment` is a SQL ``--`` comment and :func:`py_comment` a Python
  ``#`` comment; neither can ever contain a raw line break, because
  :func:`escape` writes every control or line-separator character as a
  backslash escape. :func:`py_literal` is ``repr()`` (one line, always);
  :func:`py_docstring` is text safe inside a ``\"\"\"`` docstring.
* :func:`sqlcommenter` is a ``/*key='value',...*/`` comment in the
  sqlcommenter format: keys and values URL-encoded, so no ``*/``, quote or
  line break of theirs can end the comment or the statement.
* :func:`sa_text` is SQL text for SQLAlchemy's ``text()`` (and Alembic's
  ``op.execute``), with colons escaped so a name like ``"a:b"`` is no bind
  parameter.
* :func:`index_name` builds an index name that stays at most 63 bytes and
  unique after truncation (a short stable hash of the full name).
* :func:`sql_ident` / :func:`sql_literal` are the ``psycopg.sql`` forms, for
  code that composes executable statements (the partition manager).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pglast.keywords import (
    COL_NAME_KEYWORDS,
    RESERVED_KEYWORDS,
    TYPE_FUNC_NAME_KEYWORDS,
)

from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from psycopg import sql

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "RenderError",
    "comment",
    "escape",
    "ident",
    "idents",
    "index_name",
    "is_plain",
    "label",
    "literal",
    "py_comment",
    "py_docstring",
    "py_literal",
    "qualified",
    "sa_text",
    "snake_case",
    "sql_ident",
    "sql_literal",
    "sqlcommenter",
    "truncate_bytes",
]

#: PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated by the server.
MAX_IDENTIFIER_BYTES = 63

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
_KEYWORDS = (
    frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS) | frozenset(COL_NAME_KEYWORDS)
)


class RenderError(ConfigurationError):
    """A name or value cannot be written as SQL (NUL byte, empty identifier)."""


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise RenderError(f"an identifier must be a string, not {type(name).__name__}")
    if not name:
        raise RenderError("an identifier cannot be empty")
    if "\x00" in name:
        raise RenderError(f"an identifier cannot contain NUL: {name!r}")


def is_plain(name: str) -> bool:
    """True if ``name`` reads the same bare and quoted (lower-case ASCII, not a keyword)."""
    return _PLAIN.fullmatch(name) is not None and name not in _KEYWORDS


def ident(name: str, *, force: bool = False) -> str:
    """``name`` as a SQL identifier: bare when unambiguous (never with ``force``), else quoted."""
    _check_name(name)
    if not force and is_plain(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str | None, force: bool = False) -> str:
    """Dotted identifier of the non-empty ``parts``, each quoted as needed."""
    return ".".join(ident(p, force=force) for p in parts if p)


def idents(names: Iterable[str], *, force: bool = False) -> str:
    """Comma-separated quoted identifiers."""
    return ", ".join(ident(n, force=force) for n in names)


def literal(value: str) -> str:
    """``value`` as a SQL string literal (standard_conforming_strings; NUL refused)."""
    if "\x00" in value:
        raise RenderError("a string literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    # Cc/Cf/Cs/Co/Cn (controls, format chars such as bidi overrides, surrogates)
    # and Zl/Zp (U+2028/U+2029, line breaks to some editors and tools).
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")


def escape(text: str) -> str:
    """``text`` on one line: backslashes doubled, control and line-break characters escaped."""
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and not _unsafe(ch):
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def label(*parts: str | None) -> str:
    """A one-line, human-readable name for display that keeps distinct names distinct.

    Each part is shown as is (escaped by :func:`escape`) unless it contains a
    dot or starts with a double quote; then it is shown double-quoted as in
    SQL, so ``("a.b", "c")`` and ``("a", "b.c")`` never look the same.
    """
    shown = []
    for part in parts:
        if not part:
            continue
        if "." in part or part.startswith('"'):
            shown.append(escape(ident(part, force=True)))
        else:
            shown.append(escape(part))
    return ".".join(shown)


def comment(text: str) -> str:
    """A SQL ``-- text`` comment line; no character of ``text`` can end it."""
    return "-- " + escape(text)


def sqlcommenter(tags: Mapping[str, str]) -> str:
    """``tags`` as a sqlcommenter comment (``/*a='1',b='x%2Fy'*/``), or ``""`` when empty.

    Per the sqlcommenter specification: each key and value is URL-encoded
    (every byte but ``A-Za-z0-9_.-~``), a ``'`` left in a value escaped with
    a backslash (none is: it is encoded), values single-quoted, pairs sorted
    by key and joined with ``,``. Only its own delimiters can end it: it
    holds no ``*/``, no quote outside the value quotes, no line break. It
    does hold ``%XX`` escapes: a driver with a ``format``/``pyformat``
    paramstyle needs them doubled (:mod:`dbopt.tags` does it).
    """
    if not tags:
        return ""
    pairs = sorted(
        (quote(str(key), safe=""), quote(str(value), safe="").replace("'", "\\'"))
        for key, value in tags.items()
    )
    return "/*" + ",".join(f"{key}='{value}'" for key, value in pairs) + "*/"


def py_comment(text: str) -> str:
    """A Python ``# text`` comment line; no character of ``text`` can end it."""
    return "# " + escape(text)


def py_literal(value: object) -> str:
    """``value`` as a Python literal (``repr``; strings are always one line)."""
    text = repr(value)
    if "\n" in text or "\r" in text:  # pragma: no cover - repr of str/int/list never has them
        raise RenderError(f"no one-line Python literal for {type(value).__name__}")
    return text


def py_docstring(text: str) -> str:
    """``text`` for the inside of a ``\"\"\"`` docstring (escaped, quotes backslashed)."""
    return escape(text).replace('"', '\\"')


def sa_text(sql_text: str) -> str:
    """SQL text for SQLAlchemy ``text()``/Alembic ``op.execute``: every ``:`` escaped."""
    return sql_text.replace(":", "\\:")


def truncate_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding is at most ``limit`` bytes."""
    return text.encode()[:limit].decode(errors="ignore")


_NAME_UNSAFE = re.compile(r"[^\w]+")


def _name_part(text: str) -> str:
    return _NAME_UNSAFE.sub("_", text).strip("_")


def index_name(
    table: str,
    columns: Sequence[str],
    suffix: str = "idx",
    *,
    key: str = "",
    taken: Collection[str] = (),
) -> str:
    """A deterministic index name ``<table>_<columns>_<suffix>`` of at most 63 bytes.

    Characters other than letters, digits and ``_`` become ``_``. When that
    changes anything, when the name is too long, or when it is in ``taken``,
    a short hash of the exact inputs (and ``key``, e.g. the index definition)
    is added before the suffix, and the rest is cut on a UTF-8 character
    boundary: distinct tables or columns never share a name because they
    differ only after the cut or only in a replaced character.
    """
    raw = "_".join([table, *columns])
    base = "_".join(p for p in (_name_part(table), *(_name_part(c) for c in columns)) if p)
    base = base or "index"
    name = f"{base}_{suffix}"
    if base == raw and len(name.encode()) <= MAX_IDENTIFIER_BYTES and name not in taken:
        return name
    material = "\x00".join([table, *columns, suffix, key])
    digest = hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()[:8]
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode()) - len(digest) - 2
    head = truncate_bytes(base, room).rstrip("_") or "index"
    return f"{head}_{digest}_{suffix}"


def sql_ident(*parts: str) -> sql.Identifier:
    """``psycopg.sql.Identifier`` of the dotted ``parts`` (NUL and empty parts refused)."""
    from psycopg import sql

    for part in parts:
        _check_name(part)
    return sql.Identifier(*parts)


def sql_literal(value: Any) -> sql.Literal:
    """``psycopg.sql.Literal`` of ``value`` (strings with NUL refused)."""
    from psycopg import sql

    if isinstance(value, str) and "\x00" in value:
        raise RenderError("a string literal cannot contain NUL")
    return sql.Literal(value)


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
