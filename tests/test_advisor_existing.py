"""Index advisor: findings on existing indexes, and the leading-prefix rule for candidates."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import ExistingOptions, IndexAdvisor
from dbopt.findings import Finding, Severity
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import forget_load

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT generate_series(1, 1000);
CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int, d int,
                parent_id int REFERENCES parent (id), other_id int REFERENCES parent (id));
INSERT INTO t SELECT n, n % 100, n % 7, n, n % 13, n % 1000 + 1, n % 1000 + 1
  FROM generate_series(1, 50000) n;
CREATE INDEX t_a_idx ON t (a);
CREATE INDEX t_a_copy ON t (a);
CREATE INDEX t_a_b_idx ON t (a, b);
CREATE UNIQUE INDEX t_c_key ON t (c);
CREATE INDEX t_c_idx ON t (c);
CREATE INDEX t_d_idx ON t (d);
CREATE INDEX t_parent_idx ON t (parent_id);
CREATE INDEX t_a_partial ON t (a) WHERE b = 1;
CREATE TABLE events (id int, parent_id int REFERENCES parent (id), at date)
  PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_at_idx ON events (at);
CREATE TABLE dup (v int);
INSERT INTO dup VALUES (1), (1);
ANALYZE;
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_existing") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_v_key ON dup (v)")
            # t_d_idx is used; the others are not.
            conn.execute("SET enable_seqscan = off")
            conn.execute("SELECT count(*) FROM t WHERE d = 3")
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            forget_load(conn)
        yield u


@pytest.fixture(scope="module")
def findings(url: str) -> list[Finding]:
    report = IndexAdvisor(url, existing=ExistingOptions(min_stats_age_s=0)).advise([])
    return report.findings


def by_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def test_duplicate(findings: list[Finding]) -> None:
    dups = by_code(findings, "IDX001")
    assert sorted(f.object for f in dups) == ["public.t_a_copy", "public.t_c_idx"]
    a = next(f for f in dups if "t_a_copy" in f.object)
    # the older twin is kept (lint's keep rule: constraint, attached, unique, oldest)
    assert a.message.startswith("index t_a_copy duplicates t_a_idx on public.t")
    assert a.fix == "DROP INDEX CONCURRENTLY public.t_a_copy;"
    assert a.metadata["lint_code"] == "LINT004"
    c = next(f for f in dups if "t_c_idx" in f.object)
    assert "t_c_key" in c.message  # the unique one is kept
    assert all(f.severity == Severity.WARNING for f in dups)


def test_prefix_covered(findings: list[Finding]) -> None:
    covered = by_code(findings, "IDX002")
    assert [f.object for f in covered] == ["public.t_a_copy", "public.t_a_idx"]
    assert covered[1].message == "index t_a_idx (a) is covered by t_a_b_idx (a, b) on public.t"
    assert all(f.severity == Severity.WARNING for f in covered)


def test_unused(findings: list[Finding]) -> None:
    unused = {f.object for f in by_code(findings, "IDX003")}
    # t_a_b_idx absorbs the scans of the t_a_* indexes it makes redundant: none
    assert "public.t_a_b_idx" in unused
    assert "public.t_a_partial" in unused
    assert "public.events_at_idx" in unused
    assert "public.t_d_idx" not in unused  # scanned once
    assert "public.t_parent_idx" not in unused  # the only index for a foreign key
    assert "public.t_pkey" not in unused
    assert "public.t_c_key" not in unused
    assert "public.t_a_idx" not in unused  # already reported as covered (IDX002)
    assert "public.events_2024_at_idx" not in unused  # partitions follow their parent
    events = next(f for f in by_code(findings, "IDX003") if "events_at_idx" in f.object)
    assert events.fix == (
        "DROP INDEX public.events_at_idx;  -- partitioned index: CONCURRENTLY is not allowed"
    )
    # the same severity as lint's LINT006
    assert {f.severity for f in by_code(findings, "IDX003")} == {Severity.INFO}


def test_invalid(findings: list[Finding]) -> None:
    (invalid,) = by_code(findings, "IDX004")
    assert invalid.object == "public.dup_v_key"
    assert invalid.severity == Severity.ERROR
    assert invalid.fix == "REINDEX INDEX CONCURRENTLY public.dup_v_key;"


def test_unindexed_foreign_keys(findings: list[Finding]) -> None:
    fks = {f.metadata["constraint"]: f for f in by_code(findings, "IDX005")}
    assert set(fks) == {"t_other_id_fkey", "events_parent_id_fkey"}
    assert fks["t_other_id_fkey"].fix == (
        "CREATE INDEX CONCURRENTLY t_other_id_idx ON public.t (other_id);"
    )
    events = fks["events_parent_id_fkey"].fix or ""
    assert "ON ONLY public.events" in events
    assert events.count("CREATE INDEX CONCURRENTLY") == 2
    assert events.count("ATTACH PARTITION") == 2


def test_findings_serialize(findings: list[Finding]) -> None:
    for f in findings:
        d = f.to_dict()
        assert d["code"].startswith("IDX")
        assert d["fix"]


def test_prefix_rule_for_candidates(url: str) -> None:
    advisor = IndexAdvisor(url, findings=False)
    assert advisor.advise(["SELECT * FROM t WHERE a = 5 AND b = 3"]).recommendations == []
    assert advisor.advise(["SELECT * FROM t WHERE a = 5"]).recommendations == []
    report = advisor.advise(["SELECT * FROM t WHERE b = 3 AND d = 2 AND c > 10"])
    assert all(r.columns[0] != "a" for r in report.recommendations)


def test_invalid_index_does_not_cover(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO dup SELECT n FROM generate_series(2, 50000) n")
        conn.execute("ANALYZE dup")
    report = IndexAdvisor(url, findings=False, write_scale=0).advise(
        ["SELECT * FROM dup WHERE v = 42"]
    )
    assert [r.label for r in report.recommendations] == ["public.dup (v)"]


def test_unused_respects_statistics_age(url: str, findings: list[Finding]) -> None:
    # Runs last: it resets this database's statistics.
    assert by_code(findings, "IDX003")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    fresh = IndexAdvisor(url, existing=ExistingOptions(min_stats_age_s=3600)).advise([])
    assert by_code(fresh.findings, "IDX003") == []
    assert by_code(fresh.findings, "IDX001")  # other findings do not depend on the age
    old_enough = IndexAdvisor(url, existing=ExistingOptions(min_stats_age_s=0)).advise([])
    assert by_code(old_enough.findings, "IDX003")
