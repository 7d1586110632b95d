"""The seed documents' schemas produce the problems those documents call out."""

from __future__ import annotations

import pytest

from dbopt.lint import LintConfig
from test_lint_support import (
    CONCEPTS_SQL,
    LEARNING_SQL,
    VOCAB_INIT_SQL,
    fresh_schema,
    lint_schema,
)

pytestmark = pytest.mark.postgres

AUDIT = LintConfig(audit_columns=("created_at", "updated_at"))


def _by(report: object, code: str) -> set[tuple[str, ...]]:
    out = set()
    for f in report.of(code):  # type: ignore[attr-defined]
        m = f.metadata
        out.add((m["table"], m.get("column") or m.get("index") or m.get("constraint") or ""))
    return out


def test_concepts_app(pg_url: str) -> None:
    with fresh_schema(pg_url, CONCEPTS_SQL, prefix="seed") as name:
        report = lint_schema(pg_url, name)
    # "Missing indexes on foreign key columns": exactly the seed's own list
    assert _by(report, "LINT001") == {
        ("concepts", "concepts_domain_id_fkey"),
        ("learning_goals", "learning_goals_concept_id_fkey"),
        ("user_roles", "user_roles_user_id_fkey"),
        ("user_roles", "user_roles_tenant_id_fkey"),
    }
    # "Add check constraints": chk_concepts_status and chk_learning_goals_difficulty
    enum_like = {(f.metadata["table"], f.metadata["column"]): f for f in report.of("LINT009")}
    assert set(enum_like) >= {("concepts", "status"), ("learning_goals", "difficulty")}
    assert enum_like[("concepts", "status")].metadata["values"] == [
        "approved",
        "archived",
        "rejected",
        "suggested",
    ]
    assert "difficulty BETWEEN 1 AND 5" in (enum_like[("learning_goals", "difficulty")].fix or "")
    # "Some tables lack proper constraints" / "Missing audit timestamps on some tables"
    assert _by(report, "LINT002") == {("user_roles", "")}
    # by default LINT013 follows the schema: 4 of its 6 tables have created_at, only 3
    # updated_at, so created_at is the convention
    audit = {f.metadata["table"]: f.metadata["missing"] for f in report.of("LINT013")}
    assert audit == {"domains": ["created_at"], "user_roles": ["created_at"]}
    with fresh_schema(pg_url, CONCEPTS_SQL, prefix="seed") as name:
        configured = lint_schema(pg_url, name, rules=["LINT013"], config=AUDIT)
    audit = {f.metadata["table"]: f.metadata["missing"] for f in configured}
    assert audit == {
        "domains": ["created_at", "updated_at"],
        "learning_goals": ["updated_at"],
        "user_roles": ["created_at", "updated_at"],
    }
    # "Inconsistent naming conventions"
    assert ("concepts", "") in {(t, "") for t, _ in _by(report, "LINT014")}


def test_learning_platform(pg_url: str) -> None:
    with fresh_schema(pg_url, LEARNING_SQL, prefix="seed") as name:
        report = lint_schema(pg_url, name)
    assert _by(report, "LINT001") == {
        ("courses", "courses_instructor_id_fkey"),
        ("user_sessions", "user_sessions_user_id_fkey"),
        ("video_interactions", "video_interactions_video_id_fkey"),
        ("quiz_interactions", "quiz_interactions_quiz_id_fkey"),
    }
    # the seed's indexing strategy adds single-column indexes that its UNIQUE constraints
    # already cover
    assert _by(report, "LINT005") == {
        ("content_items", "idx_content_items_module"),
        ("course_modules", "idx_course_modules_course"),
        ("user_progress", "idx_user_progress_user"),
        ("aggregated_analytics", "idx_aggregated_analytics_entity"),
    }
    # the partitions are not reported on their own
    assert not any("y2023" in f.object for f in report)
    assert "LINT010" not in report.codes()  # every timestamp has a time zone


def test_vocabulary_app(pg_url: str) -> None:
    with fresh_schema(pg_url, VOCAB_INIT_SQL, prefix="seed") as name:
        report = lint_schema(pg_url, name)
    # "No index on user_vocabulary(user_id)"
    assert ("user_vocabulary", "user_vocabulary_user_id_fkey") in _by(report, "LINT001")
    # "No check constraints for data validation": difficulty_level 1..5
    assert ("words", "difficulty_level") in _by(report, "LINT009")
    assert {
        ("users", "created_at"),
        ("words", "created_at"),
        ("practice_sessions", "session_date"),
        ("user_vocabulary", "last_practiced"),
    } <= _by(report, "LINT010")
    # "No unique constraints on important combinations": nothing prevents the same word
    # twice per user; the linter cannot know that. Only 2 of its 4 tables have created_at,
    # so there is no convention to follow by default; asked for audit columns, it sees
    # user_vocabulary's missing ones
    assert "LINT013" not in report.codes()
    with fresh_schema(pg_url, VOCAB_INIT_SQL, prefix="seed") as name:
        configured = lint_schema(pg_url, name, rules=["LINT013"], config=AUDIT)
    assert ("user_vocabulary", "") in {(t, "") for t, _ in _by(configured, "LINT013")}
