"""sqlcommenter tags on a real PostgreSQL server (and SQLite): what the server sees."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text

import dbopt
from dbopt import QueryStats
from dbopt.postgres.render import sqlcommenter
from dbopt.tags import SQLCommenter, tag_sql
from dbopt.testing import libpq_url

_PAIR = re.compile(r"([^=,]+)='((?:[^'\\]|\\.)*)'")
_COMMENT = re.compile(r"/\*([^*]*)\*/;?\s*$")


def parse_comment(sql: str) -> dict[str, str]:
    """The tags of a statement's trailing sqlcommenter comment, decoded per the specification."""
    match = _COMMENT.search(sql)
    if match is None:
        return {}
    return {
        unquote(key): unquote(value.replace("\\'", "'"))
        for key, value in _PAIR.findall(match.group(1))
    }


@pytest.fixture
def tagged(pg_url: str) -> Iterator[tuple[Engine, SQLCommenter]]:
    engine = create_engine(pg_url, pool_size=2)
    commenter = SQLCommenter(per="line", application="shop").attach(engine)
    yield engine, commenter
    commenter.detach()
    engine.dispose()


def test_pg_stat_activity_shows_route_and_call_site_while_it_runs(
    pg_url: str, tagged: tuple[Engine, SQLCommenter]
) -> None:
    engine, _ = tagged
    marker = f"dbopt_tags_{uuid.uuid4().hex[:8]}"
    started = threading.Event()
    line: list[int] = []

    def request() -> None:
        with dbopt.scope("GET /orders/<int:id>"), engine.connect() as conn:
            started.set()
            line.append(_lineno() + 1)
            conn.execute(text(f"SELECT pg_sleep(2), :secret AS {marker}"), {"secret": "s3cr3t"})

    worker = threading.Thread(target=request)
    worker.start()
    seen = ""
    try:
        started.wait(10)
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                    (f"%AS {marker}%",),
                ).fetchone()
                seen = row[0] if row else ""
                time.sleep(0.05)
    finally:
        worker.join(30)
    tags = parse_comment(seen)
    assert tags["route"] == "GET /orders/<int:id>"
    assert tags["callsite"] == f"tests/test_tags.py:{line[0]}"
    assert tags["application"] == "shop"
    assert set(tags) == {"route", "callsite", "application"}
    assert "s3cr3t" not in seen  # the parameter stays a placeholder: $1


def _lineno() -> int:
    import sys

    return sys._getframe(1).f_lineno


@pytest.mark.extensions("pg_stat_statements")
@pytest.mark.usefixtures("pgss_room")
def test_pg_stat_statements_groups_tagged_with_untagged_runs(
    pg_url: str, tagged: tuple[Engine, SQLCommenter]
) -> None:
    engine, commenter = tagged
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.commit()
    # pg_stat_statements evicts its least-used entries when full (pg_stat_statements.max),
    # and another session may reset it: a run during which either happened is repeated
    for _attempt in range(3):
        marker = f"dbopt_pgss_{uuid.uuid4().hex[:8]}"
        sql = text(f"SELECT count(*) AS {marker} FROM pg_class WHERE relpages > :v")
        with engine.connect() as conn:
            dealloc = "SELECT (dealloc, stats_reset)::text FROM pg_stat_statements_info"
            before = conn.exec_driver_sql(dealloc).scalar()
            commenter.detach()
            for v in range(3):
                conn.execute(sql, {"v": v})  # untagged
            commenter.attach(engine)
            for route in ("GET /a", "POST /b"):
                with dbopt.scope(route):
                    for v in range(2):
                        conn.execute(sql, {"v": v})
            rows = conn.execute(
                text("SELECT queryid, calls, query FROM pg_stat_statements WHERE query LIKE :m"),
                {"m": f"%{marker}%"},
            ).all()
            if conn.exec_driver_sql(dealloc).scalar() == before:
                break
    assert len(rows) == 1, rows  # one entry: the comment is not part of the queryid
    assert rows[0].calls == 3 + 2 + 2
    assert "/*" not in rows[0].query  # the text kept is the first one seen (untagged)


def test_hostile_scope_names_stay_inside_the_comment(pg_engine: Engine) -> None:
    hostile = "GET /x*/; DROP TABLE nope; -- ' \" \n %s %(v)s \\ é */"
    commenter = SQLCommenter().attach(pg_engine)
    stats = QueryStats()
    handle = dbopt.instrument(pg_engine, stats)
    try:
        with dbopt.scope(hostile), pg_engine.connect() as conn:
            ran = conn.execute(text("SELECT current_query(), :v"), {"v": 1}).one()
            raw = conn.exec_driver_sql("SELECT current_query()").scalar()
    finally:
        handle.close()
        commenter.detach()
    assert parse_comment(ran[0]) == {"route": hostile}
    assert parse_comment(raw) == {"route": hostile}
    assert ran[1] == 1
    # the hook's statistics group the tagged text with its untagged fingerprint
    [entry] = [s for s in stats.statements() if "current_query(), " in s.example_sql]
    assert entry.fingerprint == dbopt.fingerprint("SELECT current_query(), %(v)s")


def _sent(engine: Engine) -> list[str]:
    """The texts ``engine`` sends to its driver from now on (SQLite has no current_query())."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "after_cursor_execute", record)
    return seen


def test_per_scope_tags_carry_no_call_site_and_vary_only_by_route(
    sqlite_engine: Engine,
) -> None:
    commenter = SQLCommenter(tags={"service": "api"}).attach(sqlite_engine)
    seen = _sent(sqlite_engine)
    try:
        with sqlite_engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # outside any scope
            for _ in range(2):
                with dbopt.scope("GET /a"), dbopt.scope("render"):
                    conn.execute(text("SELECT 1"))
                    conn.execute(text("SELECT 1;"))
    finally:
        commenter.detach()
    assert parse_comment(seen[0]) == {"service": "api"}
    assert parse_comment(seen[1]) == {"service": "api", "route": "GET /a", "scope": "render"}
    assert seen[1] == seen[3]  # same text on each request: statement caches keep working
    assert seen[2].endswith("*/;")
    assert len(set(seen)) == 3


def test_traceparent_of_the_current_span(sqlite_engine: Engine) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk.TracerProvider().get_tracer("test")
    commenter = SQLCommenter(traceparent=True).attach(sqlite_engine)
    seen = _sent(sqlite_engine)
    try:
        with tracer.start_as_current_span("request") as span, sqlite_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        commenter.detach()
    ctx = span.get_span_context()
    assert parse_comment(seen[0]) == {
        "traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    }


def test_rendering_follows_the_sqlcommenter_spec() -> None:
    # the specification's own example (google/sqlcommenter, "Format")
    assert (
        sqlcommenter({"route": "/param*d", "controller": "index", "action": "/param*d"})
        == "/*action='%2Fparam%2Ad',controller='index',route='%2Fparam%2Ad'*/"
    )
    assert sqlcommenter({}) == ""
    assert tag_sql("SELECT 1 ; ", "/*a='b'*/") == "SELECT 1 /*a='b'*/;"
    assert tag_sql("SELECT 1", "") == "SELECT 1"
