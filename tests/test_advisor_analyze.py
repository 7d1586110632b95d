"""Index advisor statement analysis: how SQL shapes map to table accesses (no pricing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbopt.advisor.analyze import AnalysisError, Analyzer, StatementShape
from dbopt.advisor.candidates import CandidateOptions, candidates_for
from dbopt.advisor.catalog import Catalog, load_catalog
from dbopt.testing import libpq_url, postgres_url

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE a (id int PRIMARY KEY, x int, y int, z text, flag boolean, j jsonb, t text[]);
CREATE TABLE b (id int PRIMARY KEY, a_id int, w int, at timestamptz);
CREATE SCHEMA s;
CREATE TABLE s."Mixed" ("Key" int, "Val" text);
CREATE VIEW v AS SELECT a.id AS aid, b.w FROM a JOIN b ON b.a_id = a.id;
CREATE VIEW v_limited AS SELECT id, x FROM a ORDER BY id LIMIT 10;
CREATE VIEW v2 (renamed) AS SELECT x FROM a;
"""


@pytest.fixture(scope="module")
def db() -> Iterator[tuple[psycopg.Connection[Any], Catalog]]:
    with (
        postgres_url(prefix="dbopt_advisor_analyze") as u,
        psycopg.connect(libpq_url(u), autocommit=True) as conn,
    ):
        conn.execute(SCHEMA)
        yield conn, load_catalog(conn)


def shape(db: tuple[psycopg.Connection[Any], Catalog], sql: str) -> StatementShape:
    conn, catalog = db
    return Analyzer(catalog, lambda oid: catalog.viewdef(conn, oid)).analyze(sql)


