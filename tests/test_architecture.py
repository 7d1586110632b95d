"""The import rules of docs/architecture.md, checked on the source with ``ast``.

Every module under ``src/dbopt`` is parsed; its imports, at module level and
inside functions (``if TYPE_CHECKING:`` imports are exempt: they never run),
must point down the layer order below or along an allowed sideways edge, and
no two modules may import each other through any chain. The first tests run
the checker on the real tree; the ``test_checker_*`` tests feed it small
synthetic trees that break each rule, so a checker that sees nothing fails.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers, lowest first. A module may import from its own unit, from any unit
#: of a lower layer, and sideways only along ``SIDEWAYS``. Units are the
#: top-level modules and packages of ``dbopt``; ``base`` groups the small
#: modules everything stands on.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("base",),
    ("core",),
    ("postgres",),
    ("adapters",),
    ("instrument",),
    # the package root binds only base names and instrument eagerly; the rest
    # resolve on first attribute access through importlib (not an import edge)
    ("dbopt",),
    ("eager", "pool", "integrations", "export", "tags"),
    ("schema", "lint", "health", "migrations", "advisor", "partitions", "replicas"),
    ("report",),
    ("dashboard",),
    ("cli", "demo", "testing", "__main__"),
)

#: Modules of the ``base`` unit (``dbopt.<name>``).
BASE = frozenset(
    {"errors", "typing", "findings", "handle", "suppress", "_json", "_console", "_compat", "_sarif"}
)

#: Allowed imports between units of the same layer, with the reason.
SIDEWAYS: dict[tuple[str, str], str] = {
    ("advisor", "lint"): "the advisor reports lint's index findings",
    ("health", "lint"): "the health report reuses lint's index findings",
    ("schema", "lint"): "the ERD and drift read lint's catalog snapshot",
    ("cli", "demo"): "`dbopt demo` is a CLI command",
    ("demo", "testing"): "the demo starts its server with the harness's embedded_postgres",
    ("demo", "cli"): "the demo checks its server as `dbopt` does (cli._db.connect_check)",
    ("__main__", "cli"): "`python -m dbopt` runs the CLI",
}

#: Sideways edges allowed ahead of the change that takes them (issue 11: index
#: findings defined once in lint, called by the advisor and the health report).
#: Exempt from the "every edge is used" check until then; the integrator drops
#: this set once they are taken.
PLANNED_SIDEWAYS: frozenset[tuple[str, str]] = frozenset()

#: Import cycles between modules that are known and accepted, with the reason.
#: Each entry is the set of modules of one strongly connected component.
CYCLE_EXCEPTIONS: dict[frozenset[str], str] = {}

#: Files (relative to src/) that still open their own psycopg connection. Another
#: change is moving them onto dbopt.postgres.connect; the integrator empties this.
CONNECT_OFFENDERS: frozenset[str] = frozenset()
CONNECT_HOME = "dbopt/postgres/connect.py"

#: Files that still quote identifiers by hand; the same change moves them onto
#: dbopt.postgres.render. The integrator empties this.
QUOTE_OFFENDERS: frozenset[str] = frozenset()
QUOTE_HOME = "dbopt/postgres/render.py"


@dataclass(frozen=True)
class Import:
    """One import statement's target module, as seen in ``module``."""

    module: str
    target: str
    line: int
    lazy: bool  # inside a function (runs on call, still an edge)


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of every node under an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            for child in node.body:
                out.update(id(n) for n in ast.walk(child))
    return out


def _function_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            out.update(id(n) for n in ast.walk(node) if n is not node)
    return out


