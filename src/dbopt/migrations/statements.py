"""Statements to check, with where they come from, split from SQL text with pglast.

Inline suppressions are comments: ``-- dbopt:ignore MIG001,MIG011`` (or rule
names) silences those rules for the next statement (the comment may also sit
inside it); a bare ``-- dbopt:ignore`` silences every rule for it;
``-- dbopt:ignore-file MIG011`` anywhere silences rules for the whole file.
Python revision files use ``# dbopt:ignore ...`` on the ``op.*`` line or the
line above it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from pglast.parser import ParseError

__all__ = ["Ignore", "Statement", "file_ignores", "line_of", "parse_ignores", "split_sql"]

_IGNORE = re.compile(
    r"(?:--|#|/\*)\s*dbopt:\s*ignore(?P<file>-file)?(?![\w-])[ \t]*(?P<codes>[\w\-, \t]*)",
    re.IGNORECASE,
)

#: ``None``: nothing ignored; an empty frozenset: everything; else the codes/names ignored.
Ignore = frozenset[str] | None


def parse_ignores(text: str, *, whole_file: bool = False) -> Ignore:
    """The rules ignored by ``dbopt:ignore`` comments in ``text`` (``-file`` ones when asked)."""
    found: set[str] = set()
    everything = False
    hit = False
    for m in _IGNORE.finditer(text):
        if bool(m.group("file")) != whole_file:
            continue
        hit = True
        codes = [c for c in re.split(r"[\s,]+", m.group("codes") or "") if c]
        if not codes:
            everything = True
        found.update(codes)
    if not hit:
        return None
    return frozenset() if everything else frozenset(found)


def file_ignores(text: str) -> Ignore:
    """Rules silenced for a whole file by ``dbopt:ignore-file`` comments."""
    return parse_ignores(text, whole_file=True)


@dataclass
class Statement:
    """One parsed statement (``node`` is None when it did not parse) and its location."""

    node: Any
    text: str
    path: str | None
    line: int
    column: int
    end_line: int
    ignore: Ignore = None
    error: str | None = None
    #: the rule a statement that could not be read reports (MIG000 when None)
    problem: str | None = None

    def ignores(self, code: str, name: str) -> bool:
        """True when an inline comment silences rule ``code``/``name`` here."""
        if self.ignore is None:
            return False
        return not self.ignore or code in self.ignore or name in self.ignore

    def location(self) -> dict[str, Any]:
        """Finding metadata naming where the statement is."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "statement": " ".join(self.text.split())[:300],
        }


def line_of(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


#: Control characters reported as MIG016: C0 controls but tab, newline and carriage
#: return; DEL; C1 controls; Unicode bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MAX_CONTROL_FINDINGS = 20


def _control_characters(
    text: str, path: str | None, line_offset: int
) -> tuple[str, list[tuple[int, Statement]]]:
    """``text`` with control characters blanked, and a MIG016 statement for each of them."""
    found: list[tuple[int, Statement]] = []
    hits = list(_CONTROL.finditer(text))
    for i, m in enumerate(hits[:_MAX_CONTROL_FINDINGS]):
        line, col = line_of(text, m.start())
        more = len(hits) - _MAX_CONTROL_FINDINGS
        tail = f" ({more} more after it)" if i == _MAX_CONTROL_FINDINGS - 1 and more > 0 else ""
        char = m.group(0)
        name = "NUL byte" if char == "\0" else "control character"
        found.append(
            (
                m.start(),
                Statement(
                    None,
                    repr(text[max(m.start() - 20, 0) : m.end() + 20]),
                    path,
                    line + line_offset,
                    col,
                    line + line_offset,
                    error=f"{name} U+{ord(char):04X} at line {line + line_offset}, "
                    f"column {col}, offset {m.start()}{tail}",
                    problem="MIG016",
                ),
            )
        )
    if hits:
        # blanked, not removed: offsets, lines and columns stay those of the file
        text = _CONTROL.sub(" ", text)
    return text, found


def split_sql(text: str, path: str | None = None, *, line_offset: int = 0) -> Iterator[Statement]:
    """The statements of ``text`` in order; one that does not parse has ``node=None``.

    A NUL byte or other control character is a MIG016 statement at its
    position (``problem="MIG016"``); the rest of the text is still split and
    checked. ``line_offset`` shifts line numbers (for SQL embedded in another file).
    """
    text, controls = _control_characters(text, path, line_offset)
    pending = iter(controls)
    nxt = next(pending, None)
    for stmt, start in _split(text, path, line_offset):
        while nxt is not None and nxt[0] < start:
            yield nxt[1]
            nxt = next(pending, None)
        yield stmt
    while nxt is not None:
        yield nxt[1]
        nxt = next(pending, None)


def _split(text: str, path: str | None, line_offset: int) -> Iterator[tuple[Statement, int]]:
    try:
        slices = pglast.split(text, with_parser=False, only_slices=True)
    except ParseError as exc:  # an unterminated string or comment: nothing can be split
        line, col = line_of(text, getattr(exc, "location", 0) or 0)
        yield (
            Statement(
                None, text, path, line + line_offset, col, line + line_offset, error=str(exc)
            ),
            0,
        )
        return
    prev_eol = 0
    for piece in slices:
        chunk = text[piece]
        # a comment after the statement on its last line belongs to it, not to the next one
        eol = text.find("\n", piece.stop)
        eol = len(text) if eol < 0 else eol
        own = text[max(piece.start, prev_eol) : piece.stop] + text[piece.stop : eol]
        prev_eol = eol
        ignore = parse_ignores(own)
        node, error, start = None, None, piece.start
        try:
            parsed = pglast.parse_sql(chunk)
        except ParseError as exc:
            error = str(exc)
        else:
            if not parsed:
                continue  # only comments
            node = parsed[0].stmt
            start = piece.start + (parsed[0].stmt_location or 0)
        line, col = line_of(text, start)
        end_line, _ = line_of(text, piece.stop)
        stmt = Statement(
            node,
            text[start : piece.stop],
            path,
            line + line_offset,
            col,
            end_line + line_offset,
            ignore=ignore,
            error=error,
        )
        yield stmt, piece.stop
