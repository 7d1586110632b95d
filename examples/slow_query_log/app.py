"""A reporting job with dbopt's slow-query log and in-app statistics attached."""

from __future__ import annotations

import json
import logging
import sys

from sqlalchemy import Engine, create_engine, text

import dbopt
from dbopt.postgres import Explainer
from dbopt.report.text import stats_table


def build(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS example_orders"))
        c.execute(text("CREATE TABLE example_orders (id int PRIMARY KEY, customer int, total int)"))
        c.execute(
            text("INSERT INTO example_orders VALUES (:id, :customer, :total)"),
            [{"id": i, "customer": i % 300, "total": i % 97} for i in range(30_000)],
        )


def report(engine: Engine) -> int:
    """Totals per customer, one query each: the slow way on purpose."""
    grand = 0
    with engine.connect() as c:
        for customer in range(0, 300, 10):
            grand += c.execute(
                text("SELECT sum(total) FROM example_orders WHERE customer = :c"), {"c": customer}
            ).scalar_one()
    return grand


def main(url: str = "sqlite://", stats_path: str = "stats.json") -> dbopt.QueryStats:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    engine = create_engine(url)
    build(engine)
    explainer = Explainer(engine) if engine.dialect.name == "postgresql" else None
    stats = dbopt.QueryStats()
    log = dbopt.QueryLogger(slow_ms=5, explain=explainer)
    with dbopt.instrument(engine, stats, log), dbopt.scope("nightly-report"):
        report(engine)
    log.close()
    if explainer is not None:
        explainer.close()
    print(stats_table(stats.top(5)))
    with open(stats_path, "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh)
    with engine.begin() as c:
        c.execute(text("DROP TABLE example_orders"))
    engine.dispose()
    return stats


if __name__ == "__main__":
    main(*sys.argv[1:2])
