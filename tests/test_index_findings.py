"""Index findings defined once: lint's rules, the advisor's aliases, partition-aware.

A partitioned table with two equal indexes on every partition, judged by lint
and by the index advisor: both report the same findings, and the union of
their drop advice, executed, leaves exactly one index on the column on each
partition (never the partition's attached index, never the last index of a
foreign key or of a column queries use).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbopt.advisor import ExistingOptions, IndexAdvisor
from dbopt.advisor.existing import ALIASES
from dbopt.findings import Finding
from dbopt.health import HealthStatus, health
from test_lint_support import connect, flush_stats, fresh_schema, lint_schema, run

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

INDEX_RULES = sorted(ALIASES)  # LINT001, LINT004, LINT005, LINT006, LINT007

DDL = """
CREATE TABLE customer (id int PRIMARY KEY);
INSERT INTO customer SELECT generate_series(1, 100);
-- Pagila's payment: a partitioned index on the parent (attached on each partition),
-- a local twin on each partition, and the foreign keys on the partitions only
CREATE TABLE pay (id int, customer_id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE pay_1 PARTITION OF pay FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE pay_2 PARTITION OF pay FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE INDEX pay_customer ON pay (customer_id);
CREATE INDEX pay_1_customer_local ON pay_1 (customer_id);
CREATE INDEX pay_2_customer_local ON pay_2 (customer_id);
ALTER TABLE pay_1 ADD FOREIGN KEY (customer_id) REFERENCES customer (id);
ALTER TABLE pay_2 ADD FOREIGN KEY (customer_id) REFERENCES customer (id);
-- two local twins on each partition, no index on the parent, the foreign key on the parent
CREATE TABLE rent (id int, customer_id int REFERENCES customer (id), at date NOT NULL)
  PARTITION BY RANGE (at);
CREATE TABLE rent_1 PARTITION OF rent FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE rent_2 PARTITION OF rent FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE INDEX rent_1_a ON rent_1 (customer_id);
CREATE INDEX rent_1_b ON rent_1 (customer_id);
CREATE INDEX rent_2_a ON rent_2 (customer_id);
CREATE INDEX rent_2_b ON rent_2 (customer_id);
-- two partitioned twins on the parent, no foreign key: queries use one of them
CREATE TABLE ev (id int, customer_id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE INDEX ev_x ON ev (customer_id);
CREATE INDEX ev_y ON ev (customer_id);
INSERT INTO pay SELECT g, 1 + g % 100, '2024-01-01'::date + g % 59 FROM generate_series(1, 3000) g;
INSERT INTO rent SELECT * FROM pay;
INSERT INTO ev SELECT * FROM pay;
ANALYZE;
"""

TABLES = ("pay_1", "pay_2", "rent_1", "rent_2", "ev_1", "ev_2")


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    with fresh_schema(pg_url, DDL, prefix="idxf") as name, connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")
        for part in ("2024-01-05", "2024-02-05"):  # ev's index is used on both partitions
            conn.execute(
                f"SELECT * FROM \"{name}\".ev WHERE customer_id = 7 AND at = '{part}'"
            ).fetchall()
        flush_stats(conn)
        yield name


def _key(f: Finding) -> tuple[str, str, str, str | None]:
    return (str(f.metadata.get("lint_code", f.code)), f.object, f.severity.value, f.fix)


def _lint(pg_url: str, schema: str) -> list[Finding]:
    return list(lint_schema(pg_url, schema, rules=INDEX_RULES))


def _advise(pg_url: str, schema: str) -> list[Finding]:
    report = IndexAdvisor(pg_url, existing=ExistingOptions()).advise([])
    return [f for f in report.findings if f.object.startswith(f"{schema}.")]


def _indexes_on_customer(pg_url: str, schema: str) -> dict[str, list[str]]:
    with connect(pg_url) as conn:
        rows = conn.execute(
            """SELECT c.relname, ic.relname FROM pg_index i
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
               WHERE n.nspname = %s AND a.attname = 'customer_id'
               ORDER BY 1, 2""",
            (schema,),
        ).fetchall()
    out: dict[str, list[str]] = {t: [] for t in TABLES}
    for table, index in rows:
        if table in out:
            out[table].append(index)
    return out


def _statements(findings: list[Finding]) -> list[str]:
    """Each drop statement of ``findings`` once, comments removed."""
    out: list[str] = []
    for f in findings:
        for line in (f.fix or "").splitlines():
            stmt = line.split(";")[0].strip()
            if stmt.startswith(("DROP INDEX", "ALTER TABLE")) and stmt not in out:
                out.append(stmt)
    return out


def test_lint_and_advisor_report_the_same_findings(pg_url: str, schema: str) -> None:
    lint_findings = _lint(pg_url, schema)
    advisor_findings = _advise(pg_url, schema)
    assert lint_findings  # the schema has twins: nothing found would mean nothing tested
    assert {_key(f) for f in advisor_findings} == {_key(f) for f in lint_findings}
    assert all(f.code == ALIASES[f.metadata["lint_code"]] for f in advisor_findings)


def test_twins_on_partitions_are_reported_once_per_partition(pg_url: str, schema: str) -> None:
    dups = {f.metadata["index"]: f for f in _lint(pg_url, schema) if f.code == "LINT004"}
    # pay: the local twin goes, the index attached to the parent's stays
    assert dups["pay_1_customer_local"].metadata["duplicate_of"] == "pay_1_customer_id_idx"
    assert dups["pay_2_customer_local"].metadata["duplicate_of"] == "pay_2_customer_id_idx"
    assert dups["pay_1_customer_local"].metadata["partition_of"] == f"{schema}.pay"
    # rent: two local twins per partition, the older kept
    assert dups["rent_1_b"].metadata["duplicate_of"] == "rent_1_a"
    assert dups["rent_2_b"].metadata["duplicate_of"] == "rent_2_a"
    # ev: the parent's twin, once, on the parent (its partitions' indexes go with it)
    assert dups["ev_y"].metadata["duplicate_of"] == "ev_x"
    assert set(dups) == {
        "pay_1_customer_local",
        "pay_2_customer_local",
        "rent_1_b",
        "rent_2_b",
        "ev_y",
    }


def test_partition_foreign_keys_count_for_the_parent(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT001", "LINT003"])
    # pay's foreign keys and indexes live on each partition; rent's partitions index its key
    objects = {f.object for f in report}
    assert objects == {f"{schema}.ev.customer_id"}  # ev has no foreign key at all


def test_union_of_drop_advice_keeps_one_index_per_partition(pg_url: str, schema: str) -> None:
    before = _indexes_on_customer(pg_url, schema)
    assert all(len(v) == 2 for v in before.values()), before
    statements = _statements(_lint(pg_url, schema) + _advise(pg_url, schema))
    assert statements
    for stmt in statements:
        run(pg_url, schema, stmt)
    after = _indexes_on_customer(pg_url, schema)
    assert {t: len(v) for t, v in after.items()} == dict.fromkeys(TABLES, 1)
    # the partitions' attached indexes survive
    assert after["pay_1"] == ["pay_1_customer_id_idx"]
    assert after["pay_2"] == ["pay_2_customer_id_idx"]
    # and no twin is left (LINT006 may now call ev_x unused: the scans were ev_y's, and
    # scan counters die with their index; usage needs a new period of statistics)
    again = [f for f in _lint(pg_url, schema) + _advise(pg_url, schema) if f.code != "LINT006"]
    assert _statements([f for f in again if f.metadata.get("lint_code") != "LINT006"]) == []


def test_finding_names_the_partition_that_lacks_an_index(pg_url: str) -> None:
    ddl = """
    CREATE TABLE c (id int PRIMARY KEY);
    CREATE TABLE o (id int, c_id int REFERENCES c (id), at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE o_1 PARTITION OF o FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE o_2 PARTITION OF o FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    CREATE TABLE o_3 PARTITION OF o FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
    CREATE INDEX o_1_c ON o_1 (c_id);
    CREATE INDEX o_3_c ON o_3 (c_id);
    """
    with fresh_schema(pg_url, ddl) as name:
        (finding,) = lint_schema(pg_url, name, rules=["LINT001"])
        assert finding.metadata["partitions"] == ["o_2"]
        assert finding.message.endswith(f"has no covering index on partition {name}.o_2")
        assert finding.fix == f"CREATE INDEX CONCURRENTLY o_2_c_id_idx ON {name}.o_2 (c_id);"
        run(pg_url, name, finding.fix)
        assert len(lint_schema(pg_url, name, rules=["LINT001"])) == 0


def test_finding_names_the_partition_that_lacks_a_foreign_key(pg_url: str) -> None:
    ddl = """
    CREATE TABLE c (id int PRIMARY KEY);
    CREATE TABLE o (id int, c_id int, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE o_1 PARTITION OF o FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE o_2 PARTITION OF o FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    ALTER TABLE o_1 ADD FOREIGN KEY (c_id) REFERENCES c (id);
    """
    with fresh_schema(pg_url, ddl) as name:
        (finding,) = lint_schema(pg_url, name, rules=["LINT003"])
        assert finding.object == f"{name}.o.c_id"
        assert finding.metadata["partitions"] == ["o_2"]
        assert f"partition {name}.o_2 lack" in finding.message
        for stmt in (finding.fix or "").split("\n"):
            run(pg_url, name, stmt)
        assert len(lint_schema(pg_url, name, rules=["LINT003"])) == 0


def test_unused_twin_scans_count_for_the_kept_one(pg_url: str) -> None:
    ddl = """
    CREATE TABLE w (id int PRIMARY KEY, a int);
    INSERT INTO w SELECT g, g FROM generate_series(1, 2000) g;
    CREATE INDEX w_a_old ON w (a);
    CREATE INDEX w_a_new ON w (a);
    ANALYZE w;
    """
    with fresh_schema(pg_url, ddl) as name, connect(pg_url) as conn:
        # queries use the newer twin, the one LINT004 drops
        # (the drop is rolled back; scan counters are not transactional)
        conn.execute("SET enable_seqscan = off")
        with conn.transaction(force_rollback=True):
            conn.execute(f'DROP INDEX "{name}".w_a_old')
            conn.execute(f'SELECT * FROM "{name}".w WHERE a = 5').fetchall()
        flush_stats(conn)
        report = lint_schema(pg_url, name, rules=["LINT004", "LINT006"])
        # w_a_new goes as w_a_old's twin; w_a_old inherits its scans and is not "unused"
        assert [(f.code, f.metadata["index"]) for f in report] == [("LINT004", "w_a_new")]


def test_sequence_overflow_is_one_check_in_lint_and_health(pg_url: str) -> None:
    ddl = """
    CREATE TABLE a (id serial PRIMARY KEY);
    CREATE TABLE k (id bigserial PRIMARY KEY);
    CREATE TABLE c (id bigint PRIMARY KEY, k_id int REFERENCES k (id));
    CREATE TABLE quiet (id serial PRIMARY KEY);
    SELECT setval('a_id_seq', 1800000000);   -- 84 % of int4
    SELECT setval('k_id_seq', 2000000000);   -- bigint is fine, c.k_id (int4) is at 93 %
    SELECT setval('quiet_id_seq', 1000);
    """
    with fresh_schema(pg_url, ddl) as name:
        linted = {
            (f.object, f.severity.value, f.fix, f.message)
            for f in lint_schema(pg_url, name, rules=["LINT012"])
        }
        check = health(pg_url, checks=["sequences"], schemas=[name])["sequences"]
        healthy = {(f.object, f.severity.value, f.fix, f.message) for f in check.findings}
    assert healthy == linted
    assert {(o, s) for o, s, _, _ in linted} == {
        (f"{name}.a.id", "warning"),
        (f"{name}.c.k_id", "error"),
    }
    assert check.status is HealthStatus.CRITICAL
    assert {d["column"] for d in check.details} == {"a.id", "c.k_id"}
