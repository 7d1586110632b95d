"""Helpers for the lint, health and schema tests: throwaway schemas on the real server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from dbopt.lint import LintReport, lint
from dbopt.testing import libpq_url


def connect(pg_url: str, **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(pg_url), autocommit=True, **kw)


@contextmanager
def fresh_schema(pg_url: str, ddl: str = "", prefix: str = "lint") -> Iterator[str]:
    """A new schema (search_path set while ``ddl`` runs), dropped on exit."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with connect(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            if ddl:
                conn.execute(f'SET search_path = "{name}", public')
                conn.execute(ddl)
                flush_stats(conn)
            yield name
        finally:
            conn.execute("RESET search_path")
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def run(pg_url: str, schema: str, sql: str) -> None:
    """Run ``sql`` with ``schema`` first on the search_path (autocommit)."""
    with connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{schema}", public')
        conn.execute(sql)


def lint_schema(pg_url: str, schema: str, **kw: Any) -> LintReport:
    report = lint(pg_url, schemas=[schema], **kw)
    assert report.errors == {}, report.errors
    return report


def objects(report: LintReport, code: str) -> set[str]:
    return {f.object for f in report.of(code)}


def flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Make this session's statistics visible to others now (PostgreSQL 15+), else wait."""
    version = conn.info.server_version
    if version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")
    else:  # the stats collector sends at most every 500 ms
        time.sleep(0.7)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --- The seed documents' schemas (/work/shared/seeds) ----------------------------------

#: Seed 000, the concepts app, as it stood before the seed's proposed fixes: foreign keys
#: without indexes, status and difficulty without CHECK, audit timestamps missing on some
#: tables, one camelCase column (the seed's "inconsistent naming conventions").
CONCEPTS_SQL = """
CREATE TABLE tenants (id serial PRIMARY KEY, name text NOT NULL,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE domains (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE concepts (id serial PRIMARY KEY, domain_id int REFERENCES domains (id),
  name text NOT NULL, status text NOT NULL DEFAULT 'suggested', "conceptSummary" text,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE learning_goals (id serial PRIMARY KEY, concept_id int REFERENCES concepts (id),
  description text, difficulty int NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE user_roles (user_id int REFERENCES users (id), tenant_id int REFERENCES tenants (id),
  role text NOT NULL);
INSERT INTO tenants (name) SELECT 'tenant ' || g FROM generate_series(1, 3) g;
INSERT INTO users (email) SELECT 'u' || g || '@example.org' FROM generate_series(1, 60) g;
INSERT INTO domains (name) SELECT 'domain ' || g FROM generate_series(1, 8) g;
INSERT INTO concepts (domain_id, name, status)
  SELECT 1 + g % 8, 'concept ' || g,
         (ARRAY['suggested', 'approved', 'rejected', 'archived'])[1 + g % 4]
  FROM generate_series(1, 300) g;
INSERT INTO learning_goals (concept_id, description, difficulty)
  SELECT 1 + g % 300, 'goal ' || g, 1 + g % 5 FROM generate_series(1, 600) g;
INSERT INTO user_roles SELECT 1 + g % 60, 1 + g % 3, 'member' FROM generate_series(1, 120) g;
ANALYZE;
"""

