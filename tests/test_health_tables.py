"""Health checks over tables, on real tables: VACUUM/ANALYZE due, bloat, sequences,
wraparound, partitions, replication slots."""

from __future__ import annotations

import secrets

import pytest

from dbopt.health import HealthStatus, HealthThresholds, health
from dbopt.health.bloat import estimate_index_pages, estimate_table_pages
from test_lint_support import connect, flush_stats, fresh_schema, run

pytestmark = pytest.mark.postgres

NO_AUTOVACUUM = "WITH (autovacuum_enabled = off)"


def _tables(check: object, key: str = "table") -> set[str]:
    return {d[key] for d in check.details}  # type: ignore[attr-defined]


def test_vacuum_needed_until_vacuumed(pg_url: str) -> None:
    ddl = f"""
    CREATE TABLE churn (id int PRIMARY KEY, v text) {NO_AUTOVACUUM};
    CREATE TABLE calm (id int PRIMARY KEY, v text) {NO_AUTOVACUUM};
    INSERT INTO churn SELECT g, 'x' FROM generate_series(1, 5000) g;
    INSERT INTO calm SELECT g, 'x' FROM generate_series(1, 5000) g;
    DELETE FROM churn WHERE id % 10 <> 0;
    DELETE FROM calm WHERE id <= 100;
    """
    with fresh_schema(pg_url, ddl, prefix="health") as name:
        report = health(pg_url, checks=["vacuum_needed"], schemas=[name])
        check = report["vacuum_needed"]
        assert _tables(check) == {f"{name}.churn"}
        assert check.status is HealthStatus.CRITICAL  # 90 % dead
        finding = check.findings[0]
        assert finding.fix == f"VACUUM (ANALYZE) {name}.churn;"
        assert finding.metadata["autovacuum"] is False
        assert "autovacuum disabled" in finding.message
        with connect(pg_url) as conn:
            conn.execute(finding.fix)
            flush_stats(conn)
        after = health(pg_url, checks=["vacuum_needed"], schemas=[name])
        assert after["vacuum_needed"].status is HealthStatus.OK


def test_analyze_needed(pg_url: str) -> None:
    ddl = f"""
    CREATE TABLE fresh (id int) {NO_AUTOVACUUM};
    CREATE TABLE known (id int) {NO_AUTOVACUUM};
    INSERT INTO fresh SELECT generate_series(1, 3000);
    INSERT INTO known SELECT generate_series(1, 3000);
    """
    with fresh_schema(pg_url, ddl, prefix="health") as name:
        # ANALYZE after the inserts' transaction, so their counts are not charged after it
        with connect(pg_url) as conn:
            conn.execute(f'ANALYZE "{name}".known')
            flush_stats(conn)
        check = health(pg_url, checks=["analyze_needed"], schemas=[name])["analyze_needed"]
        assert _tables(check) == {f"{name}.fresh"}
        assert check.details[0]["never_analyzed"] is True
        assert check.status is HealthStatus.WARN
        run(pg_url, name, check.findings[0].fix or "")
        with connect(pg_url) as conn:
            flush_stats(conn)
        after = health(pg_url, checks=["analyze_needed"], schemas=[name])
        assert after["analyze_needed"].details == []


def test_table_and_index_bloat(pg_url: str) -> None:
    ddl = f"""
    CREATE TABLE bloated (id int PRIMARY KEY, pad text) {NO_AUTOVACUUM};
    CREATE TABLE tight (id int PRIMARY KEY, pad text) {NO_AUTOVACUUM};
    INSERT INTO bloated SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
    INSERT INTO tight SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
    DELETE FROM bloated WHERE id % 10 <> 0;
    """
    limits = HealthThresholds(bloat_min_bytes=0)
    with fresh_schema(pg_url, ddl, prefix="health") as name:
        run(pg_url, name, "VACUUM ANALYZE bloated")
        run(pg_url, name, "ANALYZE tight")
        report = health(
            pg_url, checks=["table_bloat", "index_bloat"], schemas=[name], thresholds=limits
        )
        tables = report["table_bloat"]
        assert _tables(tables) == {f"{name}.bloated"}
        assert tables.details[0]["bloat"] > 0.8
        assert tables.status is HealthStatus.CRITICAL
        assert (tables.findings[0].fix or "").startswith(f"VACUUM FULL {name}.bloated;")
        indexes = report["index_bloat"]
        assert _tables(indexes, "index") == {f"{name}.bloated_pkey"}
        assert indexes.findings[0].fix == f"REINDEX INDEX CONCURRENTLY {name}.bloated_pkey;"
        # the default minimum size keeps small tables out
        quiet = health(pg_url, checks=["table_bloat"], schemas=[name])
        assert quiet["table_bloat"].status is HealthStatus.OK


