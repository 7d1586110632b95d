"""How the demo writes to the terminal: numbered sections, indented lines, tables."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TextIO

from dbopt._console import Style, table

__all__ = ["Console"]


class Console:
    """Section headings, indented text and tables on ``stream``; colour only on a tty."""

    def __init__(self, stream: TextIO, *, colour: bool | None = None) -> None:
        self.stream = stream
        self.style = Style(stream, colour)
        self.started = time.monotonic()
        self._section = 0

    def write(self, text: str = "") -> None:
        """One or more lines as they are."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def heading(self, title: str) -> None:
        """``N. title`` in bold, numbered in order, with the elapsed time."""
        self._section += 1
        elapsed = time.monotonic() - self.started
        self.write()
        self.write(
            self.style(f"{self._section}. {title}", "bold")
            + self.style(f"  [{elapsed:.0f}s]", "dim")
        )

    def line(self, text: str, kind: str | None = None) -> None:
        """An indented line, coloured by ``kind`` (ok, warning, error, info, dim)."""
        for part in text.splitlines() or [""]:
            self.write("   " + (self.style(part, kind) if kind else part))

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """An indented text table."""
        self.line(table(headers, rows))
