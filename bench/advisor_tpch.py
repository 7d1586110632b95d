"""dbopt's index advisor against the research implementations on TPC-H, under storage budgets.

Data and queries come from TPC-H's own ``dbgen``/``qgen``, built from source
(github:electrum/tpch-dbgen; not committed): load the ``.tbl`` files into a
scratch database (no keys, no indexes, as in the research configuration),
``VACUUM ANALYZE`` and ``CREATE EXTENSION hypopg``. The research code is
github:hyrise/index_selection_evaluation (Kossmann et al., "Magic mirror in
my hand...", VLDB 2020), run unchanged in its own virtualenv (psycopg2)
through ``bench/tpch_research_driver.py``.

For each storage budget (MB): dbopt (``IndexAdvisor(max_total_bytes=...,
max_indexes=None)``, defaults otherwise) and Extend (``budget_MB``,
``max_index_width=2``, its research configuration) choose indexes for the 19
queries of the research configuration (TPC-H without 2, 17 and 20); every
index set is priced the same way, with hypopg (sum of EXPLAIN costs of the 19
queries with exactly those hypothetical indexes, relative to no index), and
its real size is measured by building each index. At ``--runtime-budget``
the two sets are also timed for real: paired, interleaved repetitions (build
one set, run the 19 queries once, drop it; then the other; order alternating),
as a share of the no-index time measured in the same run. Finally all 22
queries are advised once (nothing rejected).

Run::

    python bench/advisor_tpch.py --url postgresql://postgres@127.0.0.1:5432/tpch_t \\
        --qgen /tmp/tpch-dbgen --ise /tmp/ise --ise-python /tmp/isevenv/bin/python

Note: Extend's budget counts hypopg's size estimates, dbopt's counts its
built-size estimates (deduplication included); both sets are reported with
their measured built sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from _common import describe_machine, print_table

from dbopt.advisor import IndexAdvisor
from dbopt.postgres.render import ident

RESEARCH = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 21, 22]


def generate_queries(qgen_dir: str, seed: int) -> dict[int, str]:
    """The 22 TPC-H queries from qgen, made PostgreSQL-ready (LIMIT, interval syntax)."""
    out: dict[int, str] = {}
    env = {**os.environ, "DSS_QUERY": os.path.join(qgen_dir, "queries")}
    for n in range(1, 23):
        text = subprocess.run(  # noqa: S603 - the user's own qgen build
            ["./qgen", "-s", "1", "-r", str(seed), str(n)],
            cwd=qgen_dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        text = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        text = re.sub(r";?\s*where rownum <= -1;", ";", text)
        text = re.sub(r";?\s*where rownum <= (\d+);", r"\nlimit \1;", text)
        text = re.sub(r"interval '(\d+)' day \(3\)", r"interval '\1' day", text)
        out[n] = text.strip()
    return out


def _parts(text: str) -> list[str]:
    return [p.strip() for p in text.split(";") if p.strip()]


def _main_query(text: str) -> tuple[list[str], str]:
    """(setup statements such as CREATE VIEW, the SELECT)."""
    parts = _parts(text)
    setup = [p for p in parts if p.lower().startswith("create view")]
    select = next(p for p in parts if p.lower().lstrip().startswith("select"))
    return setup, select


def price(conn: psycopg.Connection[Any], ddls: Sequence[str], queries: dict[int, str]) -> float:
    """Sum of EXPLAIN costs of ``queries`` with exactly ``ddls`` as hypothetical indexes."""
    conn.execute("SELECT hypopg_reset()")
    for ddl in ddls:
        conn.execute("SELECT * FROM hypopg_create_index(%s)", (ddl,))
    total = 0.0
    for text in queries.values():
        setup, select = _main_query(text)
        with conn.transaction(force_rollback=True):
            for s in setup:
                conn.execute(s)
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {select}").fetchone()
        assert row is not None
        total += float(row[0][0]["Plan"]["Total Cost"])
    conn.execute("SELECT hypopg_reset()")
    return total


def plain_ddl(ddl: str) -> str:
    """A recommendation's DDL without CONCURRENTLY / IF NOT EXISTS / name."""
    ddl = ddl.replace("CONCURRENTLY ", "").replace("IF NOT EXISTS ", "")
    return re.sub(r'^CREATE INDEX "[^"]+" ON', "CREATE INDEX ON", ddl)


def extend_ddl(table: str, columns: Sequence[str]) -> str:
    cols = ", ".join(ident(c, force=True) for c in columns)
    return f"CREATE INDEX ON {ident(table, force=True)} ({cols})"


_BUILT: dict[str, int] = {}


def built_size(conn: psycopg.Connection[Any], ddl: str) -> int:
    """Bytes of ``ddl`` built for real (then dropped); cached per definition."""
    if ddl not in _BUILT:
        name = "dbopt_bench_size"
        conn.execute(ddl.replace("CREATE INDEX ON", f"CREATE INDEX {name} ON", 1))
        row = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
        conn.execute(f"DROP INDEX {name}")
        _BUILT[ddl] = int(row[0]) if row else 0
    return _BUILT[ddl]


