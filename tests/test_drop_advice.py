"""Everything dbopt proposes to drop, taken together, keeps every foreign key and column indexed.

lint, the index advisor's findings and the health report each may propose
``DROP INDEX`` (or dropping a constraint's index). Each piece of advice is
judged on its own; this test takes all of it at once, applies it to the
database, and checks on the catalog (with our own queries, not dbopt's):

* every foreign key that had an index leading with its columns still has one
  (on every partition, for keys declared per partition);
* every index that went is covered by one that stayed (same table, its keys a
  prefix of the survivor's), so every column that had an index is still
  indexed; when the usage rules are told the statistics are old enough
  (LINT006/IDX003: an unused index may go), that holds for every index
  but the unused ones, and foreign keys stay covered regardless.

The schemas are Pagila's and Chinook's structure as of the versions
docs/lint.md reviews (github.com/devrimgunduz/pagila at 3217c8a,
github.com/lerocha/chinook-database ``Chinook_PostgreSql.sql``): their tables'
keys, every index and foreign key they declare, written here by hand with the
other columns left out, plus duplicate and overlapping indexes we add: two or
three equal indexes on every partition of ``payment``, a partitioned index on
the parent that attaches to one of them, twins of unique and primary-key
indexes and prefixes of wider ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor
from dbopt.advisor.existing import ExistingOptions
from dbopt.findings import Finding
from dbopt.health import health
from dbopt.lint import LintConfig, lint
from dbopt.testing import libpq_url, postgres_url

pytestmark = pytest.mark.postgres

_PARTITIONS = [
    ("01", "2022-01-01", "2022-02-01"),
    ("02", "2022-02-01", "2022-03-01"),
    ("03", "2022-03-01", "2022-04-01"),
    ("04", "2022-04-01", "2022-05-01"),
    ("05", "2022-05-01", "2022-06-01"),
    ("06", "2022-06-01", "2022-07-01"),
    ("07", "2022-07-01", "2022-08-01"),
]

PAGILA = """
CREATE TABLE country (country_id serial PRIMARY KEY);
CREATE TABLE city (city_id serial PRIMARY KEY, country_id int NOT NULL
  REFERENCES country ON UPDATE CASCADE ON DELETE RESTRICT);
CREATE TABLE address (address_id serial PRIMARY KEY, city_id int NOT NULL
  REFERENCES city ON UPDATE CASCADE ON DELETE RESTRICT);
CREATE TABLE language (language_id serial PRIMARY KEY);
CREATE TABLE category (category_id serial PRIMARY KEY);
CREATE TABLE actor (actor_id serial PRIMARY KEY, last_name text NOT NULL);
CREATE TABLE film (film_id serial PRIMARY KEY, title text NOT NULL,
  language_id int NOT NULL REFERENCES language, original_language_id int REFERENCES language,
  fulltext tsvector NOT NULL);
CREATE TABLE film_actor (actor_id int NOT NULL REFERENCES actor, film_id int NOT NULL
  REFERENCES film, PRIMARY KEY (actor_id, film_id));
CREATE TABLE film_category (film_id int NOT NULL REFERENCES film, category_id int NOT NULL
  REFERENCES category, PRIMARY KEY (film_id, category_id));
CREATE TABLE store (store_id serial PRIMARY KEY, manager_staff_id int NOT NULL,
  address_id int NOT NULL REFERENCES address);
CREATE TABLE staff (staff_id serial PRIMARY KEY, address_id int NOT NULL REFERENCES address,
  store_id int NOT NULL REFERENCES store);
CREATE TABLE customer (customer_id serial PRIMARY KEY, store_id int NOT NULL REFERENCES store,
  address_id int NOT NULL REFERENCES address, last_name text NOT NULL);
CREATE TABLE inventory (inventory_id serial PRIMARY KEY, film_id int NOT NULL REFERENCES film,
  store_id int NOT NULL REFERENCES store);
CREATE TABLE rental (rental_id serial PRIMARY KEY, rental_date timestamptz NOT NULL,
  inventory_id int NOT NULL REFERENCES inventory, customer_id int NOT NULL
  REFERENCES customer, staff_id int NOT NULL REFERENCES staff);
