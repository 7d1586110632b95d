"""The shared PostgreSQL layer every feature stands on.

- :mod:`dbopt.postgres.connect`: the one place dbopt opens a connection of its
  own, and the mapping of driver errors to :class:`~dbopt.DboptError` types;
- :mod:`dbopt.postgres.render`: the one module that turns names and values
  into SQL (and Python) text;
- :mod:`dbopt.postgres.catalog`: one read-only snapshot of the catalog
  (relations, columns, constraints, indexes, sequences, statistics) that
  lint, the advisor's index findings, health and the ERD share;
- :mod:`dbopt.postgres.explain`: EXPLAIN for the slow-query log.

The features (:mod:`dbopt.advisor`, :mod:`dbopt.partitions`, :mod:`dbopt.lint`,
:mod:`dbopt.health`, :mod:`dbopt.migrations`, :mod:`dbopt.schema`) import from
here, never the other way round. Names that used to live here (``IndexAdvisor``,
``PartitionManager``, ``lint``, ...) still resolve, with a
:class:`DeprecationWarning` naming their new home.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from typing import Any

from dbopt.postgres.explain import Explainer

__all__ = ["Explainer"]

#: The feature packages that took over names of ``dbopt.postgres``: each package
#: itself and every name in its ``__all__`` still resolve here, with a warning.
_MOVED_TO = ("advisor", "partitions", "health", "lint")


def _new_home(name: str) -> str | None:
    """The feature package that now owns ``dbopt.postgres.<name>`` (None: none, or several)."""
    if name in _MOVED_TO:
        return f"dbopt.{name}"
    # Neither probes such as __wrapped__ nor ``from dbopt.postgres import render`` (which
    # asks this hook before importing the module) may import the feature packages.
    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return None
    homes = [
        f"dbopt.{package}"
        for package in _MOVED_TO
        if name in importlib.import_module(f"dbopt.{package}").__all__
    ]
    return homes[0] if len(homes) == 1 else None


def __getattr__(name: str) -> Any:
    home = _new_home(name)
    if home is None:
        raise AttributeError(f"module 'dbopt.postgres' has no attribute {name!r}")
    warnings.warn(
        f"dbopt.postgres.{name} moved to {home}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    module = importlib.import_module(home)
    return module if home.rsplit(".", 1)[1] == name else getattr(module, name)
