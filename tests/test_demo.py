"""``dbopt demo`` end to end: on the test server (``--dsn``) and on an embedded server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbopt.cli import main
from dbopt.testing import libpq_url, postgres_server_url

SECTIONS = [
    "Schema and data",
    "The application's workload",
    "N+1 queries",
    "Slow queries",
    "Index recommendations",
    "Schema lint and health",
    "Partitions of user_interactions",
    "Connection pool",
    "Report",
]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with postgres_server_url() as url:
        yield url


def _demo_databases(server_url: str) -> set[str]:
    with psycopg.connect(libpq_url(server_url)) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'dbopt\\_demo\\_%'"
        ).fetchall()
    return {r[0] for r in rows}


def test_demo_small_on_a_server(
    server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _demo_databases(server_url)
    report = tmp_path / "demo.html"
    assert (
        main(["demo", "--dsn", server_url, "--small", "-o", str(report), "--pool-seconds", "1"])
        == 0
    )
    out = capsys.readouterr().out
    positions = [out.index(title) for title in SECTIONS]
    assert positions == sorted(positions)  # every section, in order
    # N+1s found, with the relationship and the fix, and fewer queries after eager.auto
    assert "queries of Course.modules from workload.py" in out
    assert "fix: selectinload(Course.modules)" in out
    assert "N+1 findings with eager.auto: 0" in out
    data = json.loads(report.with_suffix(".json").read_text())
    n1 = data["nplusone"]
    assert n1["after"] < n1["before"]
    assert all(r["after"] <= 3 for r in n1["requests"])
    # slow queries come with plans
    assert data["slow_queries"]
    assert any(q["plan"] for q in data["slow_queries"])
    # the advisor recommended indexes, they were applied and timed
    advisor = data["advisor"]
    assert advisor["recommendations"]
    assert advisor["applied"]
    assert all(m["before_ms"] > 0 and m["after_ms"] > 0 for m in advisor["applied"])
    assert any(r["table"] == "user_interactions" for r in advisor["recommendations"])
    # lint, partitions, pool
    assert any(f["code"] == "LINT001" for f in data["findings"]["Schema lint"])
    kinds = [op["kind"] for op in data["partitions"]["plan"]["operations"]]
    assert "create_partition" in kinds
    assert "detach_partition" in kinds
    assert data["partitions"]["maintenance"]["ok"]
    assert data["partitions"]["check"]["ok"]
    statuses = {p["status"] for p in data["partitions"]["partitions"]}
    assert statuses == {"existing", "created", "detached"}
    assert data["pool"]["preset"]["pool_size"] >= 1
    assert data["pool"]["snapshot"]["checkouts"] > 0
    assert data["pool"]["samples"]
    page = report.read_text()
    assert page.count("<svg") >= 4
    assert str(report.resolve()) in out
    # the demo's database is gone
    assert _demo_databases(server_url) == before


def test_ctrl_c_cleans_up(server_url: str, tmp_path: Path) -> None:
    before = _demo_databases(server_url)
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "dbopt",
            "demo",
            "--dsn",
            server_url,
            "--small",
            "-o",
            str(tmp_path / "r.html"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Schema and data" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    created = _demo_databases(server_url) - before
    assert len(created) == 1  # the demo's database exists while it runs
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert _demo_databases(server_url) == before


@pytest.mark.slow
def test_demo_on_the_embedded_server(tmp_path: Path) -> None:
    pytest.importorskip("pgserver")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "dbopt",
            "demo",
            "--small",
            "--pool-seconds",
            "1",
            "-o",
            str(tmp_path / "embedded.html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: the demo's time is measured in bench/, not here
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "started an embedded PostgreSQL" in result.stdout
    assert "real indexes built in a transaction that is rolled back" in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "embedded.html").exists()
