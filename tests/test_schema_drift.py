"""Drift between SQLAlchemy models and a live database (Alembic's comparison)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dbopt import ConfigurationError
from dbopt.schema import diff
from test_lint_support import LEARNING_SQL, VOCAB_INIT_SQL, fresh_schema, run

pytestmark = pytest.mark.postgres


def vocabulary_models(schema: str) -> type[DeclarativeBase]:
    """Seed 003's models.py: like init.sql, but practice_sessions has user_id."""

    class Base(DeclarativeBase):
        metadata = MetaData(schema=schema)

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(String(80), unique=True)
        email: Mapped[str] = mapped_column(String(120), unique=True)
        password_hash: Mapped[str] = mapped_column(String(256))
        created_at = mapped_column(DateTime)

    class Category(Base):
        __tablename__ = "categories"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100), unique=True)

    class Word(Base):
        __tablename__ = "words"
        id: Mapped[int] = mapped_column(primary_key=True)
        word: Mapped[str] = mapped_column(String(100))
        translation: Mapped[str] = mapped_column(String(200))
        category_id = mapped_column(Integer, ForeignKey(f"{schema}.categories.id"))
        difficulty_level = mapped_column(Integer)
        created_at = mapped_column(DateTime)

    class UserVocabulary(Base):
        __tablename__ = "user_vocabulary"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id = mapped_column(Integer, ForeignKey(f"{schema}.users.id"))
        word_id = mapped_column(Integer, ForeignKey(f"{schema}.words.id"))
        mastery_level = mapped_column(Integer)
        last_practiced = mapped_column(DateTime)

    class PracticeSession(Base):
        __tablename__ = "practice_sessions"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id = mapped_column(Integer, ForeignKey(f"{schema}.users.id"))
        session_date = mapped_column(DateTime)
        total_questions = mapped_column(Integer)
        correct_answers = mapped_column(Integer)
        duration_seconds = mapped_column(Integer)

    return Base


def _kinds(findings: list[Any]) -> set[tuple[str, str]]:
    return {(f.code, f.object) for f in findings}


def test_init_sql_versus_models_py(pg_url: str) -> None:
    with fresh_schema(pg_url, VOCAB_INIT_SQL, prefix="drift") as name:
        findings = diff(vocabulary_models(name), pg_url)
    assert _kinds(findings) == {
        ("DRIFT003", f"{name}.practice_sessions.user_id"),
        ("DRIFT010", f"{name}.practice_sessions.(user_id)"),  # the model's unnamed FK
    }
    column = next(f for f in findings if f.code == "DRIFT003")
    assert column.severity == "error"
    assert column.message == (
        f"column {name}.practice_sessions.user_id (INTEGER) is missing from the database"
    )
    assert column.fix == f"ALTER TABLE {name}.practice_sessions ADD COLUMN user_id INTEGER;"
    assert "op.add_column('practice_sessions'" in column.metadata["alembic"]
    fk = next(f for f in findings if f.code == "DRIFT010")
    assert "FOREIGN KEY(user_id) REFERENCES" in (fk.fix or "")


def test_fixes_bring_the_database_to_the_models(pg_url: str) -> None:
    with fresh_schema(pg_url, VOCAB_INIT_SQL, prefix="drift") as name:
        models = vocabulary_models(name)
        findings = diff(models, pg_url)
        for f in sorted(findings, key=lambda f: f.code):  # the column before its foreign key
            run(pg_url, name, f.fix or "")
        assert diff(models, pg_url) == []


