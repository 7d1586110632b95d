"""Alembic revisions (read statically, op.* calls rendered offline), `alembic upgrade --sql` output,
files and directories, and suppressions inline and in pyproject."""

from __future__ import annotations

import contextlib
import io
import textwrap
from pathlib import Path

import pytest

from dbopt.migrations import check
from dbopt.suppress import Suppressions

# The seed's migration (seed 003, "Database Migration Script"), verbatim.
SEED_REVISION = '''\
"""fix database schema

Revision ID: 0002_fix_schema
Revises: 0001_init
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_fix_schema"
down_revision = "0001_init"


def upgrade():
    # Add user_id to practice_sessions
    op.add_column('practice_sessions',
                  sa.Column('user_id', sa.Integer(), nullable=True))

    # Add foreign key constraint
    op.create_foreign_key('fk_practice_sessions_user',
                         'practice_sessions', 'users', ['user_id'], ['id'])

    # Add missing indexes
    op.create_index('idx_practice_sessions_user_date',
                   'practice_sessions', ['user_id', 'session_date'])
    op.create_index('idx_user_vocabulary_user_mastery',
                   'user_vocabulary', ['user_id', 'mastery_level'])

    # Add unique constraints
    op.create_unique_constraint('unique_user_word',
                              'user_vocabulary', ['user_id', 'word_id'])


def downgrade():
    op.drop_constraint('unique_user_word', 'user_vocabulary', type_='unique')
    op.drop_index('idx_user_vocabulary_user_mastery', 'user_vocabulary')
    op.drop_index('idx_practice_sessions_user_date', 'practice_sessions')
    op.drop_constraint('fk_practice_sessions_user', 'practice_sessions', type_='foreignkey')
    op.drop_column('practice_sessions', 'user_id')
'''