#: Seed 001, the learning platform, verbatim except: ``user_interactions`` has the key
#: ``(id, created_at)`` (PostgreSQL refuses ``id`` alone on a table partitioned by
#: ``created_at``), and the interaction tables reference that key.
LEARNING_SQL = """
CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(), email TEXT UNIQUE NOT NULL,
  full_name TEXT NOT NULL, avatar_url TEXT,
  user_role TEXT NOT NULL CHECK (user_role IN ('student', 'instructor', 'admin')),
  metadata JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW());
CREATE TABLE courses (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(), title TEXT NOT NULL, description TEXT,
  instructor_id UUID REFERENCES users(id), thumbnail_url TEXT,
  status TEXT CHECK (status IN ('draft', 'published', 'archived')), metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW());
CREATE TABLE course_modules (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  course_id UUID REFERENCES courses(id) ON DELETE CASCADE, title TEXT NOT NULL,
  description TEXT, position INTEGER NOT NULL, is_published BOOLEAN DEFAULT false,
  metadata JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(), UNIQUE (course_id, position));
CREATE TABLE content_items (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  module_id UUID REFERENCES course_modules(id) ON DELETE CASCADE, title TEXT NOT NULL,
  description TEXT,
  content_type TEXT CHECK (content_type IN ('video', 'quiz', 'reading', 'exercise', 'attachment')),
  position INTEGER NOT NULL, duration INTEGER, is_required BOOLEAN DEFAULT true,
  metadata JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(), UNIQUE (module_id, position));
CREATE TABLE video_content (
  content_id UUID PRIMARY KEY REFERENCES content_items(id) ON DELETE CASCADE,
  video_url TEXT NOT NULL, thumbnail_url TEXT, transcript_url TEXT,
  captions_available BOOLEAN DEFAULT false, duration INTEGER NOT NULL, encoding_details JSONB);
CREATE TABLE quiz_content (
  content_id UUID PRIMARY KEY REFERENCES content_items(id) ON DELETE CASCADE,
  quiz_type TEXT CHECK (quiz_type IN ('assessment', 'practice', 'survey')),
  passing_score INTEGER, time_limit INTEGER, randomize_questions BOOLEAN DEFAULT false,
  show_answers BOOLEAN DEFAULT true, questions JSONB);
CREATE TABLE user_sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  started_at TIMESTAMP WITH TIME ZONE NOT NULL, ended_at TIMESTAMP WITH TIME ZONE,
  device_info JSONB, ip_address TEXT, metadata JSONB);
CREATE TABLE user_interactions (
  id UUID DEFAULT gen_random_uuid(),
  session_id UUID REFERENCES user_sessions(id) ON DELETE CASCADE,
  interaction_type TEXT NOT NULL,
  content_id UUID REFERENCES content_items(id) ON DELETE SET NULL,
  course_id UUID REFERENCES courses(id) ON DELETE SET NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(), metadata JSONB,
  is_processed BOOLEAN DEFAULT false, PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE user_interactions_y2023m07 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-07-01') TO ('2023-08-01');
CREATE TABLE user_interactions_y2023m08 PARTITION OF user_interactions
  FOR VALUES FROM ('2023-08-01') TO ('2023-09-01');
CREATE TABLE video_interactions (
  interaction_id UUID, interaction_at TIMESTAMP WITH TIME ZONE,
  video_id UUID REFERENCES video_content(content_id), position_seconds FLOAT,
  watched_duration FLOAT, playback_rate FLOAT, quality_level TEXT, is_fullscreen BOOLEAN,
  interaction_details JSONB, PRIMARY KEY (interaction_id, interaction_at),
  FOREIGN KEY (interaction_id, interaction_at)
    REFERENCES user_interactions (id, created_at) ON DELETE CASCADE);
CREATE TABLE quiz_interactions (
  interaction_id UUID, interaction_at TIMESTAMP WITH TIME ZONE,
  quiz_id UUID REFERENCES quiz_content(content_id), question_id TEXT, user_answer JSONB,
  is_correct BOOLEAN, time_taken FLOAT, attempt_number INTEGER, score FLOAT,
  PRIMARY KEY (interaction_id, interaction_at),
  FOREIGN KEY (interaction_id, interaction_at)
    REFERENCES user_interactions (id, created_at) ON DELETE CASCADE);
CREATE TABLE user_progress (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  course_id UUID REFERENCES courses(id) ON DELETE CASCADE,
  completed_items INTEGER DEFAULT 0, total_items INTEGER,
  last_activity_at TIMESTAMP WITH TIME ZONE, completion_percentage FLOAT, time_spent INTEGER,
  average_score FLOAT, updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (user_id, course_id));
CREATE TABLE content_engagement_metrics (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  content_id UUID REFERENCES content_items(id) ON DELETE CASCADE,
  views_count INTEGER DEFAULT 0, completion_count INTEGER DEFAULT 0,
  average_time_spent FLOAT, average_score FLOAT, difficulty_rating FLOAT,
  engagement_score FLOAT, date_measured DATE NOT NULL DEFAULT CURRENT_DATE,
  UNIQUE (content_id, date_measured));
CREATE TABLE aggregated_analytics (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  entity_type TEXT NOT NULL CHECK (entity_type IN ('course', 'module', 'content', 'user')),
  entity_id UUID NOT NULL, metric_name TEXT NOT NULL, metric_value FLOAT, dimensions JSONB,
  start_date DATE, end_date DATE,
  granularity TEXT CHECK (granularity IN ('hour', 'day', 'week', 'month')),
  UNIQUE (entity_type, entity_id, metric_name, granularity, start_date));
CREATE INDEX idx_user_interactions_session ON user_interactions(session_id);
CREATE INDEX idx_user_interactions_content ON user_interactions(content_id);
CREATE INDEX idx_user_interactions_course ON user_interactions(course_id);
CREATE INDEX idx_user_interactions_type ON user_interactions(interaction_type);
CREATE INDEX idx_user_interactions_date ON user_interactions(created_at);
CREATE INDEX idx_content_items_module ON content_items(module_id);
CREATE INDEX idx_content_items_type ON content_items(content_type);
CREATE INDEX idx_course_modules_course ON course_modules(course_id);
CREATE INDEX idx_user_progress_user ON user_progress(user_id);
CREATE INDEX idx_user_progress_course ON user_progress(course_id);
CREATE INDEX idx_user_progress_completion ON user_progress(completion_percentage);
CREATE INDEX idx_user_progress_last_activity ON user_progress(last_activity_at);
CREATE INDEX idx_aggregated_analytics_entity ON aggregated_analytics(entity_type, entity_id);
CREATE INDEX idx_aggregated_analytics_metric ON aggregated_analytics(metric_name);
CREATE INDEX idx_aggregated_analytics_date ON aggregated_analytics(start_date, end_date);
"""