def parse_tree(src: Path, package: str = "dbopt") -> tuple[dict[str, Path], list[Import]]:
    """Every module of ``package`` under ``src`` and the internal imports that can run."""
    files = {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}
    imports: list[Import] = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        exempt = _type_checking_nodes(tree)
        lazy = _function_nodes(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in exempt:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = base_parts[: len(base_parts) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in files else base)
            for target in targets:
                if target == package or target.startswith(package + "."):
                    imports.append(Import(name, target, node.lineno, id(node) in lazy))
    return files, imports


def unit_of(module: str, package: str = "dbopt") -> str:
    parts = module.split(".")
    if parts == [package]:
        return package
    top = parts[1]
    return "base" if top in BASE else top


def _rank() -> dict[str, int]:
    return {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def layer_violations(files: dict[str, Path], imports: list[Import]) -> list[str]:
    """Imports that point up or sideways without an entry in ``SIDEWAYS``."""
    rank = _rank()
    out: list[str] = []
    for unit in sorted({unit_of(m) for m in files} - set(rank)):
        out.append(f"{unit}: not in any layer of tests/test_architecture.py LAYERS")
    for imp in imports:
        src_unit, dst_unit = unit_of(imp.module), unit_of(imp.target)
        if src_unit == dst_unit or src_unit not in rank or dst_unit not in rank:
            continue
        if rank[dst_unit] < rank[src_unit] or (src_unit, dst_unit) in SIDEWAYS:
            continue
        where = "up" if rank[dst_unit] > rank[src_unit] else "sideways"
        kind = " (inside a function)" if imp.lazy else ""
        out.append(f"{imp.module}:{imp.line} imports {imp.target}{kind}: {where}")
    return out


def cycles(files: dict[str, Path], imports: list[Import]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (or a self-import)."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for imp in imports:
        if imp.target in graph:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative Tarjan: no recursion limit
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _is_psycopg_connect(node: ast.Call) -> bool:
    """``psycopg.connect(...)``, ``psycopg.Connection.connect(...)``, async alike."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "connect"):
        return False
    value = func.value
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id == "psycopg"


def _is_identifier_quoting(node: ast.Call) -> bool:
    """``text.replace('"', '""')``: doubling double quotes, i.e. quoting an identifier."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "replace" and len(node.args) == 2):
        return False
    first, second = node.args
    return (
        isinstance(first, ast.Constant)
        and first.value == '"'
        and isinstance(second, ast.Constant)
        and second.value == '""'
    )


def calls_outside(src: Path, predicate: str, home: str, package: str = "dbopt") -> set[str]:
    """Files (relative to ``src``) other than ``home`` with a call matching ``predicate``."""
    check = {"connect": _is_psycopg_connect, "quote": _is_identifier_quoting}[predicate]
    out: set[str] = set()
    for path in sorted((src / package).rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel == home:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.Call) and check(n) for n in ast.walk(tree)):
            out.add(rel)
    return out


# -- the real tree ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_tree() -> tuple[dict[str, Path], list[Import]]:
    return parse_tree(SRC)


def test_the_checker_sees_the_whole_package(
    real_tree: tuple[dict[str, Path], list[Import]],
) -> None:
    files, imports = real_tree
    assert {"dbopt", "dbopt.instrument", "dbopt.core.pipeline", "dbopt.cli"} <= set(files)
    assert len(imports) > 300
    assert any(imp.lazy for imp in imports)  # function-level imports are counted


def test_no_import_points_up_or_sideways(
    real_tree: tuple[dict[str, Path], list[Import]],
) -> None:
    assert layer_violations(*real_tree) == []


def test_every_allowed_sideways_edge_is_used(
    real_tree: tuple[dict[str, Path], list[Import]],
) -> None:
    _, imports = real_tree
    used = {(unit_of(i.module), unit_of(i.target)) for i in imports}
    unused = set(SIDEWAYS) - used - PLANNED_SIDEWAYS
    assert unused == set(), "remove sideways edges nothing takes any more"
    assert set(SIDEWAYS) >= PLANNED_SIDEWAYS


def test_no_import_cycle_between_modules(
    real_tree: tuple[dict[str, Path], list[Import]],
) -> None:
    found = cycles(*real_tree)
    unexpected = [sorted(c) for c in found if c not in CYCLE_EXCEPTIONS]
    assert unexpected == []
    assert set(CYCLE_EXCEPTIONS) - set(found) == set(), "remove cycle exceptions that are gone"


def test_only_postgres_connect_opens_a_connection() -> None:
    offenders = calls_outside(SRC, "connect", CONNECT_HOME)
    assert offenders - CONNECT_OFFENDERS == set(), "open connections with dbopt.postgres.connect"
    assert CONNECT_OFFENDERS - offenders == set(), "fixed: remove from CONNECT_OFFENDERS"


def test_only_postgres_render_quotes_identifiers() -> None:
    offenders = calls_outside(SRC, "quote", QUOTE_HOME)
    assert offenders - QUOTE_OFFENDERS == set(), "quote with dbopt.postgres.render"
    assert QUOTE_OFFENDERS - offenders == set(), "fixed: remove from QUOTE_OFFENDERS"


# -- import cost -----------------------------------------------------------------


def _fresh(code: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    return result.stdout.strip()


def test_import_dbopt_loads_no_orm_or_driver() -> None:
    loaded = _fresh(
        "import sys, dbopt; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    ).split()
    for heavy in ("sqlalchemy", "psycopg", "psycopg_pool", "pglast", "alembic", "sqlparse"):
        assert heavy not in loaded


def test_feature_packages_are_attributes_of_dbopt() -> None:
    out = _fresh(
        textwrap.dedent(
            """
            import dbopt
            names = ["postgres", "advisor", "partitions", "lint", "health", "migrations",
                     "schema", "eager", "pool"]
            print(dbopt.postgres.Explainer.__module__)
            print(all(getattr(dbopt, n).__name__ == "dbopt." + n for n in names))
            print(set(dbopt.__all__) <= set(dir(dbopt)))
            print(all(getattr(dbopt, n) is not None for n in dbopt.__all__))
            import dbopt.instrument
            print(callable(dbopt.instrument))
            """
        )
    ).splitlines()
    assert out == ["dbopt.postgres.explain", "True", "True", "True", "True"]


def test_unknown_attribute_of_dbopt_raises_attribute_error() -> None:
    import dbopt

    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = dbopt.no_such_thing  # type: ignore[attr-defined]


# -- the checker itself fails on violations -------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    for directory in {p.parent for p in tmp_path.rglob("*.py")}:
        (directory / "__init__.py").touch()
    return tmp_path


def test_checker_reports_an_upward_import_also_inside_a_function(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "dbopt/core/a.py": "from dbopt.errors import E\n",
            "dbopt/core/b.py": "def f():\n    from dbopt.cli import main\n",
            "dbopt/cli/__init__.py": "from dbopt.core.a import E\n",
            "dbopt/errors.py": "class E(Exception): ...\n",
        },
    )
    violations = layer_violations(*parse_tree(src))
    assert violations == ["dbopt.core.b:2 imports dbopt.cli (inside a function): up"]


def test_checker_reports_a_sideways_import_not_in_the_table(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "dbopt/lint/x.py": "import dbopt.partitions.y\n",
            "dbopt/partitions/y.py": "",
            "dbopt/advisor/z.py": "from dbopt.lint import x\n",  # allowed: advisor -> lint
        },
    )
    assert layer_violations(*parse_tree(src)) == [
        "dbopt.lint.x:1 imports dbopt.partitions.y: sideways"
    ]


def test_checker_exempts_type_checking_imports(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "dbopt/core/a.py": """
                from typing import TYPE_CHECKING
                import typing
                if TYPE_CHECKING:
                    from dbopt.cli import main
                if typing.TYPE_CHECKING:
                    from dbopt.report import x
            """,
            "dbopt/cli/__init__.py": "",
            "dbopt/report/x.py": "",
        },
    )
    files, imports = parse_tree(src)
    assert imports == []
    assert layer_violations(files, imports) == []


def test_checker_reports_a_module_outside_every_layer(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"dbopt/newthing.py": ""})
    assert layer_violations(*parse_tree(src)) == [
        "newthing: not in any layer of tests/test_architecture.py LAYERS"
    ]