def test_both_directions_types_nullability_indexes(pg_url: str) -> None:
    ddl = """
    CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, legacy int,
      score int, nick varchar(10));
    CREATE INDEX accounts_legacy ON accounts (legacy);
    CREATE TABLE leftovers (id int PRIMARY KEY);
    """
    with fresh_schema(pg_url, ddl, prefix="drift") as name:
        meta = MetaData(schema=name)
        Table(
            "accounts",
            meta,
            Column("id", BigInteger, primary_key=True),
            Column("email", Text, nullable=True),
            Column("score", BigInteger),
            Column("nick", String(10)),
            Column("created", DateTime),
            Index("accounts_nick", "nick"),
            UniqueConstraint("email", name="accounts_email_key"),
        )
        Table("audit", meta, Column("id", BigInteger, primary_key=True))
        findings = diff(meta, pg_url)
        run(pg_url, name, "INSERT INTO accounts (id, email) VALUES (1, 'a')")
    by_code: dict[str, set[str]] = {}
    for f in findings:
        by_code.setdefault(f.code, set()).add(f.object)
    assert by_code == {
        "DRIFT001": {f"{name}.audit"},
        "DRIFT002": {f"{name}.leftovers"},
        "DRIFT003": {f"{name}.accounts.created"},
        "DRIFT004": {f"{name}.accounts.legacy"},
        "DRIFT005": {f"{name}.accounts.score"},
        "DRIFT006": {f"{name}.accounts.email"},
        "DRIFT008": {f"{name}.accounts.accounts_nick"},
        "DRIFT009": {f"{name}.accounts.accounts_legacy"},
        "DRIFT010": {f"{name}.accounts.accounts_email_key"},
    }
    dropped = next(f for f in findings if f.code == "DRIFT002")
    assert (dropped.fix or "").startswith("-- add it to the models, or drop it")
    typ = next(f for f in findings if f.code == "DRIFT005")
    assert typ.metadata["database"] == "INTEGER"
    assert typ.metadata["model"] == "BIGINT"


def test_partitions_are_not_drift(pg_url: str) -> None:
    with fresh_schema(pg_url, LEARNING_SQL, prefix="drift") as name:
        meta = MetaData(schema=name)
        uuid = UUID(as_uuid=True)
        Table(
            "users",
            meta,
            Column("id", uuid, primary_key=True),
            Column("email", Text, nullable=False, unique=True),
            Column("full_name", Text, nullable=False),
            Column("avatar_url", Text),
            Column("user_role", Text, nullable=False),
            Column("metadata", JSONB),
            Column("created_at", DateTime(timezone=True)),
            Column("updated_at", DateTime(timezone=True)),
        )
        Table(
            "user_interactions",
            meta,
            Column("id", uuid, primary_key=True),
            Column("session_id", uuid),
            Column("interaction_type", Text, nullable=False),
            Column("content_id", uuid),
            Column("course_id", uuid),
            Column("created_at", DateTime(timezone=True), primary_key=True),
            Column("metadata", JSONB),
            Column("is_processed", Boolean),
            Index("idx_user_interactions_session", "session_id"),
            Index("idx_user_interactions_content", "content_id"),
            Index("idx_user_interactions_course", "course_id"),
            Index("idx_user_interactions_type", "interaction_type"),
            Index("idx_user_interactions_date", "created_at"),
        )
        findings = diff(meta, pg_url)
    # every other table is reported as unmodelled, but never the two partitions
    extra = {f.object for f in findings if f.code == "DRIFT002"}
    assert f"{name}.courses" in extra
    assert not any("y2023" in f.object for f in findings)
    # the modelled parent matches, indexes included, except the foreign keys to tables this
    # model leaves out; its partitions are no drift
    modelled = {
        (f.code, f.metadata["name"])
        for f in findings
        if f.metadata["table"] in ("users", "user_interactions")
    }
    assert modelled == {
        ("DRIFT011", "user_interactions_content_id_fkey"),
        ("DRIFT011", "user_interactions_course_id_fkey"),
        ("DRIFT011", "user_interactions_session_id_fkey"),
    }


def test_bad_input() -> None:
    with pytest.raises(ConfigurationError):
        diff(object(), "postgresql://localhost/x")


def test_suppressing_drift(pg_url: str) -> None:
    with fresh_schema(pg_url, VOCAB_INIT_SQL, prefix="drift") as name:
        models = vocabulary_models(name)
        assert diff(models, pg_url, suppress=["DRIFT010"])[0].code == "DRIFT003"
        assert (
            diff(
                models,
                pg_url,
                suppress=[f"column_missing:{name}.practice_sessions.*", "constraint_missing"],
            )
            == []
        )
