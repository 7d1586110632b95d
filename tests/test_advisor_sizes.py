"""Built B-tree sizes: dbopt's estimate (deduplication included) against real indexes.

Each index is built for real on generated data and its ``pg_relation_size``
compared with :func:`dbopt.advisor.sizes.btree_size`; the stated tolerance is
25 %. hypopg's estimate, which ignores deduplication, is checked to be
further off where deduplication applies (the reason for this estimate).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor
from dbopt.advisor.catalog import load_catalog
from dbopt.advisor.evaluate import index_ddl
from dbopt.advisor.model import IndexSpec, KeyElem
from dbopt.advisor.sizes import btree_size, dedup_safe
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

TOLERANCE = 0.25

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE items (
    id bigint, account_id int, status text, price numeric(12, 2), kind char(8),
    created date, score float8
);
INSERT INTO items
SELECT n, (n * 7919) % 2000, 'state_' || ((n * 31) % 12), ((n * 13) % 10000) / 100.0,
       'k' || ((n * 17) % 5), date '2020-01-01' + ((n * 101) % 900), ((n * 3) % 1000) / 7.0
FROM generate_series(1, 200000) n;
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_sizes") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE items")
        yield u


CASES = [
    (("id",), (), None),  # unique: one tuple per row
    (("account_id",), (), None),  # 2000 distinct: posting lists
    (("status",), (), None),  # 12 distinct text values
    (("created",), (), None),  # 900 distinct dates
    (("account_id", "created"), (), None),
    (("price",), (), None),  # numeric: no deduplication
    (("kind",), (), None),  # bpchar: no deduplication
    (("account_id",), ("price",), None),  # INCLUDE: no deduplication
    (("score",), (), None),  # float8: no deduplication
    (("id",), (), "status = 'state_3'"),
]


@pytest.mark.parametrize(("keys", "include", "predicate"), CASES)
def test_estimate_matches_built_size(
    url: str, keys: tuple[str, ...], include: tuple[str, ...], predicate: str | None
) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        catalog = load_catalog(conn)
        rel = catalog.relations[catalog.by_name[("public", "items")]]
        spec = IndexSpec(
            rel.oid,
            "btree",
            tuple(KeyElem.column(k) for k in keys),
            include,
            predicate,
            ("status",) if predicate else (),
        )
        fraction = 1.0 / 12 if predicate else 1.0
        estimate = btree_size(spec, rel, catalog, fraction)
        hypo = conn.execute(
            "SELECT hypopg_relation_size(indexrelid) FROM hypopg_create_index(%s)",
            (index_ddl(spec, rel),),
        ).fetchone()
        conn.execute(index_ddl(spec, rel, "size_probe"))
        built = conn.execute("SELECT pg_relation_size('size_probe')").fetchone()
        conn.execute("DROP INDEX size_probe")
    assert built is not None and hypo is not None
    assert abs(estimate - built[0]) <= TOLERANCE * built[0], (estimate, built[0])
    if dedup_safe(spec, rel) and keys != ("id",):
        # the point of the estimate: hypopg does not see deduplication
        assert abs(hypo[0] - built[0]) > abs(estimate - built[0])


def test_report_gives_both_sizes(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise(
        ["SELECT * FROM items WHERE account_id = 5"]
    )
    (rec,) = report.recommendations
    assert rec.label == "public.items (account_id)"
    assert rec.built_bytes is not None
    assert rec.built_bytes < rec.size_bytes / 2  # deduplicated, hypopg's is not
    assert report.to_dict()["recommendations"][0]["built_bytes"] == rec.built_bytes


def test_byte_budget_counts_built_size(url: str) -> None:
    statements = ["SELECT * FROM items WHERE account_id = 5"]
    full = IndexAdvisor(url, findings=False).advise(statements)
    (rec,) = full.recommendations
    assert rec.built_bytes is not None
    fits = IndexAdvisor(url, findings=False, max_total_bytes=rec.built_bytes + 8192)
    assert [r.label for r in fits.advise(statements).recommendations] == [rec.label]
    tight = IndexAdvisor(url, findings=False, max_total_bytes=rec.built_bytes - 8192)
    report = tight.advise(statements)
    assert report.recommendations == []
    assert any(r.reason == "budget" for r in report.rejected)