def test_cache_and_index_hit_ratios_judge_the_blocks_read(pg_url: str) -> None:
    ddl = """CREATE TABLE hits (id int PRIMARY KEY, pad text);
    INSERT INTO hits SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;"""
    # every ratio is below 1.01: warn once any block was read at all
    strict = HealthThresholds(hit_ratio_min_blocks=1, hit_ratio_warn=1.01, hit_ratio_critical=0)
    checks = ["cache_hit_ratio", "index_hit_ratio"]
    with fresh_schema(pg_url, ddl, prefix="health") as name, connect(pg_url) as conn:
        conn.execute(f'SELECT count(*) FROM "{name}".hits WHERE id > 0')
        conn.execute(f'SELECT pad FROM "{name}".hits WHERE id = 7')
        flush_stats(conn)
        report = health(pg_url, checks=checks, schemas=[name], thresholds=strict)
        for check, kind, obj in zip(
            checks, ("table", "index"), (f"{name}.hits", f"{name}.hits_pkey"), strict=True
        ):
            result = report[check]
            assert result.status is HealthStatus.WARN
            assert result.summary.startswith(f"{kind} hit ratio ")
            assert 0 < (result.value or 0) <= 1
            (row,) = result.details
            assert f"{row['schema']}.{row[kind]}" == obj
            assert row["reads"] + row["hits"] > 0
            (finding,) = result.findings
            assert finding.object == report.database
            assert finding.message == result.summary
            assert finding.metadata["ratio"] == result.value
        # below the minimum number of blocks nothing is judged
        few = HealthThresholds(hit_ratio_min_blocks=10**9)
        quiet = health(pg_url, checks=checks, schemas=[name], thresholds=few)
        for check in checks:
            assert quiet[check].status is HealthStatus.OK
            assert quiet[check].summary.startswith("too few ")
            assert not quiet[check].findings


def test_bloat_estimates_match_fresh_relations(pg_url: str) -> None:
    ddl = """CREATE TABLE f (id int PRIMARY KEY, a bigint, b text);
    INSERT INTO f SELECT g, g, md5(g::text) FROM generate_series(1, 50000) g; ANALYZE f;"""
    with fresh_schema(pg_url, ddl, prefix="health") as name, connect(pg_url) as conn:
        row = conn.execute(
            f"""SELECT c.relpages, c.reltuples, i.relpages AS ipages,
                       sum(s.avg_width) AS width
                FROM pg_class c JOIN pg_class i ON i.oid = '"{name}".f_pkey'::regclass
                JOIN pg_stats s ON s.schemaname = '{name}' AND s.tablename = 'f'
                WHERE c.oid = '"{name}".f'::regclass GROUP BY 1, 2, 3"""
        ).fetchone()
        assert row is not None
        table_pages = estimate_table_pages(row[1], 3, float(row[3]), False, 8192, 100)
        assert table_pages == pytest.approx(row[0], rel=0.1)
        index_pages = estimate_index_pages(row[1], 4, False, 8192, 90)
        assert index_pages == pytest.approx(row[2], rel=0.15)


def test_sequences_near_exhaustion(pg_url: str) -> None:
    ddl = """CREATE TABLE a (id serial PRIMARY KEY); CREATE TABLE b (id bigserial PRIMARY KEY);
    SELECT setval('a_id_seq', 1800000000); SELECT setval('b_id_seq', 1800000000);"""
    with fresh_schema(pg_url, ddl, prefix="health") as name:
        check = health(pg_url, checks=["sequences"], schemas=[name])["sequences"]
        assert _tables(check, "sequence") == {f"{name}.a_id_seq"}
        assert check.status is HealthStatus.WARN  # 84 % of int4
        assert check.details[0]["column"] == "a.id"
        lower = HealthThresholds(sequence_warn=0.5, sequence_critical=0.8)
        assert (
            health(pg_url, checks=["sequences"], schemas=[name], thresholds=lower).status
            is HealthStatus.CRITICAL
        )