SAFE_REVISION = """\
from alembic import op
import sqlalchemy as sa

revision = "0003_safe"
down_revision = "0002_fix_schema"


def upgrade():
    op.execute("SET lock_timeout = '5s'")
    op.add_column("practice_sessions", sa.Column("user_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_ps_user", "practice_sessions", "users", ["user_id"], ["id"],
                          postgresql_not_valid=True)
    op.create_table("badges", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id")))
    op.create_index("ix_badges_user", "badges", ["user_id"])
    with op.get_context().autocommit_block():
        op.create_index("ix_ps_user", "practice_sessions", ["user_id"],
                        postgresql_concurrently=True)
        op.execute("ALTER TABLE practice_sessions VALIDATE CONSTRAINT fk_ps_user")


def downgrade():
    pass
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_seed_revision(tmp_path: Path) -> None:
    path = write(tmp_path, "0002_fix_schema.py", SEED_REVISION)
    report = check(path)
    assert report.errors == {}
    found = [(f.code, f.metadata["line"]) for f in report]
    assert found == [
        ("MIG011", 15),  # op.add_column: the first lock, and no lock_timeout anywhere
        ("MIG004", 19),  # op.create_foreign_key without NOT VALID
        ("MIG001", 23),  # op.create_index without CONCURRENTLY
        ("MIG001", 25),
        ("MIG014", 29),  # op.create_unique_constraint builds its index under lock
    ]
    fk = report[1]
    assert fk.metadata["path"] == str(path)
    assert "NOT VALID" in (fk.fix or "")
    assert "VALIDATE CONSTRAINT fk_practice_sessions_user" in (fk.fix or "")
    unique = report[4]
    assert (unique.fix or "").startswith(
        "CREATE UNIQUE INDEX CONCURRENTLY unique_user_word ON user_vocabulary (user_id, word_id);"
    )


def test_safe_revision_is_clean(tmp_path: Path) -> None:
    report = check(write(tmp_path, "0003_safe.py", SAFE_REVISION))
    assert report.errors == {}
    assert [f.code for f in report] == []


def test_concurrently_outside_autocommit_block_fails_in_alembic(tmp_path: Path) -> None:
    text = SAFE_REVISION.replace(
        "    with op.get_context().autocommit_block():\n", "    if True:\n"
    )
    report = check(write(tmp_path, "0004.py", text))
    # without the autocommit block the VALIDATE also runs in the NOT VALID's transaction
    assert [f.code for f in report] == ["MIG003", "MIG019"]


def test_inline_suppression_in_python(tmp_path: Path) -> None:
    text = SEED_REVISION.replace(
        "    op.create_index('idx_practice_sessions_user_date',",
        "    # dbopt:ignore MIG001 -- the table is tiny\n"
        "    op.create_index('idx_practice_sessions_user_date',",
    ).replace("def upgrade():", "# dbopt:ignore-file require-lock-timeout\ndef upgrade():")
    report = check(write(tmp_path, "0002.py", text))
    assert [f.code for f in report] == ["MIG004", "MIG001", "MIG014"]
    assert {f.code for f in report.suppressed} == {"MIG001", "MIG011"}


def test_inline_suppression_in_sql() -> None:
    sql = """
    -- dbopt:ignore-file MIG011
    -- dbopt:ignore MIG001
    CREATE INDEX a ON t (x);
    CREATE INDEX b ON t (x);  -- dbopt:ignore require-concurrent-index-creation
    /* dbopt:ignore */ ALTER TABLE t DROP COLUMN y;
    CREATE INDEX c ON t (x);
    """
    report = check(sql)
    assert [(f.code, f.metadata["line"]) for f in report] == [("MIG001", 7)]


def test_suppressions_in_code_and_pyproject(tmp_path: Path) -> None:
    sql = "CREATE INDEX a ON users (x); ALTER TABLE users DROP COLUMN legacy;"
    assert [f.code for f in check(sql)] == ["MIG001", "MIG011", "MIG010"]
    assert [
        f.code for f in check(sql, suppress=["MIG011", "ban-drop-column-or-table:users.legacy"])
    ] == ["MIG001"]
    (tmp_path / "pyproject.toml").write_text('[tool.dbopt]\nsuppress = ["MIG0[01]?"]\n')
    report = check(sql, suppress=Suppressions.from_pyproject(tmp_path))
    assert [f.code for f in report] == []
    assert len(report.suppressed) == 3


def test_directory_of_mixed_migrations(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    write(versions, "0002_fix_schema.py", SEED_REVISION)
    write(versions, "0003_safe.py", SAFE_REVISION)
    write(versions, "0004_manual.sql", "SET lock_timeout = '1s';\nDROP INDEX old_idx;\n")
    write(versions, "helpers.py", "def util():\n    return 1\n")
    write(
        versions,
        "0005_app_import.py",
        "from alembic import op\nimport myapp.models\n\ndef upgrade():\n    op.drop_table('x')\n"
        "    op.create_index('i', 'x', [myapp.models.COLUMN])\n",
    )
    report = check(versions)
    assert [Path(f).name for f in report.files] == [
        "0002_fix_schema.py",
        "0003_safe.py",
        "0004_manual.sql",
        "0005_app_import.py",
        "helpers.py",
    ]
    # revisions are read, not imported: application imports do not stop the check
    assert report.errors == {}
    assert [f.code for f in report] == [
        *("MIG011", "MIG004", "MIG001", "MIG001", "MIG014", "MIG002"),
        *("MIG010", "MIG011", "MIG017"),
    ]
    assert report[5].metadata["line"] == 2
    unread = report[-1]
    assert unread.metadata["line"] == 6
    assert "myapp.models.COLUMN" in unread.message


def test_alembic_upgrade_sql_output(tmp_path: Path) -> None:
    """What `alembic upgrade --sql` prints, produced by Alembic itself, checked as SQL."""
    from alembic import command
    from alembic.config import Config

    command_dir = tmp_path / "alembic"
    config = Config(str(tmp_path / "alembic.ini"))
    with contextlib.redirect_stdout(io.StringIO()):
        command.init(config, str(command_dir))
    # the template's env.py would reconfigure logging for the whole test session
    env = command_dir / "env.py"
    env.write_text(env.read_text().replace("fileConfig(config.config_file_name)", "pass"))
    config = Config(str(tmp_path / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", "postgresql://localhost/unused")
    write(
        command_dir / "versions",
        "0001_init.py",
        """\
        from alembic import op
        import sqlalchemy as sa

        revision = "0001_init"
        down_revision = None


        def upgrade():
            op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))
            op.create_table("practice_sessions", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("session_date", sa.DateTime()))
        """,
    )
    write(command_dir / "versions", "0002_fix_schema.py", SEED_REVISION)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        command.upgrade(config, "head", sql=True)
    sql = out.getvalue()
    assert "CREATE TABLE practice_sessions" in sql
    report = check(sql)
    # one file: practice_sessions was created in it, user_vocabulary was not
    assert [f.code for f in report] == ["MIG012", "MIG013", "MIG012", "MIG001", "MIG011", "MIG014"]
    assert [f.object for f in report if f.code == "MIG001"] == ["user_vocabulary"]


def test_missing_path_is_a_configuration_error(tmp_path: Path) -> None:
    from dbopt import ConfigurationError

    with pytest.raises(ConfigurationError):
        check([tmp_path / "nope.sql"])
