"""Risk-aware pricing of repeated index probes (dbopt.advisor.risk), on a real server.

``facts.grp`` has 500 rows per key in random physical order. The workload
reaches ``dims`` only through a filter on ``regions``, so the planner plans
the probes into ``facts`` as if all 1,000 dims rows probed it (sharing the
cached heap pages between them) while the plan probes 100 times: the
TPC-H Q7/Q21 mistake (``lineitem (l_suppkey)``, 10,000 suppliers assumed,
400-800 probes). The table fits in ``shared_buffers``, so with the default
cache the probes are harmless and the index is recommended; with a cache
smaller than the table (``probe_cache_bytes``) every probe reads its pages
again and the advisor must reject the index and say why. ``note`` is too
wide to INCLUDE (an index-only scan would avoid the heap: no risk).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE regions (id int NOT NULL, name text NOT NULL);
CREATE TABLE dims (id int NOT NULL, region_id int NOT NULL);
CREATE TABLE facts (id int NOT NULL, grp int NOT NULL, note text NOT NULL);
INSERT INTO regions SELECT g, 'r' || g FROM generate_series(0, 9) g;
INSERT INTO dims SELECT g, g % 10 FROM generate_series(0, 999) g;
INSERT INTO facts SELECT g, abs(hashint4(g)) % 1000, md5(g::text) || md5((-g)::text)
FROM generate_series(1, 500000) g;
"""

QUERY = (
    "SELECT max(f.note) FROM regions r JOIN dims d ON d.region_id = r.id"
    " JOIN facts f ON f.grp = d.id WHERE r.name = 'r7'"
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_risk") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE")
        yield u


def _labels(report: object) -> list[str]:
    return [r.label for r in report.recommendations]  # type: ignore[attr-defined]


def test_probes_within_shared_buffers_are_trusted(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise([QUERY])
    assert any("facts (grp)" in label for label in _labels(report)), report.rejected
    assert not [r for r in report.rejected if r.reason == "probe_risk"]


def test_probes_that_reread_the_heap_are_rejected_with_the_reason(url: str) -> None:
    small = 1024 * 1024  # 128 pages: facts has about 6,700
    report = IndexAdvisor(url, findings=False, probe_cache_bytes=small).advise([QUERY])
    assert not any("facts (grp)" in label for label in _labels(report))
    risky = [r for r in report.rejected if r.reason == "probe_risk"]
    assert [r.label for r in risky] == ["public.facts (grp)"], report.rejected
    message = risky[0].message
    assert "100 nested-loop probes of ~500 rows on public.facts" in message, message
    assert "makes them slower" in message, message
    assert "probe_risk" in {r["reason"] for r in report.to_dict()["rejected"]}
    # turned off, the planner's price is trusted again
    trusting = IndexAdvisor(url, findings=False, probe_cache_bytes=small, probe_risk=False)
    assert any("facts (grp)" in label for label in _labels(trusting.advise([QUERY])))


def test_the_probes_really_read_the_pages_the_model_charges(url: str) -> None:
    """The model's premise, on the executor: with the index built, the plan probes
    100 times and touches about 50,000 heap pages of a 6,700-page table."""
    with (
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute("CREATE INDEX facts_grp_probe ON facts (grp)")
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {QUERY}").fetchone()
        pages = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'facts'")
        relpages = int(pages.fetchone()[0])  # type: ignore[index]
    assert plan is not None
    stack = [plan[0][0]["Plan"]]
    scans = []
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", ()))
        if node.get("Relation Name") == "facts":
            scans.append(node)
    assert len(scans) == 1
    assert scans[0]["Node Type"] in ("Index Scan", "Bitmap Heap Scan")
    scan = scans[0]
    assert scan["Actual Loops"] == 100
    touched = scan["Shared Hit Blocks"] + scan["Shared Read Blocks"]
    assert touched > 5 * relpages, (touched, relpages)


def test_cli_no_probe_risk(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dbopt.cli import ExitCode, main

    path = tmp_path / "workload.sql"
    path.write_text(QUERY + ";\n")
    assert main(["advise", str(path), "--dsn", url, "--no-probe-risk", "--format", "sql"]) == (
        ExitCode.OK
    )
    assert '"public"."facts" USING btree ("grp")' in capsys.readouterr().out