def test_wraparound_ages(pg_url: str) -> None:
    check = health(pg_url, checks=["wraparound"])["wraparound"]
    assert check.status is HealthStatus.OK
    databases = [d for d in check.details if "mxid_age" in d]
    assert databases
    assert all(0 <= d["used"] < 0.5 for d in databases)
    tiny = HealthThresholds(wraparound_warn=1e-12, wraparound_critical=0.99)
    warned = health(pg_url, checks=["wraparound"], thresholds=tiny)["wraparound"]
    assert warned.status is HealthStatus.WARN
    with connect(pg_url) as conn:
        allowed = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn")}
        own = conn.execute("SELECT current_database()").fetchone()
    assert own is not None
    # one finding per database that accepts connections, each with its own age
    by_database = {f.object: f for f in warned.findings}
    assert set(by_database) == allowed
    assert {f.code for f in warned.findings} == {"HEALTH011"}
    details = {d["database"]: d for d in warned.details if "mxid_age" in d}
    for name, finding in by_database.items():
        age = finding.metadata["xid_age"]
        assert age == details[name]["xid_age"]
        assert f"transaction ID age {age} " in finding.message
    # this test's own database has run transactions since its creation
    assert by_database[own[0]].metadata["xid_age"] > 0


def test_partitions_default_rows_and_future_coverage(pg_url: str) -> None:
    ddl = """
    CREATE TABLE stale (id int, at timestamptz) PARTITION BY RANGE (at);
    CREATE TABLE stale_2023_07 PARTITION OF stale
      FOR VALUES FROM ('2023-07-01') TO ('2023-08-01');
    CREATE TABLE stale_default PARTITION OF stale DEFAULT;
    INSERT INTO stale SELECT g, now() FROM generate_series(1, 50) g;
    ANALYZE stale_default;
    CREATE TABLE ahead (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE short (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE by_list (id int, kind text) PARTITION BY LIST (kind);
    CREATE TABLE by_list_a PARTITION OF by_list FOR VALUES IN ('a');
    DO $$
    DECLARE m date := date_trunc('month', now())::date;
    BEGIN
      FOR i IN 0..3 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF ahead FOR VALUES FROM (%L) TO (%L)',
                       'ahead_' || i, m + make_interval(months => i),
                       m + make_interval(months => i + 1));
      END LOOP;
      EXECUTE format('CREATE TABLE short_0 PARTITION OF short FOR VALUES FROM (%L) TO (%L)',
                     m, m + interval '1 month');
    END $$;
    """
    with fresh_schema(pg_url, ddl, prefix="health") as name:
        check = health(pg_url, checks=["partitions"], schemas=[name])["partitions"]
        status = {d["table"]: d["status"] for d in check.details}
        assert status == {
            f"{name}.stale": "critical",  # nothing covers now(), rows in the default
            f"{name}.ahead": "ok",  # three future months
            f"{name}.short": "warn",  # the current month only
            f"{name}.by_list": "ok",
        }
        stale = next(f for f in check.findings if f.object == f"{name}.stale")
        assert "default partition" in stale.message
        assert "no partition for the current time" in stale.message
        assert check.status is HealthStatus.CRITICAL


def test_inactive_replication_slot(pg_url: str) -> None:
    slot = f"dbopt_test_{secrets.token_hex(4)}"
    with connect(pg_url) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        try:
            check = health(pg_url, checks=["replication_slots"])["replication_slots"]
            mine = next(f for f in check.findings if f.object == slot)
            assert mine.severity == "warning"
            assert mine.metadata["active"] is False
            assert mine.fix is not None
            assert mine.fix.startswith(f"SELECT pg_drop_replication_slot('{slot}');")
        finally:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    lag = health(pg_url, checks=["replication_lag"])["replication_lag"]
    assert lag.status is HealthStatus.SKIPPED  # this server has no replicas
