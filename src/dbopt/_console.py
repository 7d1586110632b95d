"""Terminal output every layer may use: colour only on a tty, progress on stderr, text tables.

Base layer (standard library only), so the health report, the demo and the
CLI share one implementation without importing each other. Progress is drawn
on stderr and only when stderr is a terminal, so piped output and CI logs stay
clean.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TextIO

__all__ = ["Progress", "Style", "table"]

_COLOURS = {
    "error": "31",
    "critical": "31",
    "warning": "33",
    "warn": "33",
    "info": "36",
    "ok": "32",
    "bold": "1",
    "dim": "2",
}


class Style:
    """ANSI colour for a stream, on only when it is a terminal and ``NO_COLOR`` is unset."""

    def __init__(self, stream: TextIO, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = (
                _isatty(stream)
                and "NO_COLOR" not in os.environ
                and os.environ.get("TERM") != "dumb"
            )
        self.enabled = enabled

    def __call__(self, text: str, kind: str) -> str:
        code = _COLOURS.get(kind)
        if not self.enabled or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def severity(self, text: str) -> str:
        """``text`` coloured by the severity word it starts with."""
        word = text.split(" ", 1)[0].strip().lower()
        return self(text, word) if word in _COLOURS else text


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A left-aligned text table; numbers are right-aligned."""
    body = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [all(_is_number(row[i]) for row in body) and bool(body) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in body)
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Progress:
    """A progress line on stderr (only on a terminal): a bar with a total, else a spinner.

    Use as a context manager; ``update(done)`` moves the bar, ``label``
    changes the text. Thread-safe; costs nothing when stderr is not a tty.
    """

    _FRAMES = "|/-\\"

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.label = label
        self.total = total
        self.done = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._spin, name="dbopt-progress", daemon=True)
            self._thread.start()
        return self

    def update(self, done: int, label: str | None = None) -> None:
        """Set the amount done (and optionally the label), redraw."""
        with self._lock:
            self.done = done
            if label is not None:
                self.label = label
        self._draw()

    def _spin(self) -> None:
        while not self._stop.wait(0.2):
            self._draw()

    def _line(self) -> str:
        elapsed = time.monotonic() - self._started
        if self.total:
            share = min(1.0, self.done / self.total)
            filled = int(share * 30)
            bar = "#" * filled + "-" * (30 - filled)
            return f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} {elapsed:5.1f}s"
        frame = self._FRAMES[int(elapsed * 5) % len(self._FRAMES)]
        return f"{frame} {self.label} {elapsed:5.1f}s"

    def _draw(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            line = self._line()
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled:
            with self._lock:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
