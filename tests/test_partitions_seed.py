"""The seed case: ``user_interactions`` of the learning platform (seed 001), monthly.

The seed's DDL declares ``id UUID PRIMARY KEY`` on a table partitioned by
``created_at``; PostgreSQL refuses that (a partitioned table's unique keys
must include the partition key), so the key here is ``(id, created_at)``.
The two hand-made partitions of the seed (``user_interactions_y2023m07``,
``..._y2023m08``) are adopted and their naming learned; premake 4 and 12
months of retention are then kept with real rows across the months.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from psycopg import sql

from dbopt.partitions import PartitionSpec
from test_partitions_support import bounds, connect, exists, make_manager, routed

pytestmark = pytest.mark.postgres
UTC = timezone.utc

SEED_DDL = """
CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email TEXT UNIQUE NOT NULL,
  full_name TEXT NOT NULL,
  user_role TEXT NOT NULL CHECK (user_role IN ('student', 'instructor', 'admin')),
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE courses (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  title TEXT NOT NULL,
  instructor_id UUID REFERENCES users(id),
  status TEXT CHECK (status IN ('draft', 'published', 'archived'))
);
CREATE TABLE user_sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  started_at TIMESTAMP WITH TIME ZONE NOT NULL,
  ended_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE user_interactions (
  id UUID DEFAULT gen_random_uuid(),
  session_id UUID REFERENCES user_sessions(id) ON DELETE CASCADE,
  interaction_type TEXT NOT NULL,
  course_id UUID REFERENCES courses(id) ON DELETE SET NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  metadata JSONB,
  is_processed BOOLEAN DEFAULT false,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE user_interactions_y2023m07 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-07-01') TO ('2023-08-01');
CREATE TABLE user_interactions_y2023m08 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-08-01') TO ('2023-09-01');
CREATE INDEX idx_user_interactions_session ON user_interactions (session_id, created_at);
"""

ROWS = """
INSERT INTO users (email, full_name, user_role)
  SELECT 'u' || g || '@example.org', 'User ' || g, 'student' FROM generate_series(1, 40) g;
INSERT INTO courses (title, instructor_id, status)
  SELECT 'Course ' || g, (SELECT id FROM users ORDER BY email LIMIT 1), 'published'
  FROM generate_series(1, 5) g;
INSERT INTO user_sessions (user_id, started_at)
  SELECT u.id, '2023-07-01'::timestamptz + (row_number() OVER ()) * interval '6 days'
  FROM users u;
INSERT INTO user_interactions (session_id, interaction_type, course_id, created_at, metadata)
  SELECT s.id, (ARRAY['video_play', 'quiz_answer', 'page_view'])[1 + g % 3],
         (SELECT id FROM courses ORDER BY title LIMIT 1 OFFSET g % 5),
         '2023-07-01'::timestamptz + g * interval '163 minutes', jsonb_build_object('n', g)
  FROM generate_series(0, 2199) g
  JOIN LATERAL (SELECT id FROM user_sessions ORDER BY started_at LIMIT 1 OFFSET g % 40) s ON true;
"""


def test_user_interactions_monthly_premake_4_retention_12_months(pg_url: str, schema: str) -> None:
    with connect(pg_url) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        conn.execute(SEED_DDL)  # type: ignore[call-overload]
    manager = make_manager(pg_url, schema)
    spec = PartitionSpec(
        f"{schema}.user_interactions",
        key="created_at",
        interval="month",
        premake=4,
        retention="12 months",
    )
    march = datetime(2024, 3, 15, tzinfo=UTC)
    created = manager.create(spec, now=march)
    assert created.ok
    expected = ["user_interactions_default"] + [
        f"user_interactions_y{y}m{m:02d}"
        for y, m in [
            (2023, 7),
            (2023, 8),
            (2023, 9),
            (2023, 10),
            (2023, 11),
            (2023, 12),
            (2024, 1),
            (2024, 2),
            (2024, 3),
            (2024, 4),
            (2024, 5),
            (2024, 6),
            (2024, 7),
        ]
    ]
    assert [n for n, _ in bounds(pg_url, schema, "user_interactions")] == expected
    with connect(pg_url) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        conn.execute(ROWS)  # type: ignore[call-overload]
        conn.execute("ANALYZE user_interactions")
        per_month = dict(
            conn.execute(
                "SELECT 'user_interactions_y'"
                " || to_char(created_at AT TIME ZONE 'UTC', 'YYYY\"m\"MM'),"
                " count(*) FROM user_interactions GROUP BY 1"
            ).fetchall()
        )
    assert routed(pg_url, schema, "user_interactions") == per_month
    assert sum(per_month.values()) == 2200
    assert len(per_month) == 9
    report = manager.check(spec, now=march)
    assert report.ok, report.describe()
    assert manager.plan(spec, now=march).converged
    sizes = {p.name: p.rows_estimate for p in manager.partitions(f"{schema}.user_interactions")}
    assert sizes["user_interactions_y2023m07"] == per_month["user_interactions_y2023m07"]

    september = datetime(2024, 9, 10, tzinfo=UTC)
    plan = manager.plan(spec, now=september)
    detaching = [op.partition.name for op in plan if op.kind == "detach_partition"]
    creating = [op.partition.name for op in plan if op.kind == "create_partition"]
    assert detaching == ["user_interactions_y2023m07", "user_interactions_y2023m08"]
    assert creating == [f"user_interactions_y2024m{m:02d}" for m in (8, 9, 10, 11, 12)] + [
        "user_interactions_y2025m01"
    ]
    assert manager.apply(plan).ok
    # Detached, not dropped: the rows are still there to archive.
    assert exists(pg_url, schema, "user_interactions_y2023m07")
    with connect(pg_url) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(schema, "user_interactions_y2023m07")
            )
        ).fetchone()
    assert row is not None
    assert row[0] == per_month["user_interactions_y2023m07"]
    assert manager.plan(spec, now=september).converged
    assert manager.check(spec, now=september).ok