def test_checker_finds_cycles_within_a_package_and_through_lazy_imports(
    tmp_path: Path,
) -> None:
    src = _tree(
        tmp_path,
        {
            "dbopt/core/a.py": "from dbopt.core.b import x\n",
            "dbopt/core/b.py": "x = 1\ndef f():\n    from . import c\n",
            "dbopt/core/c.py": "from .a import x\n",
            "dbopt/core/d.py": "from dbopt.core import a\n",  # into the cycle, not part of it
            "dbopt/core/e.py": "import dbopt.core.e\n",  # imports itself
        },
    )
    found = cycles(*parse_tree(src))
    assert sorted(sorted(c) for c in found) == [
        ["dbopt.core.a", "dbopt.core.b", "dbopt.core.c"],
        ["dbopt.core.e"],
    ]


def test_checker_finds_connections_and_quoting_outside_their_home(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "dbopt/postgres/connect.py": "import psycopg\nc = psycopg.connect('')\n",
            "dbopt/postgres/render.py": "q = 'a'.replace('\"', '\"\"')\n",
            "dbopt/lint/x.py": "import psycopg\nc = psycopg.AsyncConnection.connect('')\n",
            "dbopt/pool/y.py": 'def q(n):\n    return \'"\' + n.replace("\\"", \'""\') + \'"\'\n',
            "dbopt/schema/z.py": "t = 'a'.replace('\"', \"'\")\n",
            "dbopt/schema/w.py": "import sqlite3\nsqlite3.connect('')\n",
        },
    )
    assert calls_outside(src, "connect", CONNECT_HOME) == {"dbopt/lint/x.py"}
    assert calls_outside(src, "quote", QUOTE_HOME) == {"dbopt/pool/y.py"}
