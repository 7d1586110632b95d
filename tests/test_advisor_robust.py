"""Index advisor robustness: the whole fingerprint corpus and odd inputs, never an exception."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.advisor.analyze import AnalysisError, Analyzer
from dbopt.advisor.catalog import load_catalog
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

CORPUS = Path(__file__).parent / "data" / "fingerprint_corpus.sql"


def corpus() -> list[tuple[str, str, str]]:
    """(dialect, name, sql) of every corpus entry."""
    entries: list[tuple[str, str, str]] = []
    current: tuple[str, str] | None = None
    lines: list[str] = []
    for line in [*CORPUS.read_text().splitlines(), "-- @end end"]:
        if line.startswith("--#"):
            continue
        if line.startswith("-- @"):
            if current is not None and "".join(lines).strip():
                entries.append((*current, "\n".join(lines).strip()))
            dialect, name = line[4:].split(None, 1)
            current, lines = (dialect, name.strip()), []
        else:
            lines.append(line)
    return entries


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A database with the corpus's own CREATE TABLE statements applied (where they work)."""
    with postgres_url(prefix="dbopt_advisor_robust") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            for dialect, _, sql in corpus():
                if dialect == "postgresql" and sql.lstrip().upper().startswith("CREATE TABLE"):
                    # some fail, e.g. the seed's PRIMARY KEY on a partitioned table
                    with contextlib.suppress(psycopg.Error):
                        conn.execute(sql)
        yield u


def test_corpus_is_read() -> None:
    entries = corpus()
    assert len([e for e in entries if e[0] == "postgresql"]) > 100


def test_analyzer_never_raises_anything_but_analysis_errors(url: str) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        catalog = load_catalog(conn)
        analyzed = failed = 0
        for _, _, sql in corpus():
            stmt = WorkloadStatement(sql)
            text, values = stmt.parse_text()
            try:
                Analyzer(catalog, lambda oid: catalog.viewdef(conn, oid), values).analyze(text)
                analyzed += 1
            except AnalysisError:
                failed += 1
    assert analyzed > 100
    assert failed > 0  # the corpus has SQLite/MySQL statements PostgreSQL cannot parse


def test_whole_corpus_as_one_workload(url: str) -> None:
    statements = [sql for dialect, _, sql in corpus() if dialect == "postgresql"]
    report = IndexAdvisor(url).advise(statements)
    statuses = {s.status for s in report.statements}
    assert statuses <= {"improved", "unchanged", "skipped", "error"}
    assert "skipped" in statuses  # BEGIN, SET, DDL ...
    assert "error" in statuses  # statements on tables the corpus does not create
    assert len(report.errors) == sum(s.status == "error" for s in report.statements)
    assert report.to_dict()["statements"]
    assert str(report)


@pytest.mark.parametrize(
    "workload",
    [
        [""],
        ["   ;  "],
        ["-- only a comment"],
        ["SELECT * FROM generate_series(1, 10) g WHERE g = 3"],
        ["SELECT $1::int"],
        ["SELECT * FROM pg_class WHERE oid = $1"],
        ["VALUES (1), (2)"],
        ["WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) TABLE r"],
        ["SELECT %(x)s", "SELECT %s"],
        [WorkloadStatement("SELECT * FROM nowhere WHERE a = %(a)s", {"a": object()})],
        [WorkloadStatement("SELECT %(a)s", [{"a": 1}, {"a": 2}])],
        ["EXPLAIN ANALYZE SELECT 1"],
        ["DROP TABLE users"],
    ],
)
def test_odd_input_never_raises(url: str, workload: list[object]) -> None:
    report = IndexAdvisor(url, findings=False).advise(workload)
    assert report.recommendations == []
    assert all(s.status in ("skipped", "error") for s in report.statements)
