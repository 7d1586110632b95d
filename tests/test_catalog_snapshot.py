"""One catalog snapshot: lint's default read and the advisor's planner read are the same loader.

The default parts never call the functions that lock user tables
(``pg_relation_size``, ``pg_get_indexdef``) and see tables only; the planner
part adds views, sizes, definitions and every column's statistics to the
same snapshot, and the advisor's cost model and its existing-index findings
both read that one object.
"""

from __future__ import annotations

import psycopg
import pytest

from dbopt.advisor.catalog import load_catalog
from dbopt.postgres import catalog
from dbopt.testing import libpq_url

SCHEMA = """
CREATE TABLE {s}.author (id int PRIMARY KEY, name text NOT NULL COLLATE "C");
CREATE TABLE {s}.post (id int PRIMARY KEY, author_id int REFERENCES {s}.author, body text);
CREATE INDEX post_author_idx ON {s}.post (author_id);
CREATE TABLE {s}.event (at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE {s}.event_2026 PARTITION OF {s}.event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX event_kind_idx ON {s}.event (kind);
CREATE VIEW {s}.post_view AS SELECT id, body FROM {s}.post;
CREATE MATERIALIZED VIEW {s}.post_counts AS
  SELECT author_id, count(*) AS n FROM {s}.post GROUP BY author_id;
CREATE INDEX post_counts_author_idx ON {s}.post_counts (author_id);
INSERT INTO {s}.author SELECT g, 'a' || g FROM generate_series(1, 50) g;
INSERT INTO {s}.post SELECT g, 1 + g % 50, repeat('x', 40) FROM generate_series(1, 2000) g;
INSERT INTO {s}.event
  SELECT DATE '2026-01-01' + g % 300, 'k' || g % 3 FROM generate_series(1, 900) g;
REFRESH MATERIALIZED VIEW {s}.post_counts;
ANALYZE {s}.author, {s}.post, {s}.event, {s}.post_counts;
"""


@pytest.fixture
def conn(pg_url: str, schema: str) -> psycopg.Connection[tuple[object, ...]]:
    c = psycopg.connect(libpq_url(pg_url), autocommit=True)
    c.execute(SCHEMA.format(s=schema))
    c.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+: counters visible now
    c.execute("SELECT 1")
    c.execute(f"SET search_path = {schema}, public")
    yield c
    c.close()


def _mine(snap: catalog.Catalog, schema: str) -> dict[str, catalog.Table]:
    rels = (*snap.tables.values(), *snap.others.values())
    return {t.name: t for t in rels if t.schema == schema}


def test_default_read_is_tables_only_and_takes_no_size_or_definition(
    conn: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    snap = catalog.load(conn, schemas=[schema])
    mine = _mine(snap, schema)
    assert set(mine) == {"author", "post", "event", "event_2026"}
    assert not snap.others
    assert not snap.planner_stats
    assert not snap.settings
    post = mine["post"]
    assert post.size_bytes is None
    assert all(i.definition is None and i.size_bytes is None for i in post.indexes)
    # write counters and the analyzed flag come with every read (no lock needed)
    assert post.n_tup_ins == 2000
    assert post.analyzed
    # lint's statistics stay the short MCV lists it needs (body has one value;
    # author_id 50, more than max_values; author.id is unique: no MCV list)
    assert snap.stats[(post.oid, "body")].values == ["x" * 40]
    assert (post.oid, "author_id") not in snap.stats
    assert (mine["author"].oid, "id") not in snap.stats
    assert mine["author"].columns[2].collation == "C"


def test_planner_read_adds_views_sizes_definitions_and_all_statistics(
    conn: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    snap = catalog.load(conn, schemas=[schema], parts=(*catalog.PARTS, catalog.PLANNER))
    mine = _mine(snap, schema)
    assert {t.kind for t in snap.others.values() if t.schema == schema} == {"v", "m"}
    assert mine["post_view"].oid in snap.others
    assert mine["post_view"].oid not in snap.tables
    counts = mine["post_counts"]
    assert [i.name for i in counts.indexes] == ["post_counts_author_idx"]
    post = mine["post"]
    assert post.size_bytes
    assert post.size_bytes >= post.relpages * snap.block_size > 0
    (idx,) = (i for i in post.indexes if i.name == "post_author_idx")
    assert idx.definition is not None
    assert "(author_id)" in idx.definition
    assert idx.size_bytes
    assert idx.size_bytes > 0
    assert idx.constraint_type is None
    pkey = next(i for i in post.indexes if i.is_primary)
    assert pkey.constraint_type == "p"
    body = snap.planner_stats[(post.oid, "body")]
    assert body.avg_width is not None
    assert body.avg_width >= 40
    assert (mine["author"].oid, "id") in snap.planner_stats  # every column, not just short MCVs
    assert snap.settings["random_page_cost"] > 0
    assert snap.extensions["plpgsql"] == "pg_catalog"
    assert snap.search_path[0] == schema


def test_advisor_view_is_built_from_the_one_snapshot(
    conn: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    cat = load_catalog(conn)
    assert cat.snapshot is not None
    rel = cat.lookup(schema, "post")
    assert rel is not None
    assert rel.oid in cat.snapshot.tables
    assert rel.columns["body"].avg_width == cat.snapshot.planner_stats[(rel.oid, "body")].avg_width
    view = cat.lookup(None, "post_view")  # through search_path
    assert view is not None
    assert view.kind == "v"
    assert not view.is_table
    # a partitioned table carries its partitions' rows and sizes; the partition knows its root
    event = cat.lookup(schema, "event")
    part = cat.lookup(schema, "event_2026")
    assert event is not None
    assert part is not None
    assert event.reltuples == part.reltuples == 900
    assert cat.root(part) is event
    assert event.size_bytes == part.size_bytes > 0
    defs = {i.name: i.definition for i in cat.indexes if i.schema == schema}
    assert "post_counts_author_idx" in defs
    assert all(defs.values())
    # existing-index findings judge the same snapshot: its indexes are the view's indexes
    snap_idx = {i.oid for t in cat.snapshot.tables.values() for i in t.indexes}
    snap_idx |= {i.oid for t in cat.snapshot.others.values() for i in t.indexes}
    assert snap_idx == {i.oid for i in cat.indexes}