CREATE TABLE payment (payment_id serial, customer_id int NOT NULL, staff_id int NOT NULL,
  rental_id int NOT NULL, payment_date timestamptz NOT NULL,
  PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date);
CREATE INDEX film_fulltext_idx ON film USING gist (fulltext);
CREATE INDEX idx_actor_last_name ON actor (last_name);
CREATE INDEX idx_fk_address_id ON customer (address_id);
CREATE INDEX idx_fk_city_id ON address (city_id);
CREATE INDEX idx_fk_country_id ON city (country_id);
CREATE INDEX idx_fk_film_id ON film_actor (film_id);
CREATE INDEX idx_fk_inventory_id ON rental (inventory_id);
CREATE INDEX idx_fk_language_id ON film (language_id);
CREATE INDEX idx_fk_original_language_id ON film (original_language_id);
CREATE INDEX idx_fk_store_id ON customer (store_id);
CREATE INDEX idx_last_name ON customer (last_name);
CREATE INDEX idx_store_id_film_id ON inventory (store_id, film_id);
CREATE INDEX idx_title ON film (title);
CREATE UNIQUE INDEX idx_unq_manager_staff_id ON store (manager_staff_id);
CREATE UNIQUE INDEX idx_unq_rental_rental_date_inventory_id_customer_id
  ON rental (rental_date, inventory_id, customer_id);
""" + "".join(
    f"""
CREATE TABLE payment_p2022_{n} PARTITION OF payment FOR VALUES FROM ('{lo}') TO ('{hi}');
"""
    + (
        f"""
ALTER TABLE payment_p2022_{n} ADD FOREIGN KEY (customer_id) REFERENCES customer;
ALTER TABLE payment_p2022_{n} ADD FOREIGN KEY (rental_id) REFERENCES rental;
ALTER TABLE payment_p2022_{n} ADD FOREIGN KEY (staff_id) REFERENCES staff;
CREATE INDEX idx_fk_payment_p2022_{n}_customer_id ON payment_p2022_{n} (customer_id);
CREATE INDEX idx_fk_payment_p2022_{n}_staff_id ON payment_p2022_{n} (staff_id);
CREATE INDEX payment_p2022_{n}_customer_id_idx ON payment_p2022_{n} (customer_id);
"""
        if n != "07"
        else ""
    )
    for n, lo, hi in _PARTITIONS
)

#: What we add to Pagila: twins and prefixes, on partitions and on plain tables.
PAGILA_EXTRA = """
-- a partitioned index on the parent: attaches to one twin of each partition, creates p07's
CREATE INDEX payment_customer_id_idx ON payment (customer_id);
-- two equal staff_id indexes on every partition (p07 had none)
"""
PAGILA_EXTRA += "".join(
    f"CREATE INDEX payment_p2022_{n}_staff_dup ON payment_p2022_{n} (staff_id);\n"
    + (f"CREATE INDEX payment_p2022_{n}_staff_dup2 ON payment_p2022_{n} (staff_id);\n")
    for n, _, _ in _PARTITIONS
)
PAGILA_EXTRA += """
-- a rental_id index and a wider one on two partitions, a prefix pair
CREATE INDEX payment_p2022_01_rental_idx ON payment_p2022_01 (rental_id);
CREATE INDEX payment_p2022_01_rental_date_idx ON payment_p2022_01 (rental_id, payment_date);
CREATE INDEX payment_p2022_02_rental_idx ON payment_p2022_02 (rental_id);
CREATE INDEX payment_p2022_02_rental_idx2 ON payment_p2022_02 (rental_id);
-- twins and prefixes on plain tables
CREATE INDEX idx_customer_store_twin ON customer (store_id);
CREATE INDEX idx_inventory_store ON inventory (store_id);
CREATE INDEX idx_rental_customer ON rental (customer_id);
CREATE INDEX idx_rental_customer_date ON rental (customer_id, rental_date);
CREATE INDEX idx_film_actor_actor ON film_actor (actor_id);
CREATE UNIQUE INDEX idx_store_manager_twin ON store (manager_staff_id);
CREATE UNIQUE INDEX idx_country_pkey_twin ON country (country_id);
CREATE INDEX idx_city_country_a ON city (country_id);
CREATE INDEX idx_city_country_b ON city (country_id);
"""

CHINOOK = """
CREATE TABLE artist (artist_id int PRIMARY KEY);
CREATE TABLE album (album_id int PRIMARY KEY, artist_id int NOT NULL REFERENCES artist);
CREATE TABLE employee (employee_id int PRIMARY KEY, reports_to int REFERENCES employee);
CREATE TABLE customer (customer_id int PRIMARY KEY, support_rep_id int REFERENCES employee);
CREATE TABLE invoice (invoice_id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customer);
CREATE TABLE genre (genre_id int PRIMARY KEY);
CREATE TABLE media_type (media_type_id int PRIMARY KEY);
CREATE TABLE track (track_id int PRIMARY KEY, album_id int REFERENCES album,
  media_type_id int NOT NULL REFERENCES media_type, genre_id int REFERENCES genre);
