"""Work the dashboard runs on demand, off the request thread: one advisor run at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Job"]

JobState = Literal["idle", "running", "done", "failed"]


class Job:
    """A background task run at most once at a time; the last result is kept.

    ``start(work)`` runs ``work()`` on a daemon thread unless one is running
    (then it returns False). The state, elapsed time, result and error are
    read by the page and the status endpoint.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: JobState = "idle"
        self.result: Any = None
        self.error: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self._lock = threading.Lock()

    @property
    def elapsed_s(self) -> float | None:
        """Seconds the current or last run took so far."""
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started

    def start(self, work: Callable[[], Any]) -> bool:
        """Run ``work`` in the background; False when a run is already going."""
        with self._lock:
            if self.state == "running":
                return False
            self.state = "running"
            self.error = None
            self.started = time.monotonic()
            self.finished = None
        thread = threading.Thread(target=self._run, args=(work,), name=f"dbopt-{self.name}")
        thread.daemon = True
        thread.start()
        return True

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - shown on the page, never raised into the app
            self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            self.finished = time.monotonic()
            self.state = "failed"
            return
        self.result = result
        self.finished = time.monotonic()
        self.state = "done"

    def describe(self) -> str:
        """``running (3.2 s)``, ``done in 4.1 s``, or the idle state."""
        elapsed = self.elapsed_s
        if self.state == "running" and elapsed is not None:
            return f"running ({elapsed:.1f} s)"
        if self.state in ("done", "failed") and elapsed is not None:
            return f"{self.state} in {elapsed:.1f} s"
        return "not run yet"

    def to_dict(self) -> dict[str, Any]:
        """The status endpoint's answer."""
        return {"state": self.state, "elapsed_s": self.elapsed_s, "error": self.error}