QUERY_TIMEOUT_S = 120


def run_queries(conn: psycopg.Connection[Any], queries: dict[int, str]) -> float:
    """Seconds to run every query once; a query over QUERY_TIMEOUT_S counts as that."""
    total = 0.0
    for text in queries.values():
        setup, select = _main_query(text)
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL statement_timeout = '{QUERY_TIMEOUT_S}s'")
            for s in setup:
                conn.execute(s)
            started = time.perf_counter()
            try:
                with conn.transaction():
                    conn.execute(select).fetchall()
                total += time.perf_counter() - started
            except psycopg.errors.QueryCanceled:
                total += QUERY_TIMEOUT_S
    return total


def timed_with(
    conn: psycopg.Connection[Any], ddls: Sequence[str], queries: dict[int, str]
) -> float:
    names = []
    for i, ddl in enumerate(ddls):
        name = f"dbopt_bench_rt_{i}"
        conn.execute(ddl.replace("CREATE INDEX ON", f"CREATE INDEX {name} ON", 1))
        names.append(name)
    conn.execute("ANALYZE")
    try:
        return run_queries(conn, queries)
    finally:
        for name in names:
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def dbopt_choice(
    url: str, queries: dict[int, str], budget_mb: float | None
) -> tuple[list[str], float]:
    started = time.perf_counter()
    budget = int(budget_mb * 1024 * 1024) if budget_mb is not None else None
    report = IndexAdvisor(url, findings=False, max_total_bytes=budget, max_indexes=None).advise(
        list(queries.values())
    )
    assert not report.errors, report.errors
    ddls = [plain_ddl(r.ddl[0]) for r in report.recommendations]
    return ddls, time.perf_counter() - started


def dbopt_choice_in(
    src: str, args: argparse.Namespace, budget_mb: float | None
) -> tuple[list[str], float]:
    """dbopt's choice made by the source tree ``src`` (another version), in a subprocess."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(src, "src"), here])}
    cmd = [sys.executable, os.path.abspath(__file__), "--url", args.url, "--qgen", args.qgen,
           "--ise", args.ise, "--ise-python", args.ise_python, "--seed", str(args.seed),
           "--advise-only", "none" if budget_mb is None else str(budget_mb)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603
    data = json.loads(out.strip().splitlines()[-1])
    return list(data["ddls"]), float(data["seconds"])


def compare_versions(
    conn: psycopg.Connection[Any],
    args: argparse.Namespace,
    research: dict[int, str],
    base: float,
    budgets: Sequence[float],
) -> list[dict[str, Any]]:
    """Advise time and result of ``--baseline-src`` and this tree, alternating, per budget."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    versions = {"before": args.baseline_src, "after": here}
    rows, out = [], []
    for i, b in enumerate(budgets):
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        got = {v: dbopt_choice_in(versions[v], args, b) for v in order}
        rel = {v: price(conn, got[v][0], research) / base for v in got}
        same = sorted(got["before"][0]) == sorted(got["after"][0])
        rows.append([f"{b:.0f}", f"{got['before'][1]:.1f}", f"{got['after'][1]:.1f}",
                     f"{got['before'][1] / got['after'][1]:.1f}x", f"{rel['before']:.3f}",
                     f"{rel['after']:.3f}", "yes" if same else "no"])  # fmt: skip
        out.append({"budget": b, "seconds": {v: got[v][1] for v in got}, "relative_cost": rel,
                    "same_indexes": same})  # fmt: skip
    print("\nadvise time, the version before (--baseline-src) and this one, alternating")
    print_table(["budget MB", "before s", "after s", "speed-up", "before rel. cost",
                 "after rel. cost", "same indexes"], rows)  # fmt: skip
    return out


