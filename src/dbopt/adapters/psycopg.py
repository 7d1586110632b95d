"""psycopg 3 adapter (placeholder until implemented)."""

from __future__ import annotations

from typing import Any

from dbopt.core.pipeline import Pipeline
from dbopt.errors import InstrumentationError

__all__ = ["PsycopgAdapter"]


class PsycopgAdapter:
    """Instrument a psycopg 3 connection or pool in place."""

    name = "psycopg"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @classmethod
    def for_target(cls, target: Any, callsite_depth: int) -> PsycopgAdapter:
        raise InstrumentationError("psycopg instrumentation is not implemented yet")

    def attach(self) -> None:
        """Attach."""

    def detach(self) -> None:
        """Detach."""
