"""Run the research implementations of index selection on a loaded TPC-H database.

Runs inside a separate environment that has psycopg2 and a checkout of
github:hyrise/index_selection_evaluation (Kossmann et al., VLDB 2020; not
committed here): ``bench/advisor_tpch.py`` starts it as

    python tpch_research_driver.py ISE_CHECKOUT DBNAME ALGORITHM BUDGETS_MB QUERIES.json

and reads one JSON object from stdout: per budget, the chosen indexes as
``[table, [columns...]]`` and the seconds it took. Indexable columns per
query follow the research code's own rule (a column whose name appears in
the query text). libpq settings (PGHOST, PGUSER...) come from the
environment. ALGORITHM is ``extend``, ``db2advis``, ``relaxation`` or
``auto_admin`` (budget in MB, except auto_admin: number of indexes).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    ise, dbname, algorithm, budgets, queries_path = sys.argv[1:6]
    sys.path.insert(0, ise)
    from selection.algorithms.auto_admin_algorithm import AutoAdminAlgorithm
    from selection.algorithms.db2advis_algorithm import DB2AdvisAlgorithm
    from selection.algorithms.extend_algorithm import ExtendAlgorithm
    from selection.algorithms.relaxation_algorithm import RelaxationAlgorithm
    from selection.dbms.postgres_dbms import PostgresDatabaseConnector
    from selection.workload import Column, Query, Table, Workload

    algorithms: dict[str, Any] = {
        "extend": ExtendAlgorithm,
        "db2advis": DB2AdvisAlgorithm,
        "relaxation": RelaxationAlgorithm,
        "auto_admin": AutoAdminAlgorithm,
    }
    with open(queries_path) as f:
        texts: dict[str, str] = json.load(f)
    connector = PostgresDatabaseConnector(dbname, autocommit=True)
    rows = connector.exec_fetchall(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    tables: dict[str, Any] = {}
    columns = []
    for table, column in rows:
        if table not in tables:
            tables[table] = Table(table)
        col = Column(column)
        tables[table].add_column(col)
        columns.append(col)
    queries = []
    for nr, text in texts.items():
        query = Query(int(nr), text)
        query.columns = [c for c in columns if c.name in text]
        queries.append(query)
    workload = Workload(queries)
    out: dict[str, Any] = {}
    for budget in [float(b) for b in budgets.split(",")]:
        if algorithm == "auto_admin":
            params: dict[str, Any] = {"max_indexes": int(budget), "max_index_width": 2}
        else:
            params = {"budget_MB": budget, "max_index_width": 2}
        started = time.perf_counter()
        algo = algorithms[algorithm](connector, params)
        indexes = algo.calculate_best_indexes(workload)
        elapsed = time.perf_counter() - started
        out[str(budget)] = {
            "seconds": elapsed,
            "indexes": [[i.columns[0].table.name, [c.name for c in i.columns]] for i in indexes],
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