def research_choice(
    args: argparse.Namespace, algorithm: str, queries: dict[int, str], budgets: Sequence[float]
) -> dict[float, tuple[list[str], float]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({str(k): v for k, v in queries.items()}, f)
    info = psycopg.conninfo.conninfo_to_dict(args.url)
    env = {
        **os.environ,
        "PGHOST": str(info.get("host", "127.0.0.1")),
        "PGPORT": str(info.get("port", 5432)),
        "PGUSER": str(info.get("user", "postgres")),
    }
    driver = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tpch_research_driver.py")
    out = subprocess.run(  # noqa: S603 - the user's research checkout
        [args.ise_python, driver, args.ise, str(info["dbname"]), algorithm,
         ",".join(str(b) for b in budgets), f.name],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    return {
        float(b): ([extend_ddl(t, cols) for t, cols in v["indexes"]], float(v["seconds"]))
        for b, v in data.items()
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/tpch_t")
    p.add_argument("--qgen", required=True, help="built tpch-dbgen directory (qgen)")
    p.add_argument("--ise", required=True, help="index_selection_evaluation checkout")
    p.add_argument("--ise-python", required=True, help="python with psycopg2 for it")
    p.add_argument("--budgets", default="100,250,500,1000,1500")
    p.add_argument("--algorithms", default="extend")
    p.add_argument("--runtime-budget", type=float, default=500.0)
    p.add_argument("--reps", type=int, default=3, help="0: no real runtime")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--baseline-src", help="another dbopt checkout: compare its advise time")
    p.add_argument("--compare-only", action="store_true", help="only the before/after timing")
    p.add_argument("--advise-only", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.advise_only is None:
        print(describe_machine())
    queries = generate_queries(args.qgen, args.seed)
    research = {n: queries[n] for n in RESEARCH}
    budgets = [float(b) for b in args.budgets.split(",")]
    results: dict[str, Any] = {"budgets": budgets}
    if args.advise_only is not None:
        budget = None if args.advise_only == "none" else float(args.advise_only)
        ddls, seconds = dbopt_choice(args.url, research, budget)
        print(json.dumps({"ddls": ddls, "seconds": seconds}))
        return results
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '600s'")
        base = price(conn, [], research)
        if args.baseline_src:
            results["versions"] = compare_versions(conn, args, research, base, budgets)
            if args.compare_only:
                return results
        chosen: dict[str, dict[float, tuple[list[str], float]]] = {}
        for algorithm in args.algorithms.split(","):
            chosen[algorithm] = research_choice(args, algorithm, research, budgets)
        chosen["dbopt"] = {b: dbopt_choice(args.url, research, b) for b in budgets}
        rows = []
        for b in budgets:
            for method, per in chosen.items():
                ddls, seconds = per[b]
                rel = price(conn, ddls, research) / base
                size = sum(built_size(conn, d) for d in ddls)
                rows.append([f"{b:.0f}", method, f"{rel:.3f}", str(len(ddls)),
                             f"{size / 1e6:.0f}", f"{seconds:.1f}"])  # fmt: skip
                results.setdefault(method, {})[str(b)] = {
                    "relative_cost": rel, "indexes": ddls, "built_mb": size / 1e6,
                    "seconds": seconds,
                }  # fmt: skip
        print("\nrelative estimated cost (hypopg, no index = 1), built sizes measured")
        print_table(["budget MB", "method", "rel. cost", "indexes", "built MB", "advise s"], rows)
        nobudget, seconds = dbopt_choice(args.url, research, None)
        rel = price(conn, nobudget, research) / base
        size = sum(built_size(conn, d) for d in nobudget)
        print(f"\ndbopt without a budget: {rel:.3f}, {len(nobudget)} indexes, "
              f"{size / 1e6:.0f} MB built, {seconds:.1f} s")  # fmt: skip
        results["dbopt_no_budget"] = {"relative_cost": rel, "built_mb": size / 1e6}
        report = IndexAdvisor(args.url, findings=False).advise(list(queries.values()))
        print(f"all 22 queries: {len(report.statements)} statement(s) advised, "
              f"{len(report.errors)} error(s), "
              f"{len(report.recommendations)} recommendation(s)")  # fmt: skip
        for err in report.errors:
            print(f"  error: {err.message}")
        results["all22_errors"] = len(report.errors)
        if args.reps > 0 and args.runtime_budget in budgets:
            b = args.runtime_budget
            methods = ["dbopt", "extend"]
            for m in methods:
                print(f"\nindexes at {b:.0f} MB, {m} (built sizes):")
                for ddl in chosen[m][b][0]:
                    print(f"  {built_size(conn, ddl) / 1e6:7.1f} MB  {ddl}")
            times: dict[str, list[float]] = {m: [] for m in [*methods, "none"]}
            times["none"].append(run_queries(conn, research))
            orders = []
            for rep in range(args.reps):
                order = methods if rep % 2 == 0 else methods[::-1]
                orders.append(order[0])
                for m in order:
                    times[m].append(timed_with(conn, chosen[m][b][0], research))
                print(f"  pair {rep + 1} ({order[0]} first): dbopt {times['dbopt'][-1]:.1f} s, "
                      f"extend {times['extend'][-1]:.1f} s", flush=True)  # fmt: skip
            times["none"].append(run_queries(conn, research))
            none = statistics.median(times["none"])
            print("  no index: " + ", ".join(f"{t:.1f} s" for t in times["none"]))
            print(f"\nreal runtime at {b:.0f} MB, {args.reps} paired interleaved repetitions "
                  f"(share of the no-index time, {none:.1f} s):")  # fmt: skip
            for m in methods:
                shares = [t / none for t in times[m]]
                print(f"  {m}: median {statistics.median(shares):.3f}  "
                      + " ".join(f"{s:.3f}" for s in shares))  # fmt: skip
            wins = sum(a <= b for a, b in zip(times["dbopt"], times["extend"], strict=True))
            print(f"  dbopt at or below Extend in {wins} of {args.reps} pairs")
            results["runtime"] = times
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
