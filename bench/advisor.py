"""dbopt's index advisor next to Dexter's and Supabase index_advisor's methods.

Scenario ``platform``: the learning-platform schema of seed document 001
(users, courses, modules, content, sessions, 1M interactions partitioned by
month, video/quiz interactions, progress and analytics tables) with
generated data, a workload of 35 realistic statements with real parameters
and call counts, and a little write traffic so pg_stat_user_tables has
something to charge. Three methods advise on the same database and
workload:

* ``dbopt``: ``IndexAdvisor.advise`` (hypopg, workload-wide selection).
* ``dexter``: Dexter's method, implemented here: one statement at a time,
  single-column then two-column hypothetical indexes on every column the
  statement mentions, kept when the cost falls by 50 %, at most 2 columns.
* ``supabase``: Supabase index_advisor's method, implemented here: a
  hypothetical single-column index on every column of every table, and every
  one the plan then uses is recommended (no threshold).

For each: the time it took, the number and size of its indexes, the
estimated workload cost (calls x hypopg plan cost) with its indexes, and the
measured workload time (calls x median execution time) after building them
for real; indexes are dropped between methods.

Scenario ``wide``: 30 tables, 100 distinct statements; how long ``advise``
takes (target: under 30 s with hypopg).

Run: ``python bench/advisor.py`` (``--quick`` for a small, fast run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from _common import describe_machine, mark, postgres_url, print_table

from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.advisor.analyze import Analyzer
from dbopt.advisor.catalog import Catalog, load_catalog
from dbopt.advisor.evaluate import ExplainError, HypoEvaluator, Target, explain
from dbopt.advisor.model import IndexSpec, KeyElem
from dbopt.postgres.render import ident
from dbopt.testing import libpq_url


def quote_ident(name: str) -> str:
    """Always-quoted identifier (as the advisor prints them)."""
    return ident(name, force=True)


# Supabase index_advisor: int8, bool, date, timestamptz, timestamp, float8, int4, int2,
# float4, time, uuid, numeric, text, char, bpchar, varchar.
SUPABASE_TYPES = frozenset(
    {"int8", "bool", "date", "timestamptz", "timestamp", "float8", "int4", "int2", "float4",
     "time", "uuid", "numeric", "text", "char", "bpchar", "varchar"}
)  # fmt: skip


@dataclass
class MethodResult:
    """What one method recommended and what it bought."""

    name: str
    seconds: float
    specs: list[IndexSpec] = field(default_factory=list)
    est_cost: float = 0.0
    size_bytes: int = 0
    measured_ms: float = 0.0


def _targets(
    conn: psycopg.Connection[Any], catalog: Catalog, workload: list[WorkloadStatement]
) -> list[Target]:
    targets = []
    for i, stmt in enumerate(workload):
        text, values = stmt.parse_text()
        shape = Analyzer(catalog, lambda oid: catalog.viewdef(conn, oid), values).analyze(text)
        tables = frozenset(catalog.root(a.relation).oid for a in shape.accesses)
        targets.append(
            Target(i, stmt, text, stmt.explain_mode(shape.params), shape.params, shape, tables)
        )
    return targets


def _columns_in(target: Target) -> set[str]:
    import pglast
    from pglast import ast

    names: set[str] = set()
    stack: list[Any] = [pglast.parse_sql(target.text)[0].stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ColumnRef):
            last = node.fields[-1]
            if isinstance(last, ast.String):
                names.add(last.sval)
        if isinstance(node, ast.Node):
            for slot in type(node).__slots__:  # type: ignore[attr-defined]
                value = getattr(node, slot, None)
                stack.extend(value if isinstance(value, tuple) else [value])
    return names


def _single_indexed(catalog: Catalog, oid: int) -> set[str]:
    from dbopt.advisor.existing import existing_specs

    specs = existing_specs(catalog)
    out = set()
    for index in catalog.indexes_on(oid):
        spec = specs.get(index.oid)
        if spec and index.valid and spec.method == "btree" and spec.keys[0].is_column:
            out.add(spec.keys[0].columns[0])
            if len(spec.keys) > 1:
                out.add((spec.keys[0].columns[0], spec.keys[1].columns[0]))  # type: ignore[arg-type]
    return out


def dexter_method(
    conn: psycopg.Connection[Any], catalog: Catalog, targets: list[Target]
) -> list[IndexSpec]:
    """Dexter: singles then 2-column permutations on mentioned columns; 50 % saving; <= 2 cols."""
    hypo = catalog.extensions["hypopg"]
    fn = f"{quote_ident(hypo)}."
    cols_by_table: dict[int, set[str]] = {}
    for t in targets:
        mentioned = _columns_in(t)
        for oid in t.tables:
            rel = catalog.relations[oid]
            ok = {
                c
                for c in mentioned
                if c in rel.columns and rel.columns[c].typname not in ("json", "jsonb")
            }
            cols_by_table.setdefault(oid, set()).update(ok)
    conn.execute(f"SELECT {fn}hypopg_reset()")
    costs: list[list[Any]] = [[] for _ in targets]

    def plan_all() -> None:
        for i, t in enumerate(targets):
            try:
                costs[i].append(explain(conn, t)[0]["Plan"])
            except ExplainError:
                costs[i].append(None)

    names: dict[str, tuple[int, tuple[str, ...]]] = {}

    def create(oid: int, cols: tuple[str, ...]) -> None:
        rel = catalog.relations[oid]
        ddl = (
            f"CREATE INDEX ON {quote_ident(rel.schema)}.{quote_ident(rel.name)} "
            f"({', '.join(quote_ident(c) for c in cols)})"
        )
        row = conn.execute(f"SELECT indexname FROM {fn}hypopg_create_index(%s)", (ddl,)).fetchone()
        if row:
            names[row[0]] = (oid, cols)

    plan_all()
    for oid, cols in cols_by_table.items():
        for c in sorted(cols):
            create(oid, (c,))
    plan_all()
    for oid, cols in cols_by_table.items():
        for a in sorted(cols):
            for b in sorted(cols):
                if a != b:
                    create(oid, (a, b))
    plan_all()
    conn.execute(f"SELECT {fn}hypopg_reset()")

    covered = {oid: _single_indexed(catalog, oid) for oid in cols_by_table}

    def used(plan: Any) -> list[tuple[int, tuple[str, ...]]]:
        out, stack = [], [plan]
        while stack:
            node = stack.pop()
            name = node.get("Index Name")
            if name in names:
                oid, cols = names[name]
                key = cols[0] if len(cols) == 1 else cols
                if key not in covered.get(oid, set()) and (oid, cols) not in out:
                    out.append((oid, cols))
            stack.extend(node.get("Plans", ()))
        return out

    chosen: list[tuple[int, tuple[str, ...]]] = []
    for plans in costs:
        if any(p is None for p in plans):
            continue
        start, c1, c2 = (float(p["Total Cost"]) for p in plans)
        if start < 100:  # Dexter's "low initial cost"
            continue
        saving1 = c1 < start * 0.5
        saving2 = c1 > 100 and c2 < c1 * 0.5
        indexes = used(plans[2] if saving2 else plans[1])
        if saving2 and len(indexes) > 1:
            indexes, saving2 = used(plans[1]), False
        if (saving1 or saving2) and len(indexes) <= 2:
            chosen.extend(i for i in indexes if i not in chosen)
    multi = {(oid, cols[:1]) for oid, cols in chosen if len(cols) > 1}
    final = [i for i in chosen if i not in multi]
    return [IndexSpec(oid, "btree", tuple(KeyElem.column(c) for c in cols)) for oid, cols in final]


def supabase_method(
    conn: psycopg.Connection[Any], catalog: Catalog, targets: list[Target]
) -> list[IndexSpec]:
    """Supabase index_advisor: a single-column index on every column; keep what plans use."""
    fn = f"{quote_ident(catalog.extensions['hypopg'])}."
    chosen: list[tuple[int, str]] = []
    for t in targets:
        conn.execute(f"SELECT {fn}hypopg_reset()")
        names: dict[str, tuple[int, str]] = {}
        for rel in catalog.relations.values():
            if rel.kind not in ("r", "m"):
                continue
            single = _single_indexed(catalog, rel.oid)
            for col in rel.columns.values():
                if col.typname not in SUPABASE_TYPES or col.name in single:
                    continue
                ddl = (
                    f"CREATE INDEX ON {quote_ident(rel.schema)}.{quote_ident(rel.name)} "
                    f"({quote_ident(col.name)})"
                )
                row = conn.execute(
                    f"SELECT indexname FROM {fn}hypopg_create_index(%s)", (ddl,)
                ).fetchone()
                if row:
                    names[row[0]] = (rel.oid, col.name)
        try:
            plan = explain(conn, t)[0]["Plan"]
        except ExplainError:
            continue
        stack = [plan]
        while stack:
            node = stack.pop()
            hit = names.get(node.get("Index Name", ""))
            if hit and hit not in chosen:
                chosen.append(hit)
            stack.extend(node.get("Plans", ()))
    conn.execute(f"SELECT {fn}hypopg_reset()")
    return [IndexSpec(oid, "btree", (KeyElem.column(col),)) for oid, col in chosen]


def estimated_cost(
    evaluator: HypoEvaluator, targets: list[Target], specs: list[IndexSpec]
) -> float:
    """Calls-weighted hypopg plan cost of the workload with ``specs`` (GIN priced by heuristics)."""
    from dbopt.advisor.heuristic import HeuristicEvaluator

    btree = [(i, s) for i, s in enumerate(specs) if s.method == "btree"]
    gin = [(i, s) for i, s in enumerate(specs) if s.method != "btree"]
    results = evaluator.costs(btree, targets)
    heuristic = HeuristicEvaluator(evaluator.conn, evaluator.catalog)
    total = 0.0
    for t, r in zip(targets, results, strict=True):
        if isinstance(r, ExplainError):
            continue
        cost = heuristic.estimate(r, t.shape, gin).cost if gin else r.cost
        total += t.weight * cost
    return total


def measure(url: str, targets: list[Target], repeat: int) -> float:
    """Calls-weighted median execution time of the workload, in ms (writes rolled back)."""
    total = 0.0
    with psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SET plan_cache_mode = force_custom_plan")
        for t in targets:
            times = []
            for _ in range(repeat):
                conn.execute("BEGIN")
                try:
                    plan = explain(conn, t, "ANALYZE, TIMING OFF, FORMAT JSON")
                    times.append(float(plan[0]["Execution Time"]))
                except ExplainError:
                    pass
                finally:
                    conn.execute("ROLLBACK")
            if times:
                total += t.weight * statistics.median(times)
    return total


def build(url: str, catalog: Catalog, specs: list[IndexSpec]) -> tuple[list[str], int]:
    """Create ``specs`` for real (plain CREATE INDEX), ANALYZE; return names and total size."""
    names = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for i, spec in enumerate(specs):
            rel = catalog.relations[spec.table_oid]
            name = f"bench_advisor_{i}"
            table = f"{quote_ident(rel.schema)}.{quote_ident(rel.name)}"
            conn.execute(f"CREATE INDEX {name} ON {table} {spec.body()}")
            names.append(name)
        conn.execute("ANALYZE")
        size = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = ANY(%s) UNION ALL "
            "SELECT coalesce(sum(pg_relation_size(oid)), 0) FROM pg_class WHERE relname = ANY(%s)",
            (names, names),
        ).fetchall()
    return names, int(sum(r[0] for r in size))


def forget_load(conn: psycopg.Connection[Any]) -> None:
    """Reset every table's write counters once the load (counted at session end) shows."""
    for _ in range(400):
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE c.relkind = 'r' AND c.reltuples > 0 AND s.n_tup_ins = 0"
        ).fetchone()
        if row == (0,):
            break
        time.sleep(0.05)
    conn.execute("SELECT pg_stat_reset_single_table_counters(relid) FROM pg_stat_user_tables")


