"""Private by default: a matrix over every output dbopt writes, on PostgreSQL and SQLite.

The workload runs a statement with an inlined literal (``'secret@x.io'``) and a
bound parameter (``'hunter2'``), a failing INSERT whose error quotes the
literal, and an N+1 loop. By default no output holds either value; each
output's opt-in (``params="keep"``, ``--params keep``) shows them.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text

import dbopt
from dbopt.cli import main
from dbopt.core.events import QueryEvent
from dbopt.core.fingerprint import mask_literals
from dbopt.core.logger import scrub_plan
from dbopt.postgres.connect import conninfo

LITERAL = "secret@x.io"
PARAM = "hunter2"
QUERY = f"SELECT id FROM priv_users WHERE email = '{LITERAL}' AND password = :p"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        """Every message and every extra field, as a JSON formatter would write them."""
        out = []
        for r in self.records:
            out.append(r.getMessage())
            for key in ("sql", "params", "plan", "finding"):
                if hasattr(r, key):
                    out.append(json.dumps(getattr(r, key), default=str))
        return "\n".join(out)


@dataclass
class Outputs:
    stats: dbopt.QueryStats
    logger: dbopt.QueryLogger
    log: _Collect
    nplusone: dbopt.NPlusOneDetector
    findings: list[Any] = field(default_factory=list)


def _run(engine: Engine, params: str, explain: Callable[[QueryEvent], Any] | None) -> Outputs:
    name = f"dbopt.test.privacy.{uuid.uuid4().hex}"
    handler = _Collect()
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    findings: list[Any] = []
    out = Outputs(
        stats=dbopt.QueryStats(),
        logger=dbopt.QueryLogger(log, slow_ms=0, params=params, explain=explain),
        log=handler,
        nplusone=dbopt.NPlusOneDetector(action=findings.append, params=params),
        findings=findings,
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS priv_users"))
        conn.execute(
            text(
                "CREATE TABLE priv_users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password TEXT)"
            )
        )
        conn.execute(text(f"INSERT INTO priv_users VALUES (1, '{LITERAL}', 'x')"))
    with dbopt.instrument(engine, out.stats, out.logger, out.nplusone):
        with dbopt.scope("request"), engine.connect() as conn:
            for p in (PARAM, PARAM + "!"):  # two values from one line: an N+1
                conn.execute(text(QUERY), {"p": p}).all()
        with engine.connect() as conn, pytest.raises(Exception, match=r"(?i)unique"):
            conn.execute(text(f"INSERT INTO priv_users VALUES (2, '{LITERAL}', :p)"), {"p": PARAM})
    out.logger.flush()
    out.logger.close()
    return out


def _stats_json(out: Outputs, params: str) -> str:
    return json.dumps(out.stats.to_dict(params=params), allow_nan=False)


def _outputs(out: Outputs, params: str) -> dict[str, str]:
    """Each output as text; ``params`` is the opt-in of the outputs that take one."""
    return {
        "QueryStats.to_dict": _stats_json(out, params),
        "QueryLogger records": out.log.text(),
        "QueryLogger.plans": json.dumps(out.logger.plans),
        "N+1 findings": "\n".join(
            f.describe() + json.dumps(f.to_dict()) for f in out.nplusone.findings
        ),
    }


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        eng = create_engine(url)
    else:
        eng = create_engine("sqlite://")
    yield eng
    eng.dispose()


def _explain_for(engine: Engine) -> Callable[[QueryEvent], Any] | None:
    """EXPLAIN with the real values, on a connection of its own (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return None
    conn = psycopg.connect(conninfo(engine.url.render_as_string(hide_password=False)))
    conn.autocommit = True

    def explain(event: QueryEvent) -> Any:
        row = conn.execute("EXPLAIN (FORMAT JSON) " + event.sql, event.parameters).fetchone()
        return row[0] if row else None

    return explain


def test_no_value_by_default(engine: Engine) -> None:
    out = _run(engine, "redact", _explain_for(engine))
    texts = _outputs(out, "redact")
    assert out.nplusone.findings, "the loop is an N+1"
    if engine.dialect.name == "postgresql":
        assert out.logger.plans, "slow SELECTs were explained"
    assert "failed after" in texts["QueryLogger records"]
    for name, body in texts.items():
        assert LITERAL not in body, name
        assert PARAM not in body, name
    # The outputs still say what ran.
    assert "priv_users" in texts["QueryStats.to_dict"]
    assert "priv_users" in texts["N+1 findings"]


def test_each_opt_in_shows_the_values(engine: Engine) -> None:
    out = _run(engine, "keep", _explain_for(engine))
    texts = _outputs(out, "keep")
    for name in ("QueryStats.to_dict", "QueryLogger records"):
        assert LITERAL in texts[name], name
        assert PARAM in texts[name], name
    assert LITERAL in texts["N+1 findings"]  # the text as run; parameters are never kept
    if engine.dialect.name == "postgresql":
        assert LITERAL in texts["QueryLogger.plans"]
        assert PARAM in texts["QueryLogger.plans"]
    # A QueryStats output's own opt-in works whatever the logger's policy.
    redacted = _run(engine, "redact", None)
    assert LITERAL in _stats_json(redacted, "keep")
    assert LITERAL not in _stats_json(redacted, "redact")


@pytest.mark.postgres
def test_cli_json_outputs(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine(pg_url)
    try:
        out = _run(engine, "redact", None)
    finally:
        engine.dispose()
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(_stats_json(out, "keep"))  # a file that holds the values
    assert LITERAL in stats_file.read_text()
    report = tmp_path / "report.json"
    html = tmp_path / "report.html"

    def run(args: list[str]) -> str:
        assert main(args) == 0
        return capsys.readouterr().out

    cases = {
        "stats --format json": ["stats", str(stats_file), "--format", "json"],
        "report --format json": [
            "report",
            "--stats",
            str(stats_file),
            "--format",
            "json",
            "-o",
            str(report),
        ],
        "report (html)": ["report", "--stats", str(stats_file), "-o", str(html)],
        "advise --format json": [
            "advise",
            str(stats_file),
            "--dsn",
            pg_url,
            "--format",
            "json",
            "--fail-on",
            "none",
        ],
    }
    for name, args in cases.items():
        for policy in ("redact", "keep"):
            printed = run([*args, "--params", policy] if policy == "keep" else args)
            body = printed
            if "-o" in args:
                body = Path(args[args.index("-o") + 1]).read_text()
            if policy == "redact":
                assert LITERAL not in body, name
                assert PARAM not in body, name
                assert "priv_users" in body, name
            elif name != "report (html)":  # the HTML shows normalized texts only
                assert LITERAL in body, name


def test_mask_literals_keeps_a_runnable_statement(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS priv_m (id int, d date, s text)"))
    masked = mask_literals(
        "SELECT id FROM priv_m WHERE s = 'secret' AND d > DATE '2024-01-01' AND id = -5"
    )
    assert "secret" not in masked
    assert "2024" not in masked
    assert "5" not in masked
    with psycopg.connect(conninfo(pg_engine.url.render_as_string(hide_password=False))) as conn:
        conn.execute(f"PREPARE priv_q AS {masked}")  # parses and plans with $n parameters
        conn.execute("DEALLOCATE priv_q")


def test_scrub_plan_masks_constants_only() -> None:
    plan = [
        {
            "Plan": {
                "Node Type": "Index Scan",
                "Relation Name": "events_2024",
                "Index Cond": "(id = 42)",
                "Filter": "((email = 'a@b.c'::text) AND (score > -1.5))",
                "Output": ["id", "'x'::text"],
                "Total Cost": 8.3,
            }
        }
    ]
    node = scrub_plan(plan)[0]["Plan"]
    assert node["Relation Name"] == "events_2024"
    assert node["Index Cond"] == "(id = ?)"
    assert node["Filter"] == "((email = ?::text) AND (score > ?))"
    assert node["Output"] == ["id", "?::text"]
    assert node["Total Cost"] == 8.3


class _Hostile(dict[Any, Any]):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __iter__(self) -> Any:
        raise RuntimeError("no iter")

    def items(self) -> Any:
        raise RuntimeError("no items")


class _BadKey:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __hash__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "params",
    [
        _Hostile(a=1),
        {_BadKey(): 1, 2: float("nan"), (3, 4): float("inf")},
        [float("-inf"), {"x": float("nan")}],
        {"blob": b"\x00" * 10},
    ],
)
@pytest.mark.parametrize("policy", ["redact", "keep", "drop"])
def test_to_dict_survives_hostile_parameters(params: Any, policy: str) -> None:
    stats = dbopt.QueryStats()
    conn = __import__("sqlite3").connect(":memory:")
    try:
        db = dbopt.wrap_dbapi(conn, stats)
        db.execute("SELECT 1")
    finally:
        conn.close()
    entry = stats.statements()[0]
    entry.example_params = params
    entry.total_time = math.inf
    entry.samples.append(math.nan)
    data = stats.to_dict(params=policy)
    json.dumps(data, allow_nan=False)  # no NaN, no Infinity
    assert data["statements"][0]["total_time"] == 0.0
