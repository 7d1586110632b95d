"""Partition-aware advice on a Pagila-like ``payment`` partitioned by month.

Pagila creates ``idx_fk_payment_p2022_0N_customer_id`` (and a second
``customer_id`` index) on every partition, none on the parent. The advisor
must not recommend ``payment (customer_id)`` again; when one partition
lacks it, the DDL attaches the indexes the others have and builds one.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

MONTHS = ("2022_01", "2022_02", "2022_03")


def _payment(schema: str, indexed: tuple[str, ...]) -> str:
    out = [
        f"CREATE SCHEMA {schema};",
        f"CREATE TABLE {schema}.payment (payment_id int NOT NULL, customer_id int NOT NULL,"
        " staff_id int NOT NULL, amount numeric(5,2) NOT NULL, payment_date timestamptz NOT NULL,"
        " PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date);",
    ]
    for i, month in enumerate(MONTHS):
        start, end = f"2022-0{i + 1}-01", f"2022-0{i + 2}-01"
        part = f"{schema}.payment_p{month}"
        out.append(
            f"CREATE TABLE {part} PARTITION OF {schema}.payment"
            f" FOR VALUES FROM ('{start}') TO ('{end}');"
        )
        if month in indexed:
            out.append(f"CREATE INDEX idx_fk_payment_p{month}_customer_id ON {part} (customer_id);")
            out.append(f"CREATE INDEX payment_p{month}_customer_id_idx ON {part} (customer_id);")
    out.append(
        f"INSERT INTO {schema}.payment SELECT n, 1 + (n * 17) % 599, 1 + n % 2,"
        " (ARRAY[0.99,2.99,4.99,5.99,9.99])[1 + n % 5],"
        " timestamptz '2022-01-01' + (n % 89) * interval '1 day' + (n % 1440) * interval '1 min'"
        " FROM generate_series(1, 60000) n;"
    )
    return "\n".join(out)


SCHEMA = "\n".join(
    [
        "CREATE EXTENSION IF NOT EXISTS hypopg;",
        _payment("pagila", MONTHS),  # every partition has two customer_id indexes
        _payment("gap", MONTHS[:2]),  # payment_p2022_03 has none
        "ANALYZE;",
    ]
)


def _workload(schema: str) -> list[WorkloadStatement]:
    return [
        WorkloadStatement(
            f"SELECT sum(amount) FROM {schema}.payment WHERE customer_id = 42", None, 50
        ),
        WorkloadStatement(
            f"SELECT * FROM {schema}.payment WHERE customer_id = 7 ORDER BY payment_date", None, 20
        ),
    ]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_partitions") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield u


def test_no_duplicate_of_what_every_partition_has(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise(_workload("pagila"))
    labels = [r.label for r in report.recommendations]
    assert not any(label.startswith("pagila.payment (customer_id") for label in labels), labels
    covered = [r for r in report.rejected if r.label == "pagila.payment (customer_id)"]
    assert covered
    assert covered[0].reason == "covered"
    assert "every partition already has" in covered[0].message
    assert "idx_fk_payment_p2022_01_customer_id" in covered[0].message


def test_one_partition_lacking_reuses_the_others(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise(_workload("gap"))
    recs = [r for r in report.recommendations if r.label == "gap.payment (customer_id)"]
    assert len(recs) == 1, [r.label for r in report.recommendations]
    rec = recs[0]
    assert rec.partitioned
    ddl = list(rec.ddl)
    assert ddl[0].startswith(f'CREATE INDEX IF NOT EXISTS "{rec.name}" ON ONLY "gap"."payment"')
    builds = [s for s in ddl if s.startswith("CREATE INDEX CONCURRENTLY")]
    assert len(builds) == 1
    assert 'ON "gap"."payment_p2022_03"' in builds[0]
    attaches = [s for s in ddl if s.startswith("ALTER INDEX")]
    assert len(attaches) == 3
    # the existing indexes are reused (the first of each partition's two, by name)
    assert 'ATTACH PARTITION "gap"."idx_fk_payment_p2022_01_customer_id"' in " ".join(attaches)
    assert 'ATTACH PARTITION "gap"."idx_fk_payment_p2022_02_customer_id"' in " ".join(attaches)

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        before = _index_count(conn)
        for stmt in ddl:
            conn.execute(stmt)
        try:
            valid = conn.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'gap' AND c.relname = %s",
                (rec.name,),
            ).fetchone()
            assert valid == (True,)  # every partition attached
            # one parent index and one new partition index: nothing re-created
            assert _index_count(conn) == before + 2
            # sizes count the one partition built, not the three attached
            row = conn.execute(
                "SELECT sum(pg_relation_size(i.inhrelid)) FROM pg_inherits i"
                " WHERE i.inhparent = %s::regclass",
                (f'"gap"."{rec.name}"',),
            ).fetchone()
            assert row is not None
            attached = int(row[0])
            assert rec.built_bytes is not None
            assert 0 < rec.built_bytes < 0.6 * attached
            again = IndexAdvisor(url, findings=False).advise(_workload("gap"))
            assert not any(r.label == "gap.payment (customer_id)" for r in again.recommendations)
        finally:
            for stmt in rec.drop_ddl:
                conn.execute(stmt)
        # undoing it drops the attached indexes and re-creates the ones that were there
        assert _index_count(conn) == before
        assert rec.drop_ddl[1].startswith(
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_fk_payment_p2022_01_customer_id"'
        )


def _index_count(conn: psycopg.Connection[object]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'gap' AND c.relkind IN ('i', 'I')"
    ).fetchone()
    assert row is not None
    return int(row[0])