def drop(url: str, names: list[str]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def run_platform(url: str, interactions: int, repeat: int) -> list[MethodResult]:
    """The learning-platform comparison; prints a table and returns the rows."""
    started = time.perf_counter()
    load_platform(url, interactions)
    loaded = time.perf_counter() - started
    print(f"\nlearning platform: {interactions:,} interactions loaded in {loaded:.1f} s")
    workload = platform_workload(url)
    with psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None) as conn:
        catalog = load_catalog(conn)
        targets = _targets(conn, catalog, workload)
        evaluator = HypoEvaluator(conn, catalog, catalog.extensions["hypopg"])
        base_cost = estimated_cost(evaluator, targets, [])
    base_ms = measure(url, targets, repeat)
    results = []
    t0 = time.perf_counter()
    report = IndexAdvisor(url, findings=False).advise(workload)
    dbopt_result = MethodResult("dbopt", time.perf_counter() - t0)
    dbopt_result.specs = [
        IndexSpec(catalog.by_name[(r.schema, r.table)], r.method, r.keys, r.include, r.predicate)
        for r in report.recommendations
    ]
    results.append(dbopt_result)
    for name, method in (("dexter", dexter_method), ("supabase", supabase_method)):
        with psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None) as conn:
            t0 = time.perf_counter()
            specs = method(conn, catalog, targets)
            results.append(MethodResult(name, time.perf_counter() - t0, specs))
    with psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None) as conn:
        evaluator = HypoEvaluator(conn, catalog, catalog.extensions["hypopg"])
        for r in results:
            r.est_cost = estimated_cost(evaluator, targets, r.specs)
    for r in results:
        names, r.size_bytes = build(url, catalog, r.specs)
        try:
            r.measured_ms = measure(url, targets, repeat)
        finally:
            drop(url, names)
    rows = [["none", "-", 0, "-", f"{base_cost:,.0f}", "1.0x", f"{base_ms:,.0f}", "1.0x"]]
    for r in results:
        rows.append(
            [
                r.name,
                f"{r.seconds:.2f}",
                len(r.specs),
                f"{r.size_bytes / 2**20:.1f}",
                f"{r.est_cost:,.0f}",
                f"{base_cost / max(r.est_cost, 1e-9):.1f}x",
                f"{r.measured_ms:,.0f}",
                f"{base_ms / max(r.measured_ms, 1e-9):.1f}x",
            ]
        )
    print(
        f"{len(targets)} statements, {sum(t.stmt.calls for t in targets):,} calls; "
        "cost = calls x plan cost (hypopg), time = calls x median EXPLAIN ANALYZE ms"
    )
    print_table(
        [
            "method",
            "advise s",
            "indexes",
            "MB",
            "est. cost",
            "est. gain",
            "measured ms",
            "measured gain",
        ],
        rows,
    )
    for r in results:
        print(f"\n{r.name}:")
        for spec in r.specs:
            print(f"  {spec.label(catalog.relations[spec.table_oid])}")
    return results


