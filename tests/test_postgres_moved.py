"""Names that used to live in ``dbopt.postgres`` resolve to their feature package, warning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import dbopt.postgres

#: What ``dbopt.postgres`` exported before the features moved out, by new home.
OLD_NAMES = {
    "dbopt.advisor": [
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
    ],
    "dbopt.partitions": [
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
    ],
    "dbopt.health": ["HealthReport", "HealthStatus", "HealthThresholds"],
    "dbopt.lint": ["LintConfig", "LintReport"],
}


@pytest.mark.parametrize(
    ("home", "name"), [(home, name) for home, names in OLD_NAMES.items() for name in names]
)
def test_an_old_name_resolves_to_its_new_home_with_a_warning(home: str, name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"dbopt.postgres.{name} moved to {home};"):
        value = getattr(dbopt.postgres, name)
    assert value is getattr(importlib.import_module(home), name)


@pytest.mark.parametrize("package", ["advisor", "partitions", "health", "lint"])
def test_an_old_subpackage_name_is_the_feature_package(package: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"moved to dbopt.{package};"):
        value = getattr(dbopt.postgres, package)
    assert value is importlib.import_module(f"dbopt.{package}")


@pytest.mark.parametrize("name", ["NoSuchThing", "RULES", "_private"])
def test_unknown_and_ambiguous_names_raise_attribute_error(name: str) -> None:
    # RULES is both lint's and health's: no guess is made
    with pytest.raises(AttributeError, match=f"no attribute {name!r}"):
        getattr(dbopt.postgres, name)


def test_probes_and_the_layers_own_modules_import_no_feature_package() -> None:
    code = (
        "import sys, dbopt.postgres\n"
        "assert not hasattr(dbopt.postgres, '__wrapped__')\n"
        "from dbopt.postgres import catalog, connect, render\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "[['dbopt', p] for p in ('advisor', 'partitions', 'health', 'lint')]))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
