"""The lint rules, one module per theme; importing this package registers them all."""

from __future__ import annotations

from dbopt.lint.rules import constraints, conventions, indexes, keys, types, usage

__all__ = ["constraints", "conventions", "indexes", "keys", "types", "usage"]