def summary(sh: StatementShape) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for acc in sh.accesses:
        d: dict[str, Any] = {}
        for name in ("eq", "join", "ranges", "alternatives"):
            keys = [k.expr for k in getattr(acc, name)]
            if keys:
                d[name] = keys
        if acc.order:
            d["order"] = [k.sql() for k in acc.order]
        if acc.group:
            d["group"] = [k.expr for k in acc.group]
        if acc.partial:
            d["partial"] = [p.text for p in acc.partial]
        if acc.gin:
            d["gin"] = acc.gin
        out.append((acc.relation.name, d))
    return out


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM a WHERE x = 1 AND y > 2", [("a", {"eq": ['"x"'], "ranges": ['"y"']})]),
        (
            "SELECT * FROM a WHERE x = 1 OR y = 2",
            [("a", {"alternatives": ['"x"', '"y"']})],
        ),
        (
            "SELECT * FROM a JOIN b USING (id)",
            [("a", {"join": ['"id"']}), ("b", {"join": ['"id"']})],
        ),
        (
            "SELECT * FROM a, b WHERE b.a_id = a.id AND a.id = 3",
            [
                ("a", {"eq": ['"id"'], "join": ['"id"']}),
                ("b", {"eq": ['"a_id"'], "join": ['"a_id"']}),
            ],
        ),
        (
            "SELECT * FROM a WHERE id IN (SELECT a_id FROM b WHERE w = $1)",
            [("a", {"join": ['"id"']}), ("b", {"eq": ['"w"'], "join": ['"a_id"']})],
        ),
        (
            "SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id AND b.w > 3)",
            [("a", {}), ("b", {"eq": ['"a_id"'], "ranges": ['"w"']})],
        ),
        (
            "SELECT x FROM a WHERE y = 1 UNION ALL SELECT w FROM b WHERE at > now()",
            [("a", {"eq": ['"y"']}), ("b", {"ranges": ['"at"']})],
        ),
        (
            "SELECT * FROM (SELECT id AS k, x FROM a) sub WHERE sub.k = 5 ORDER BY x LIMIT 3",
            [("a", {"eq": ['"id"'], "order": ['"x"']})],
        ),
        (
            "SELECT * FROM (SELECT id, x FROM a LIMIT 100) sub WHERE sub.id = 5",
            [("a", {})],
        ),
        (
            "SELECT * FROM (SELECT id, row_number() OVER () AS n FROM a) sub WHERE id = 5",
            [("a", {})],
        ),
        (
            "SELECT * FROM v WHERE aid = 4",
            [
                ("a", {"eq": ['"id"'], "join": ['"id"']}),
                ("b", {"eq": ['"a_id"'], "join": ['"a_id"']}),
            ],
        ),
        ("SELECT * FROM v_limited WHERE x = 1", [("a", {"order": ['"id"']})]),
        ("SELECT * FROM v2 WHERE renamed = 7", [("a", {"eq": ['"x"']})]),
        (
            "WITH c AS (SELECT * FROM a) SELECT * FROM c c1 JOIN c c2 ON c1.id = c2.x "
            "WHERE c1.y = 1",
            [("a", {})],
        ),
        (
            'SELECT * FROM s."Mixed" m WHERE m."Key" BETWEEN 1 AND 5 ORDER BY "Val" DESC',
            [("Mixed", {"ranges": ['"Key"'], "order": ['"Val" DESC']})],
        ),
        (
            "SELECT x, count(*) FROM a WHERE flag GROUP BY x",
            [("a", {"eq": ['"flag"'], "group": ['"x"'], "partial": ["flag"]})],
        ),
        (
            "SELECT * FROM a WHERE lower(z) = $1 AND z IS NOT NULL AND NOT flag",
            [("a", {"eq": ["lower(z)", '"flag"'], "partial": ["z IS NOT NULL", "NOT flag"]})],
        ),
        (
            """SELECT id FROM a WHERE j @> '{"k": 1}' AND j ? 'q' AND t && ARRAY['x']""",
            [("a", {"gin": [("j", "jsonb_path_ops"), ("j", None), ("t", None)]})],
        ),
        (
            "UPDATE a SET y = b.w FROM b WHERE b.a_id = a.id AND b.at < $1",
            [("a", {"join": ['"id"']}), ("b", {"join": ['"a_id"'], "ranges": ['"at"']})],
        ),
        (
            "DELETE FROM b USING a WHERE a.id = b.a_id AND a.x = 3",
            [("b", {"join": ['"a_id"']}), ("a", {"eq": ['"x"'], "join": ['"id"']})],
        ),
        (
            "INSERT INTO b (id, a_id) SELECT id, id FROM a WHERE y = 2",
            [("a", {"eq": ['"y"']})],
        ),
        (
            "SELECT * FROM a JOIN LATERAL (SELECT * FROM b WHERE b.a_id = a.id "
            "ORDER BY at DESC LIMIT 1) last ON true",
            [("a", {}), ("b", {"eq": ['"a_id"'], "order": ['"at" DESC']})],
        ),
    ],
)
def test_shapes(db: Any, sql: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    assert summary(shape(db, sql)) == expected


def test_updated_columns(db: Any) -> None:
    sh = shape(db, "UPDATE a SET y = 1, z = 'q' WHERE id = 3")
    (oid,) = sh.updated
    assert sh.updated[oid] == {"y", "z"}
    assert sh.kind == "update"


@pytest.mark.parametrize("sql", ["SELECT +", "SELECT 1; SELECT 2", "EXPLAIN SELECT * FROM a"])
def test_analysis_errors(db: Any, sql: str) -> None:
    with pytest.raises(AnalysisError):
        shape(db, sql)


def test_catalog_and_missing_relations_are_opaque(db: Any) -> None:
    sh = shape(db, "SELECT * FROM pg_class c JOIN nowhere n ON n.id = c.oid WHERE c.relname = 'x'")
    assert sh.accesses == []
    assert sh.notes == [
        "relation pg_class is not a user table of this database",
        "relation nowhere is not a user table of this database",
    ]


def test_candidates_equality_then_range_then_order(db: Any) -> None:
    _, catalog = db
    sh = shape(db, "SELECT * FROM a WHERE y > 3 AND x = 1 ORDER BY z DESC LIMIT 5")
    specs = candidates_for(sh.accesses[0], catalog, {}, CandidateOptions())
    labels = [s.label(catalog.relations[s.table_oid]) for s in specs]
    assert "public.a (x, y)" in labels  # equality first, then the range
    assert "public.a (x, z)" in labels  # equality, then the ORDER BY (backward scan for DESC)
    assert "public.a (y, x)" not in labels
    limited = candidates_for(sh.accesses[0], catalog, {}, CandidateOptions(max_columns=1))
    assert all(len(s.keys) == 1 for s in limited)