CREATE TABLE invoice_line (invoice_line_id int PRIMARY KEY,
  invoice_id int NOT NULL REFERENCES invoice, track_id int NOT NULL REFERENCES track);
CREATE TABLE playlist (playlist_id int PRIMARY KEY);
CREATE TABLE playlist_track (playlist_id int NOT NULL REFERENCES playlist,
  track_id int NOT NULL REFERENCES track, PRIMARY KEY (playlist_id, track_id));
CREATE INDEX album_artist_id_idx ON album (artist_id);
CREATE INDEX customer_support_rep_id_idx ON customer (support_rep_id);
CREATE INDEX employee_reports_to_idx ON employee (reports_to);
CREATE INDEX invoice_customer_id_idx ON invoice (customer_id);
CREATE INDEX invoice_line_invoice_id_idx ON invoice_line (invoice_id);
CREATE INDEX invoice_line_track_id_idx ON invoice_line (track_id);
CREATE INDEX playlist_track_playlist_id_idx ON playlist_track (playlist_id);
CREATE INDEX playlist_track_track_id_idx ON playlist_track (track_id);
CREATE INDEX track_album_id_idx ON track (album_id);
CREATE INDEX track_genre_id_idx ON track (genre_id);
CREATE INDEX track_media_type_id_idx ON track (media_type_id);
"""

CHINOOK_EXTRA = """
CREATE INDEX invoice_line_invoice_twin ON invoice_line (invoice_id);
CREATE INDEX invoice_line_invoice_track ON invoice_line (invoice_id, track_id);
CREATE INDEX track_album_genre ON track (album_id, genre_id);
CREATE INDEX track_album_twin ON track (album_id);
CREATE INDEX playlist_track_track_playlist ON playlist_track (track_id, playlist_id);
CREATE UNIQUE INDEX genre_pkey_twin ON genre (genre_id);
"""

#: Leaf tables' valid indexes: (table, index, key column names in order).
_INDEXES = """
SELECT c.relname, i.relname, array_agg(a.attname ORDER BY k.n)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
CROSS JOIN LATERAL unnest(x.indkey[0:x.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE s.nspname = 'public' AND c.relkind = 'r' AND x.indisvalid AND x.indexprs IS NULL
GROUP BY c.relname, i.relname
"""

#: Foreign keys of leaf tables (inherited ones included): (table, name, column names).
_FOREIGN_KEYS = """
SELECT c.relname, f.conname, array_agg(a.attname ORDER BY a.attname)
FROM pg_constraint f
JOIN pg_class c ON c.oid = f.conrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (f.conkey)
WHERE f.contype = 'f' AND s.nspname = 'public' AND c.relkind = 'r'
GROUP BY c.relname, f.conname
"""

Shape = tuple[dict[tuple[str, str], tuple[str, ...]], dict[tuple[str, str], frozenset[str]]]


def _shape(dsn: str) -> Shape:
    with psycopg.connect(dsn) as conn:
        indexes = {(t, i): tuple(cols) for t, i, cols in conn.execute(_INDEXES)}
        fks = {(t, n): frozenset(cols) for t, n, cols in conn.execute(_FOREIGN_KEYS)}
    return indexes, fks


def _covered_fks(shape: Shape) -> set[tuple[str, str]]:
    indexes, fks = shape
    return {
        (table, name)
        for (table, name), cols in fks.items()
        if any(
            t == table and frozenset(keys[: len(cols)]) == cols for (t, _), keys in indexes.items()
        )
    }


@pytest.fixture(params=["pagila", "chinook"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    ddl = {"pagila": PAGILA + PAGILA_EXTRA, "chinook": CHINOOK + CHINOOK_EXTRA}[request.param]
    with postgres_url(prefix=f"dbopt_drop_{request.param}") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(ddl)
            conn.execute("ANALYZE")
        yield url


_DROP = re.compile(r"^(DROP INDEX [^;]+;|ALTER TABLE \S+ DROP CONSTRAINT [^;]+;)", re.M)


def _drops(findings: list[Finding]) -> dict[str, str]:
    """Every drop statement in the findings' fixes -> the code of a finding proposing it."""
    out: dict[str, str] = {}
    for f in findings:
        for stmt in _DROP.findall(f.fix or ""):
            out.setdefault(stmt, f.code)
    return out


def _advice(url: str, *, old_statistics: bool) -> dict[str, str]:
    """The combined drop advice of lint, the advisor's findings and health."""
    age = 0.0 if old_statistics else 7 * 24 * 3600.0
    linted = lint(url, config=LintConfig(unused_index_min_stats_age_s=age))
    advisor = IndexAdvisor(url, existing=ExistingOptions(min_stats_age_s=age), use_hypopg=False)
    advised = advisor.advise(["SELECT count(*) FROM pg_class"])
    checked = health(url)
    assert not linted.errors
    return _drops([*linted.findings, *advised.findings, *checked.findings])


def _apply(url: str, statements: list[str]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.split("  --")[0])


@pytest.mark.parametrize("old_statistics", [False, True], ids=["young", "old-stats"])
def test_combined_drop_advice_keeps_keys_and_columns_indexed(
    database: str, old_statistics: bool
) -> None:
    dsn = libpq_url(database)
    if not old_statistics:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')"
            ).fetchone()
        if not (row and row[0]):
            pytest.skip(
                "the database's age is unknown without pg_stat_file: statistics count as old"
            )
    before = _shape(dsn)
    advice = _advice(database, old_statistics=old_statistics)
    assert advice, "the duplicates added must be found"
    assert all(code.startswith(("LINT", "IDX")) for code in advice.values())
    _apply(database, list(advice))
    after = _shape(dsn)
    dropped = set(before[0]) - set(after[0])
    assert dropped, "the advice must drop something"
    # every foreign key that had a covering index still has one
    assert _covered_fks(before) - _covered_fks(after) == set()
    # every index that went is covered by one that stayed, but unused ones (LINT006/IDX003)
    unused = {
        name
        for stmt, code in advice.items()
        if code in ("LINT006", "IDX003")
        for name in re.findall(r"\.(\w+);", stmt)
    }
    assert old_statistics or not unused, "young statistics propose no unused-index drop"
    # (an unused index's scans include its twins' and prefixes': when the one kept of
    # a pair is unused, the pair was, and both may go)
    gone_unused = {(t, i) for t, i in dropped if i in unused}
    standing = {**after[0], **{k: before[0][k] for k in gone_unused}}
    for table, index in dropped - gone_unused:
        keys = before[0][(table, index)]
        assert any(t == table and kept[: len(keys)] == keys for (t, _), kept in standing.items()), (
            f"{table}.{index} {keys} went and nothing covers it"
        )
    # the twins on every partition: exactly one customer_id index is left on each
    if "payment_p2022_01" in {t for t, _ in before[0]}:
        for n, _, _ in _PARTITIONS:
            table = f"payment_p2022_{n}"
            left = [
                i for (t, i), keys in after[0].items() if t == table and keys == ("customer_id",)
            ]
            assert len(left) == 1, (table, left)
    # advice run again on the result proposes no further drop of what it kept as a twin
    again = _advice(database, old_statistics=False)
    assert not {s for s, c in again.items() if c in ("LINT004", "IDX001", "LINT005", "IDX002")}
