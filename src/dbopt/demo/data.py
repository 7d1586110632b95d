"""Realistic data for the demo, generated inside PostgreSQL (``INSERT ... SELECT generate_series``).

Keys are deterministic (``md5('u' || n)::uuid`` is user n), so every
foreign key is computed, not looked up, and nothing crosses the wire but
the statements. Interactions lean to popular courses and recent months,
as real traffic does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Sizes", "generate", "reset_statistics"]


def reset_statistics(conn: Any) -> None:
    """Flush this session's pending statistics, then reset the database's counters.

    Without the flush, the counts of a bulk load just made on ``conn`` reach
    the statistics after the reset, and the index advisor charges them as
    the workload's writes. PostgreSQL 13 and 14 flush asynchronously.
    """
    import time

    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")
    else:
        time.sleep(1.0)
    conn.execute("SELECT pg_stat_reset()")


@dataclass(frozen=True)
class Sizes:
    """How much data to generate."""

    users: int = 20_000
    courses: int = 200
    modules: int = 6  # per course
    items: int = 5  # per module; item k is video, quiz, reading, exercise, attachment
    sessions: int = 100_000
    interactions: int = 600_000
    months: int = 14  # of interactions, the current month included
    detail_months: int = 6  # video/quiz details are kept for the recent months only
    chunks: int = 12

    @classmethod
    def small(cls) -> Sizes:
        """A few seconds' worth, for tests."""
        return cls(
            users=400,
            courses=20,
            modules=4,
            items=5,
            sessions=2_000,
            interactions=20_000,
            chunks=2,
        )

    @property
    def total_rows(self) -> int:
        """Rows inserted, roughly (for the progress bar)."""
        content = self.courses * self.modules * self.items
        return (
            self.users
            + self.courses * (1 + self.modules)
            + content * 9
            + self.sessions
            + int(self.interactions * 1.25)
            + self.users * 3
        )


_STATIC: list[tuple[str, Callable[[Sizes], int], str]] = [
    (
        "users",
        lambda s: s.users,
        """
INSERT INTO users (id, email, full_name, user_role, metadata, created_at)
SELECT md5('u' || n)::uuid, 'user' || n || '@example.com', 'User ' || n,
       CASE WHEN n %% 50 = 0 THEN 'instructor' WHEN n = 1 THEN 'admin' ELSE 'student' END,
       jsonb_build_object('locale', (ARRAY['en', 'de', 'fr', 'es'])[1 + n %% 4]),
       now() - make_interval(days => (n %% 700))
FROM generate_series(1, %(users)s) AS n
""",
    ),
    (
        "courses",
        lambda s: s.courses,
        """
INSERT INTO courses (id, title, description, instructor_id, status, created_at)
SELECT md5('c' || n)::uuid, 'Course ' || n, 'About topic ' || n,
       md5('u' || (50 * (1 + n %% greatest(1, %(users)s / 50))))::uuid,
       CASE WHEN n %% 10 = 0 THEN 'draft' WHEN n %% 10 = 1 THEN 'archived' ELSE 'published' END,
       now() - make_interval(days => n)
FROM generate_series(1, %(courses)s) AS n
""",
    ),
    (
        "course_modules",
        lambda s: s.courses * s.modules,
        """
INSERT INTO course_modules (id, course_id, title, position, is_published)
SELECT md5('m' || c || '-' || m)::uuid, md5('c' || c)::uuid, 'Module ' || m, m, true
FROM generate_series(1, %(courses)s) AS c, generate_series(1, %(modules)s) AS m
""",
    ),
    (
        "content_items",
        lambda s: s.courses * s.modules * s.items,
        """
INSERT INTO content_items (id, module_id, title, content_type, position, duration)
SELECT md5('i' || c || '-' || m || '-' || k)::uuid, md5('m' || c || '-' || m)::uuid,
       'Item ' || m || '.' || k,
       (ARRAY['video', 'quiz', 'reading', 'exercise', 'attachment'])[1 + (k - 1) %% 5], k,
       CASE WHEN (k - 1) %% 5 = 0 THEN 120 + (c * m * k) %% 1200 END
FROM generate_series(1, %(courses)s) AS c, generate_series(1, %(modules)s) AS m,
     generate_series(1, %(items)s) AS k
""",
    ),
    (
        "video and quiz content",
        lambda s: s.courses * s.modules * 2,
        """
INSERT INTO video_content (content_id, video_url, duration, captions_available)
SELECT id, 'https://cdn.example.com/v/' || id || '.mp4', coalesce(duration, 300), random() < 0.5
FROM content_items WHERE content_type = 'video';
INSERT INTO quiz_content (content_id, quiz_type, passing_score, time_limit, questions)
SELECT id, (ARRAY['assessment', 'practice', 'survey'])[1 + position %% 3], 70, 600,
       '[{"q": 1}, {"q": 2}]'::jsonb
FROM content_items WHERE content_type = 'quiz'
""",
    ),
    (
        "user_sessions",
        lambda s: s.sessions,
        """
INSERT INTO user_sessions (id, user_id, started_at, ended_at, device_info, ip_address)
SELECT md5('s' || n)::uuid, md5('u' || (1 + (n * 7919) %% %(users)s))::uuid,
       t, t + make_interval(mins => 5 + n %% 55),
       jsonb_build_object('device', (ARRAY['web', 'ios', 'android'])[1 + n %% 3]),
       '10.0.' || (n %% 250) || '.' || (n %% 200)
FROM generate_series(1, %(sessions)s) AS n,
     LATERAL (SELECT n AS row_n,
                     now() - make_interval(secs => (random() ^ 1.5) * %(span_s)s) AS t) AS x
""",
    ),
]