def run_wide(url: str, statements: int) -> float:
    """Advise ``statements`` distinct statements on a 30-table schema; returns seconds."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(wide_schema())
        conn.execute("ANALYZE")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        forget_load(conn)
    workload = wide_workload(statements)
    t0 = time.perf_counter()
    report = IndexAdvisor(url, findings=False).advise(workload)
    seconds = time.perf_counter() - t0
    print(
        f"\nwide: 30 tables, {len(report.statements)} distinct statements advised in "
        f"{seconds:.1f} s ({report.evaluations} plan evaluations, "
        f"{len(report.recommendations)} indexes, {len(report.errors)} errors) "
        f"target < 30 s {mark(seconds, 30.0)}"
    )
    return seconds


# --- the learning platform (seed 001) -------------------------------------------------------

PLATFORM_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE users (
  id uuid PRIMARY KEY, email text UNIQUE NOT NULL, full_name text NOT NULL, avatar_url text,
  user_role text NOT NULL CHECK (user_role IN ('student', 'instructor', 'admin')),
  metadata jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE courses (
  id uuid PRIMARY KEY, title text NOT NULL, description text, instructor_id uuid REFERENCES users,
  thumbnail_url text, status text CHECK (status IN ('draft', 'published', 'archived')),
  metadata jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE course_modules (
  id uuid PRIMARY KEY, course_id uuid REFERENCES courses ON DELETE CASCADE, title text NOT NULL,
  description text, position int NOT NULL, is_published boolean DEFAULT false, metadata jsonb,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
  UNIQUE (course_id, position));
CREATE TABLE content_items (
  id uuid PRIMARY KEY, module_id uuid REFERENCES course_modules ON DELETE CASCADE,
  title text NOT NULL, description text,
  content_type text CHECK (content_type IN ('video', 'quiz', 'reading', 'exercise', 'attachment')),
  position int NOT NULL, duration int, is_required boolean DEFAULT true, metadata jsonb,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
  UNIQUE (module_id, position));
CREATE TABLE video_content (
  content_id uuid PRIMARY KEY REFERENCES content_items ON DELETE CASCADE, video_url text NOT NULL,
  thumbnail_url text, transcript_url text, captions_available boolean DEFAULT false,
  duration int NOT NULL, encoding_details jsonb);
CREATE TABLE quiz_content (
  content_id uuid PRIMARY KEY REFERENCES content_items ON DELETE CASCADE,
  quiz_type text CHECK (quiz_type IN ('assessment', 'practice', 'survey')), passing_score int,
  time_limit int, randomize_questions boolean DEFAULT false, show_answers boolean DEFAULT true,
  questions jsonb);
CREATE TABLE user_sessions (
  id uuid PRIMARY KEY, user_id uuid REFERENCES users ON DELETE CASCADE,
  started_at timestamptz NOT NULL, ended_at timestamptz, device_info jsonb, ip_address text,
  metadata jsonb);
-- The seed's PRIMARY KEY (id) cannot exist on a table partitioned by created_at.
CREATE TABLE user_interactions (
  id uuid NOT NULL, session_id uuid REFERENCES user_sessions ON DELETE CASCADE,
  interaction_type text NOT NULL, content_id uuid REFERENCES content_items ON DELETE SET NULL,
  course_id uuid REFERENCES courses ON DELETE SET NULL, created_at timestamptz NOT NULL,
  metadata jsonb, is_processed boolean DEFAULT false, PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
DO $$ BEGIN FOR m IN 1..12 LOOP EXECUTE format(
  'CREATE TABLE user_interactions_y2024m%s PARTITION OF user_interactions '
  'FOR VALUES FROM (%L) TO (%L)', lpad(m::text, 2, '0'),
  make_date(2024, m, 1), make_date(2024, m, 1) + interval '1 month'); END LOOP; END $$;
CREATE TABLE video_interactions (
  interaction_id uuid PRIMARY KEY, video_id uuid REFERENCES video_content (content_id),
  position_seconds float, watched_duration float, playback_rate float, quality_level text,
  is_fullscreen boolean, interaction_details jsonb);
CREATE TABLE quiz_interactions (
  interaction_id uuid PRIMARY KEY, quiz_id uuid REFERENCES quiz_content (content_id),
  question_id text, user_answer jsonb, is_correct boolean, time_taken float,
  attempt_number int, score float);
CREATE TABLE user_progress (
  id uuid PRIMARY KEY, user_id uuid REFERENCES users ON DELETE CASCADE,
  course_id uuid REFERENCES courses ON DELETE CASCADE, completed_items int DEFAULT 0,
  total_items int, last_activity_at timestamptz, completion_percentage float, time_spent int,
  average_score float, updated_at timestamptz DEFAULT now(), UNIQUE (user_id, course_id));
CREATE TABLE content_engagement_metrics (
  id uuid PRIMARY KEY, content_id uuid REFERENCES content_items ON DELETE CASCADE,
  views_count int DEFAULT 0, completion_count int DEFAULT 0, average_time_spent float,
  average_score float, difficulty_rating float, engagement_score float,
  date_measured date NOT NULL DEFAULT CURRENT_DATE, UNIQUE (content_id, date_measured));
CREATE TABLE aggregated_analytics (
  id uuid PRIMARY KEY,
  entity_type text NOT NULL CHECK (entity_type IN ('course', 'module', 'content', 'user')),
  entity_id uuid NOT NULL, metric_name text NOT NULL, metric_value float, dimensions jsonb,
  start_date date, end_date date,
  granularity text CHECK (granularity IN ('hour', 'day', 'week', 'month')),
  UNIQUE (entity_type, entity_id, metric_name, granularity, start_date));
"""