#: Seed 003, the vocabulary app's init.sql: practice_sessions has no user_id, user_vocabulary
#: has no index on user_id, difficulty_level has no CHECK.
VOCAB_INIT_SQL = """
CREATE TABLE users (id SERIAL PRIMARY KEY, username VARCHAR(80) UNIQUE NOT NULL,
  email VARCHAR(120) UNIQUE NOT NULL, password_hash VARCHAR(256) NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE categories (id SERIAL PRIMARY KEY, name VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE words (id SERIAL PRIMARY KEY, word VARCHAR(100) NOT NULL,
  translation VARCHAR(200) NOT NULL, category_id INTEGER REFERENCES categories(id),
  difficulty_level INTEGER DEFAULT 1, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE user_vocabulary (id SERIAL PRIMARY KEY,
  user_id INTEGER REFERENCES users(id), word_id INTEGER REFERENCES words(id),
  mastery_level INTEGER DEFAULT 0, last_practiced TIMESTAMP);
CREATE TABLE practice_sessions (
    id SERIAL PRIMARY KEY,
    session_date TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    total_questions INTEGER DEFAULT 0,
    correct_answers INTEGER DEFAULT 0,
    duration_seconds INTEGER
);
INSERT INTO users (username, email, password_hash)
  SELECT 'user' || g, 'user' || g || '@example.org', 'x' FROM generate_series(1, 50) g;
INSERT INTO categories (name) SELECT 'category ' || g FROM generate_series(1, 6) g;
INSERT INTO words (word, translation, category_id, difficulty_level)
  SELECT 'word' || g, 'mot' || g, 1 + g % 6, 1 + g % 5 FROM generate_series(1, 500) g;
INSERT INTO user_vocabulary (user_id, word_id, mastery_level)
  SELECT 1 + g % 50, 1 + g % 500, g % 4 FROM generate_series(1, 2000) g;
ANALYZE;
"""