_INTERACTIONS = """
INSERT INTO user_interactions
    (session_id, interaction_type, content_id, course_id, created_at, metadata, is_processed)
SELECT md5('s' || s)::uuid,
       CASE (k - 1) %% 5
         WHEN 0 THEN (ARRAY['video_play', 'video_pause', 'video_complete'])[1 + n %% 3]
         WHEN 1 THEN (ARRAY['quiz_start', 'quiz_submit'])[1 + n %% 2]
         ELSE (ARRAY['page_view', 'download'])[1 + n %% 2] END,
       md5('i' || c || '-' || m || '-' || k)::uuid, md5('c' || c)::uuid, t,
       CASE WHEN n %% 4 = 0 THEN jsonb_build_object('client', 'web') END,
       t < now() - interval '1 day'
FROM generate_series(1, %(chunk)s) AS n,
     LATERAL (SELECT n AS row_n, 1 + floor(%(sessions)s * random())::int AS s,
                     1 + floor(%(courses)s * random() ^ 2)::int AS c,
                     1 + floor(%(modules)s * random())::int AS m,
                     1 + floor(%(items)s * random())::int AS k,
                     now() - make_interval(secs => (random() ^ 1.6) * %(span_s)s) AS t
              ) AS r
"""

_DETAILS = [
    (
        "video_interactions",
        """
INSERT INTO video_interactions (interaction_id, interaction_created_at, video_id,
    position_seconds, watched_duration, playback_rate, quality_level, is_fullscreen)
SELECT id, created_at, content_id, random() * 600, random() * 300,
       (ARRAY[1.0, 1.25, 1.5, 2.0])[1 + floor(random() * 4)::int],
       (ARRAY['480p', '720p', '1080p'])[1 + floor(random() * 3)::int], random() < 0.3
FROM user_interactions
WHERE interaction_type LIKE 'video%%' AND created_at >= %(detail_from)s
""",
    ),
    (
        "quiz_interactions",
        """
INSERT INTO quiz_interactions (interaction_id, interaction_created_at, quiz_id, question_id,
    user_answer, is_correct, time_taken, attempt_number, score)
SELECT id, created_at, content_id, 'q' || (1 + floor(random() * 10)::int),
       '{"choice": 2}'::jsonb, random() < 0.7, random() * 90, 1 + floor(random() * 3)::int,
       round((random() * 100)::numeric, 1)
FROM user_interactions
WHERE interaction_type = 'quiz_submit' AND created_at >= %(detail_from)s
""",
    ),
]

_ANALYTICS = [
    (
        "user_progress",
        """
INSERT INTO user_progress (user_id, course_id, completed_items, total_items, last_activity_at,
    completion_percentage, time_spent, average_score)
SELECT md5('u' || u)::uuid, md5('c' || (1 + (u + j * %(stride)s) %% %(courses)s))::uuid,
       p * %(items_per_course)s / 100, %(items_per_course)s,
       now() - make_interval(secs => random() * 60 * 86400), p,
       floor(random() * 900)::int, round((50 + random() * 50)::numeric, 1)
FROM generate_series(1, %(users)s) AS u, generate_series(1, 3) AS j,
     LATERAL (SELECT u AS row_u, j AS row_j, least(100, floor(random() * 130))::int AS p) AS x
""",
    ),
    (
        "content_engagement_metrics",
        """
INSERT INTO content_engagement_metrics (content_id, views_count, completion_count,
    average_time_spent, average_score, difficulty_rating, engagement_score, date_measured)
SELECT i.id, v, v * 6 / 10, random() * 600, random() * 100, random() * 5,
       round((random() * 100)::numeric, 2), current_date - d
FROM content_items AS i, generate_series(1, 7) AS d,
     LATERAL (SELECT i.id AS row_i, d AS row_d, floor(random() * 200)::int AS v) AS x
""",
    ),
]


def generate(
    conn: Any,
    sizes: Sizes,
    *,
    first_month: Any,
    detail_from: Any,
    progress: Callable[[int, str], None],
) -> dict[str, int]:
    """Fill the demo's tables on ``conn`` (autocommit psycopg); returns rows per table.

    ``first_month`` is the start of the oldest partition (interactions fall
    between it and now); ``detail_from`` where video/quiz details start.
    ``progress(rows_done, label)`` is called as work completes.
    """
    span = conn.execute("SELECT extract(epoch FROM now() - %s)::float", (first_month,))
    span_s = float(span.fetchone()[0]) - 60.0
    params: dict[str, Any] = {
        "users": sizes.users,
        "courses": sizes.courses,
        "modules": sizes.modules,
        "items": sizes.items,
        "sessions": sizes.sessions,
        "span_s": span_s,
        "detail_from": detail_from,
        "stride": max(1, sizes.courses // 3),
        "items_per_course": sizes.modules * sizes.items,
    }
    conn.execute("SELECT setseed(0.42)")
    done = 0
    counts: dict[str, int] = {}
    for label, rows, statement in _STATIC:
        progress(done, f"generating {label}")
        for part in statement.split(";\n"):
            conn.execute(part, params)
        done += rows(sizes)
        counts[label] = rows(sizes)
    chunk = -(-sizes.interactions // sizes.chunks)
    left = sizes.interactions
    while left > 0:
        n = min(chunk, left)
        progress(done, "generating user_interactions")
        conn.execute(_INTERACTIONS, {**params, "chunk": n})
        left -= n
        done += n
    counts["user_interactions"] = sizes.interactions
    for label, statement in _DETAILS + _ANALYTICS:
        progress(done, f"generating {label}")
        cur = conn.execute(statement, params)
        counts[label] = cur.rowcount
        done += max(0, cur.rowcount)
    progress(done, "ANALYZE")
    conn.execute("ANALYZE")
    progress(sizes.total_rows, "data ready")
    return counts
