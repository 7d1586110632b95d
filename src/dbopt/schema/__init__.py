"""Schema tools: ``diff(metadata, engine)`` (drift between models and the database) and
``erd(source, format=...)`` (Mermaid, Graphviz DOT or Markdown docs)."""

from __future__ import annotations

from dbopt.schema.drift import RULES, DriftReport, DriftRule, diff
from dbopt.schema.erd import erd, load
from dbopt.schema.model import SchemaDoc, from_database, from_metadata

__all__ = [
    "RULES",
    "DriftReport",
    "DriftRule",
    "SchemaDoc",
    "diff",
    "erd",
    "from_database",
    "from_metadata",
    "load",
]