def _u(prefix: str, expr: str) -> str:
    """A deterministic uuid for entity ``expr`` of kind ``prefix`` (so keys can be computed)."""
    return f"md5('{prefix}' || ({expr}))::uuid"


def load_platform(url: str, interactions: int) -> None:
    """Generate data proportional to ``interactions`` (1M: 50k users, 300k sessions, ...)."""
    k = max(interactions / 1_000_000, 0.02)
    n_users, n_courses = int(50_000 * k), max(20, int(500 * k))
    n_modules, n_items = n_courses * 10, n_courses * 100
    n_sessions = int(300_000 * k)
    steps = [
        f"""INSERT INTO users SELECT {_u("u", "n")}, 'user' || n || '@example.com',
            'Name ' || md5(n::text), NULL,
            CASE WHEN n % 50 = 0 THEN 'instructor' WHEN n % 997 = 0 THEN 'admin' ELSE 'student' END,
            jsonb_build_object('plan', CASE WHEN n % 40 = 0 THEN 'pro' ELSE 'free' END,
                               'ref', 'r' || n),
            timestamptz '2023-01-01' + n * interval '10 minutes', now()
            FROM generate_series(1, {n_users}) n""",
        f"""INSERT INTO courses SELECT {_u("c", "n")}, 'Course ' || n, 'About ' || n,
            {_u("u", "(n * 50) % " + str(n_users) + " + 1")}, NULL,
            CASE WHEN n % 5 = 0 THEN 'draft' ELSE 'published' END,
            jsonb_build_object('level', CASE WHEN n % 3 = 0 THEN 'advanced' ELSE 'basic' END),
            timestamptz '2023-01-01' + n * interval '1 day', now()
            FROM generate_series(1, {n_courses}) n""",
        f"""INSERT INTO course_modules SELECT {_u("m", "n")}, {_u("c", "(n - 1) / 10 + 1")},
            'Module ' || n, NULL, (n - 1) % 10, n % 4 <> 0, NULL, now(), now()
            FROM generate_series(1, {n_modules}) n""",
        f"""INSERT INTO content_items SELECT {_u("i", "n")}, {_u("m", "(n - 1) / 10 + 1")},
            'Item ' || n, NULL,
            (ARRAY['video', 'quiz', 'reading', 'exercise', 'attachment'])[n % 5 + 1],
            (n - 1) % 10, 60 + n % 900, true, NULL, now(), now()
            FROM generate_series(1, {n_items}) n""",
        """INSERT INTO video_content SELECT id, 'https://v/' || id, NULL, NULL, true, duration, NULL
            FROM content_items WHERE content_type = 'video'""",
        """INSERT INTO quiz_content SELECT id, 'practice', 70, NULL, false, true, NULL
            FROM content_items WHERE content_type = 'quiz'""",
        f"""INSERT INTO user_sessions SELECT {_u("s", "n")}, {_u("u", f"n % {n_users} + 1")},
            timestamptz '2024-01-01' + (n % 360) * interval '1 day' + (n % 1440) * interval '1 min',
            CASE WHEN n % 100 = 0 THEN NULL
                 ELSE timestamptz '2024-01-01' + (n % 360) * interval '1 day'
                      + interval '2 hours' END,
            jsonb_build_object('os', (ARRAY['ios', 'android', 'web'])[n % 3 + 1]),
            '10.0.' || (n % 250) || '.' || (n % 200), NULL
            FROM generate_series(1, {n_sessions}) n""",
        f"""INSERT INTO user_interactions SELECT {_u("x", "n")}, {_u("s", f"n % {n_sessions} + 1")},
            (ARRAY['view', 'play', 'pause', 'complete', 'quiz_submit', 'seek'])[n % 6 + 1],
            {_u("i", f"n % {n_items} + 1")}, {_u("c", f"(n % {n_items}) / 100 + 1")},
            timestamptz '2024-01-01' + (n::float / {interactions}) * interval '365 days',
            NULL, n % 50 <> 0
            FROM generate_series(1, {interactions}) n""",
        f"""INSERT INTO video_interactions SELECT {_u("x", "n")},
            {_u("i", f"(n % ({n_items} / 5)) * 5 + 5")}, n % 600, n % 300, 1.0, '720p',
            n % 2 = 0, NULL FROM generate_series(1, {interactions // 3}) n""",
        f"""INSERT INTO quiz_interactions SELECT {_u("x", "n + 7")},
            {_u("i", f"(n % ({n_items} / 5)) * 5 + 1")}, 'q' || n % 20, NULL, n % 3 <> 0,
            n % 120, n % 4 + 1, n % 100 FROM generate_series(1, {interactions // 6}) n""",
        f"""INSERT INTO user_progress SELECT {_u("p", "n")}, {_u("u", f"n % {n_users} + 1")},
            {_u("c", f"(n / {n_users}) % {n_courses} + 1")}, n % 100, 100,
            timestamptz '2024-01-01' + (n % 360) * interval '1 day', (n % 101)::float,
            n % 5000, (n % 100)::float, now()
            FROM generate_series(1, {int(150_000 * k)}) n""",
        f"""INSERT INTO content_engagement_metrics SELECT {_u("e", "n")},
            {_u("i", f"n % {n_items} + 1")}, n % 500, n % 200, n % 600, n % 100, n % 5,
            (n % 1000)::float / 10, CURRENT_DATE - ((n / {n_items}) % 30)::int
            FROM generate_series(1, {n_items * 6}) n""",
        f"""INSERT INTO aggregated_analytics SELECT {_u("a", "n")},
            (ARRAY['course', 'module', 'content', 'user'])[n % 4 + 1],
            {_u("c", f"n % {n_courses} + 1")},
            (ARRAY['views', 'completions', 'avg_score', 'time_spent', 'dropoff'])[n / 7 % 5 + 1],
            n % 1000, NULL, date '2024-01-01' + (n / 35) % 365,
            date '2024-01-01' + (n / 35) % 365 + 1,
            (ARRAY['hour', 'day', 'week', 'month'])[n / 14000 % 4 + 1]
            FROM generate_series(1, {int(200_000 * k)}) n""",
    ]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for step in steps:
            conn.execute(step)
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # forget the bulk load; then some steady-state writes for pg_stat_user_tables
        forget_load(conn)
        conn.execute(
            f"""INSERT INTO user_interactions SELECT {_u("y", "n")},
            {_u("s", f"n % {n_sessions} + 1")}, 'view', {_u("i", f"n % {n_items} + 1")}, NULL,
            timestamptz '2024-12-01' + n * interval '1 s', NULL, false
            FROM generate_series(1, {max(100, interactions // 200)}) n"""
        )
        conn.execute(
            "UPDATE user_progress SET completed_items = completed_items + 1, updated_at = now() "
            "WHERE completion_percentage < 2"
        )


