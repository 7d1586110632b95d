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
import warnings
from typing import Any

from dbopt.postgres.explain import Explainer

__all__ = ["Explainer"]

#: Old ``dbopt.postgres.<name>`` -> the feature package that now owns it.
_MOVED = {
    **dict.fromkeys(
        [
            "AdvisorError",
            "AdvisorReport",
            "ExistingOptions",
            "IndexAdvisor",
            "Measurement",
            "PgStatStatements",
            "Recommendation",
            "StatementImpact",
            "StatementResult",
            "Workload",
            "WorkloadStatement",
            "advisor",
        ],
        "dbopt.advisor",
    ),
    **dict.fromkeys(
        [
            "ApplyResult",
            "CheckReport",
            "ConversionError",
            "ConversionResult",
            "DrainResult",
            "IndexResult",
            "LockTimeoutError",
            "PartitionLockedError",
            "PartitionManager",
            "PartitionSpec",
            "PartitionSpecError",
            "Plan",
            "partitions",
        ],
        "dbopt.partitions",
    ),
    **dict.fromkeys(["HealthReport", "HealthStatus", "HealthThresholds", "health"], "dbopt.health"),
    **dict.fromkeys(["LintConfig", "LintReport", "lint"], "dbopt.lint"),
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'dbopt.postgres' has no attribute {name!r}")
    warnings.warn(
        f"dbopt.postgres.{name} moved to {home}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    module = importlib.import_module(home)
    return module if home.rsplit(".", 1)[1] == name else getattr(module, name)
