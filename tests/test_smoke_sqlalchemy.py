from __future__ import annotations

from sqlalchemy import Engine, text

import dbopt


def test_engine_events_reach_sinks(pg_engine: Engine) -> None:
    stats = dbopt.QueryStats()
    with dbopt.instrument(pg_engine, stats), dbopt.capture_queries() as q, pg_engine.connect() as c:
        for i in range(3):
            c.execute(text("SELECT CAST(:x AS int)"), {"x": i})
    assert len(q) == 3
    assert len({e.fingerprint for e in q}) == 1
    assert q[0].callsite is not None
    assert q[0].callsite.file == __file__
    assert stats[q[0].fingerprint].calls == 3