def platform_workload(url: str) -> list[WorkloadStatement]:
    """35 statements of the platform with real parameters and call counts."""
    with psycopg.connect(libpq_url(url)) as conn:
        uid, email = conn.execute("SELECT id, email FROM users ORDER BY id LIMIT 1").fetchone()
        sid = conn.execute(
            "SELECT id FROM user_sessions WHERE user_id = %s LIMIT 1", (uid,)
        ).fetchone()
        cid, course = conn.execute(
            "SELECT id, (SELECT course_id FROM course_modules m WHERE m.id = module_id) "
            "FROM content_items WHERE content_type = 'video' ORDER BY id LIMIT 1"
        ).fetchone()
        module = conn.execute(
            "SELECT id FROM course_modules WHERE course_id = %s LIMIT 1", (course,)
        ).fetchone()[0]
        quiz = conn.execute("SELECT content_id FROM quiz_content LIMIT 1").fetchone()[0]
        iid, iat = conn.execute(
            "SELECT id, created_at FROM user_interactions ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    sid = sid[0] if sid else uid
    since, cutoff = "2024-11-01", "2024-02-01"

    def w(sql: str, params: Any = None, calls: int = 1) -> WorkloadStatement:
        return WorkloadStatement(
            " ".join(sql.split()), params, calls, callsites=("bench/advisor.py:0",)
        )

    return [
        w("SELECT * FROM users WHERE email = %(e)s", {"e": email}, 5000),
        w("SELECT * FROM users WHERE lower(email) = lower(%(e)s)", {"e": email.upper()}, 800),
        w(
            "SELECT id, full_name FROM users WHERE full_name ILIKE %(q)s LIMIT 20",
            {"q": "%abc12%"},
            200,
        ),
        w("SELECT id FROM users WHERE metadata @> %(m)s::jsonb", {"m": '{"ref": "r77"}'}, 150),
        w("SELECT count(*) FROM users WHERE created_at >= %(d)s", {"d": "2023-12-25"}, 50),
        w(
            "SELECT * FROM user_sessions WHERE user_id = %(u)s ORDER BY started_at DESC LIMIT 20",
            {"u": uid},
            3000,
        ),
        w(
            "SELECT id FROM user_sessions WHERE user_id = %(u)s AND ended_at IS NULL",
            {"u": uid},
            2000,
        ),
        w(
            "SELECT count(*) FROM user_sessions WHERE started_at >= %(a)s AND started_at < %(b)s",
            {"a": "2024-06-01", "b": "2024-06-02"},
            100,
        ),
        w(
            "DELETE FROM user_sessions WHERE ended_at < %(c)s AND user_id = %(u)s",
            {"c": cutoff, "u": uid},
            50,
        ),
        w(
            "SELECT * FROM user_interactions WHERE session_id = %(s)s ORDER BY created_at",
            {"s": sid},
            4000,
        ),
        w(
            "SELECT count(*) FROM user_interactions WHERE content_id = %(c)s AND created_at >= "
            "%(d)s",
            {"c": cid, "d": since},
            1000,
        ),
        w(
            "SELECT interaction_type, count(*) FROM user_interactions WHERE course_id = %(c)s "
            "AND created_at >= %(d)s GROUP BY interaction_type",
            {"c": course, "d": since},
            500,
        ),
        w(
            "SELECT id, created_at FROM user_interactions WHERE is_processed = false "
            "ORDER BY created_at LIMIT 1000",
            None,
            300,
        ),
        w(
            "UPDATE user_interactions SET is_processed = true WHERE id = %(i)s AND created_at = "
            "%(t)s",
            {"i": iid, "t": iat},
            1000,
        ),
        w(
            "SELECT * FROM user_interactions WHERE interaction_type = 'quiz_submit' "
            "AND created_at >= %(d)s ORDER BY created_at DESC LIMIT 50",
            {"d": since},
            200,
        ),
        w(
            "SELECT ci.title, count(*) FROM user_interactions ui JOIN content_items ci ON ci.id = "
            "ui.content_id "
            "WHERE ui.course_id = %(c)s AND ui.created_at >= %(d)s GROUP BY ci.title",
            {"c": course, "d": since},
            100,
        ),
        w(
            "SELECT * FROM course_modules WHERE course_id = %(c)s ORDER BY position",
            {"c": course},
            2000,
        ),
        w(
            "SELECT * FROM content_items WHERE module_id = %(m)s ORDER BY position",
            {"m": module},
            2000,
        ),
        w(
            "SELECT ci.* FROM content_items ci JOIN course_modules cm ON ci.module_id = cm.id "
            "WHERE cm.course_id = %(c)s AND ci.content_type = 'video'",
            {"c": course},
            600,
        ),
        w(
            "SELECT * FROM courses WHERE instructor_id = %(u)s AND status = 'published'",
            {"u": uid},
            800,
        ),
        w(
            "SELECT * FROM courses WHERE status = 'published' ORDER BY created_at DESC LIMIT 20",
            None,
            400,
        ),
        w("SELECT * FROM user_progress WHERE user_id = %(u)s", {"u": uid}, 1500),
        w(
            "SELECT user_id, completion_percentage FROM user_progress WHERE course_id = %(c)s "
            "ORDER BY completion_percentage DESC LIMIT 10",
            {"c": course},
            600,
        ),
        w(
            """SELECT u.full_name, c.title AS course_title, up.completion_percentage, up.time_spent,
               up.average_score, up.last_activity_at
             FROM user_progress up JOIN users u ON up.user_id = u.id
             JOIN courses c ON up.course_id = c.id
             WHERE up.completion_percentage < 100
               AND up.last_activity_at < NOW() - INTERVAL '7 days'
             ORDER BY up.last_activity_at ASC LIMIT 50""",
            None,
            100,
        ),
        w(
            """SELECT ci.title, ci.content_type, cm.title AS module_title, c.title AS course_title,
               cem.views_count, cem.completion_count, cem.average_time_spent, cem.engagement_score
             FROM content_engagement_metrics cem JOIN content_items ci ON cem.content_id = ci.id
             JOIN course_modules cm ON ci.module_id = cm.id JOIN courses c ON cm.course_id = c.id
             WHERE cem.date_measured = CURRENT_DATE - INTERVAL '1 day' AND ci.content_type = 'video'
               AND cem.views_count > 10
             ORDER BY cem.engagement_score DESC LIMIT 20""",
            None,
            100,
        ),
        w(
            "SELECT date_measured, views_count FROM content_engagement_metrics WHERE content_id = "
            "%(c)s "
            "ORDER BY date_measured DESC LIMIT 30",
            {"c": cid},
            700,
        ),
        w(
            "SELECT metric_value FROM aggregated_analytics WHERE entity_type = 'course' AND "
            "entity_id = %(e)s "
            "AND metric_name = %(m)s AND granularity = 'day' AND start_date >= %(d)s",
            {"e": course, "m": "views", "d": "2024-03-01"},
            900,
        ),
        w(
            "SELECT entity_id, metric_value FROM aggregated_analytics WHERE metric_name = %(m)s "
            "AND start_date BETWEEN %(a)s AND %(b)s",
            {"m": "dropoff", "a": "2024-05-01", "b": "2024-05-03"},
            200,
        ),
        w(
            "SELECT avg(watched_duration) FROM video_interactions WHERE video_id = %(v)s",
            {"v": cid},
            700,
        ),
        w(
            "SELECT * FROM quiz_interactions WHERE quiz_id = %(q)s AND is_correct = false",
            {"q": quiz},
            400,
        ),
        w(
            "SELECT qi.score FROM quiz_interactions qi JOIN user_interactions ui ON ui.id = "
            "qi.interaction_id "
            "JOIN user_sessions s ON s.id = ui.session_id WHERE s.user_id = %(u)s",
            {"u": uid},
            300,
        ),
        w(
            "SELECT qc.* FROM quiz_content qc JOIN content_items ci ON ci.id = qc.content_id "
            "WHERE ci.module_id = %(m)s",
            {"m": module},
            300,
        ),
        w(
            "SELECT count(*) FROM user_interactions WHERE created_at >= %(a)s AND created_at < "
            "%(b)s",
            {"a": "2024-06-01", "b": "2024-06-08"},
            60,
        ),
        w(
            "UPDATE user_progress SET completed_items = completed_items + 1, last_activity_at = "
            "now() "
            "WHERE user_id = %(u)s AND course_id = %(c)s",
            {"u": uid, "c": course},
            1500,
        ),
        w(
            "INSERT INTO user_interactions (id, session_id, interaction_type, content_id, "
            "course_id, created_at) "
            "VALUES (gen_random_uuid(), %(s)s, 'view', %(c)s, %(k)s, now())",
            {"s": sid, "c": cid, "k": course},
            20000,
        ),
    ]


# --- 30 tables, 100 statements ---------------------------------------------------------------


def wide_schema(tables: int = 30, rows: int = 20_000) -> str:
    """``t01``..``t30``: id, parent (FK to the previous table), 6 columns; ``rows`` rows each."""
    out = []
    for i in range(1, tables + 1):
        fk = f" REFERENCES t{i - 1:02d} (id)" if i > 1 else ""
        out.append(
            f"CREATE TABLE t{i:02d} (id int PRIMARY KEY, parent_id int{fk}, code text, "
            f"status text, amount numeric, created_at timestamptz, kind int, flag boolean);"
            f"INSERT INTO t{i:02d} SELECT n, {'n % ' + str(rows) + ' + 1' if i > 1 else 'NULL'}, "
            f"'c' || n, (ARRAY['new','open','done','void'])[n % 4 + 1], n % 997, "
            f"timestamptz '2024-01-01' + n * interval '1 min', n % {50 + i}, n % 20 = 0 "
            f"FROM generate_series(1, {rows}) n;"
        )
    return "CREATE EXTENSION IF NOT EXISTS hypopg;\n" + "\n".join(out)


def wide_workload(count: int, tables: int = 30) -> list[WorkloadStatement]:
    """``count`` distinct statements (distinct fingerprints) over the wide schema."""
    shapes = [
        "SELECT * FROM {t} WHERE code = %(v)s",
        "SELECT * FROM {t} WHERE kind = %(k)s AND status = %(s)s",
        "SELECT * FROM {t} WHERE parent_id = %(p)s ORDER BY created_at DESC LIMIT 10",
        "SELECT count(*) FROM {t} WHERE created_at >= %(a)s AND created_at < %(b)s",
        "SELECT a.id, b.code FROM {t} a JOIN {u} b ON b.id = a.parent_id WHERE a.kind = %(k)s",
        "SELECT status, sum(amount) FROM {t} WHERE kind = %(k)s GROUP BY status",
        "SELECT * FROM {t} WHERE flag AND amount > %(m)s ORDER BY id LIMIT 5",
        "UPDATE {t} SET amount = amount + 1 WHERE code = %(v)s",
    ]
    params = {
        "v": "c77",
        "k": 7,
        "s": "open",
        "p": 42,
        "a": "2024-01-05",
        "b": "2024-01-06",
        "m": 990,
    }
    out = []
    for n in range(count):
        i = n % tables + 1
        j = i - 1 if i > 1 else tables
        sql = shapes[(n // tables) % len(shapes)].format(t=f"t{i:02d}", u=f"t{j:02d}")
        out.append(WorkloadStatement(sql, params, calls=10 + n))
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small data, one repetition")
    p.add_argument("--interactions", type=int, default=None, help="rows in user_interactions")
    p.add_argument("--statements", type=int, default=100, help="statements in the wide scenario")
    p.add_argument("--scenario", choices=["platform", "wide", "all"], default="all")
    p.add_argument("--repeat", type=int, default=None, help="executions per statement measured")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the scenarios and print their tables; returns the figures."""
    args = parse_args(argv)
    interactions = args.interactions or (30_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 5)
    print(f"dbopt index advisor benchmark; {describe_machine()}")
    out: dict[str, Any] = {}
    if args.scenario in ("platform", "all"):
        with postgres_url("dbopt_bench_advisor") as url:
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                conn.execute(PLATFORM_SCHEMA)
            out["platform"] = run_platform(url, interactions, repeat)
    if args.scenario in ("wide", "all"):
        with postgres_url("dbopt_bench_advisor_wide") as url:
            out["wide_seconds"] = run_wide(url, args.statements)
    return out


if __name__ == "__main__":
    main()
