"""check-migrations reads, never runs: Alembic revisions are parsed with ast (never imported),
and control characters in SQL are findings at their position, not places where text hides."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from dbopt.cli import ExitCode, main
from dbopt.migrations import check
from dbopt.migrations.alembic_revision import RevisionInfo, read_revision, revision_statements


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def exiting_revision(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran.txt"
    path = write(
        tmp_path / "0007_exit.py",
        f'''\
        """a revision that would end any process that imports or runs it"""
        import os
        import sys
        from pathlib import Path

        from alembic import op

        revision = "0007_exit"
        down_revision = ("0005", "0006")
        Path({str(marker)!r}).write_text("module code ran")
        os.environ["DBOPT_REVISION_RAN"] = "1"


        def upgrade():
            Path({str(marker)!r}).write_text("upgrade ran")
            sys.exit(0)
            op.create_index("ix_posts_author", "posts", ["author_id"])
        ''',
    )
    return path, marker


def test_a_revision_that_exits_is_checked_not_run(tmp_path: Path) -> None:
    path, marker = exiting_revision(tmp_path)
    report = check(path)
    assert report.errors == {}
    assert [f.code for f in report] == ["MIG001", "MIG011"]
    assert report[0].metadata["line"] == 17
    assert not marker.exists()
    assert read_revision(path) == RevisionInfo("0007_exit", ("0005", "0006"), None, None)


def test_the_cli_does_not_exit_0_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, marker = exiting_revision(tmp_path)
    assert main(["check-migrations", str(tmp_path)]) == ExitCode.FINDINGS
    out = capsys.readouterr().out
    assert "MIG001" in out
    assert "ix_posts_author" in out
    assert not marker.exists()


def test_static_reading_follows_constants_loops_helpers_and_batches(tmp_path: Path) -> None:
    path = write(
        tmp_path / "0008_static.py",
        """\
        from alembic import op
        import sqlalchemy as sa
        from sqlalchemy.dialects import postgresql

        revision: str = "0008"
        down_revision = "0007"
        TABLE = "orders"
        COLUMNS = ["customer_id", "created_at"]


        def _index(column, *, unique=False):
            op.create_index(op.f(f"ix_{TABLE}_{column}"), TABLE, [column], unique=unique)


        def upgrade():
            op.execute("SET lock_timeout = '2s'")
            for column in COLUMNS:
                _index(column)
            op.add_column(TABLE, sa.Column("meta", postgresql.JSONB(astext_type=sa.Text())))
            with op.batch_alter_table("customers") as batch:
                batch.alter_column("email", type_=sa.String(320))
            if some_flag_from_the_environment():
                op.drop_column(TABLE, "legacy")
            else:
                op.execute(sa.text("UPDATE orders SET status = 'x' WHERE status IS NULL"))
            bind = op.get_bind()
            bind.execute(sa.text("DELETE FROM orders"))
            op.add_column(TABLE, sa.Column("total", sa.Numeric(12, 2), nullable=False))
        """,
    )
    assert read_revision(path).revision == "0008"
    statements = [s.text for s in revision_statements(path) if s.node is not None]
    assert "CREATE INDEX ix_orders_customer_id ON orders (customer_id)" in statements
    assert "CREATE INDEX ix_orders_created_at ON orders (created_at)" in statements
    assert "ALTER TABLE orders ADD COLUMN meta JSONB" in statements
    assert "ALTER TABLE customers ALTER COLUMN email TYPE VARCHAR(320)" in statements
    report = check(path)
    assert report.errors == {}
    found = [(f.code, f.metadata["line"]) for f in report]
    assert found == [
        ("MIG001", 12),  # the helper's op call, once per column of the loop
        ("MIG001", 12),
        ("MIG008", 20),  # batch.alter_column(type_=...), emitted when the batch ends
        ("MIG010", 23),  # an unknown condition: both branches are read
        ("MIG044", 25),  # the UPDATE runs in the transaction that locked orders
        ("MIG017", 27),  # bind.execute(...): a connection the checker never has
        ("MIG015", 28),
    ]
    assert "bind.execute" in report[5].message


@pytest.mark.parametrize(
    "expression",
    [
        '"x" * 10**12',
        '"a".ljust(1000000000)',
        "f\"{'a':>999999999}\"",
        '"%999999999s" % "a"',
        "list(range(10**10))",
        "__import__('os').system('touch dbopt-pwned')",
        "open('/etc/passwd').read()",
        "sa.create_engine('sqlite://').connect()",
        "sa.text.__globals__['__builtins__']",
    ],
)
def test_hostile_arguments_are_not_evaluated(
    tmp_path: Path, expression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path / "0009_hostile.py",
        f"""\
        from alembic import op
        import sqlalchemy as sa

        def upgrade():
            op.execute({expression})
        """,
    )
    start = time.monotonic()
    report = check(path)
    assert time.monotonic() - start < 5
    assert [f.code for f in report] == ["MIG017"]
    assert not (tmp_path / "dbopt-pwned").exists()


def test_a_revision_that_is_not_python_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "0010_bad.py"
    path.write_text("from alembic import op\ndef upgrade(:\n    op.drop_table('x')\n")
    report = check(path)
    assert list(report.errors) == [str(path)]
    assert "SyntaxError" in report.errors[str(path)]


def test_a_nul_byte_is_a_finding_and_hides_nothing(tmp_path: Path) -> None:
    path = tmp_path / "0011_nul.sql"
    path.write_text(
        "SET lock_timeout = '1s';\n"
        "CREATE INDEX CONCURRENTLY a ON t (x); -- \x00 the rest used to vanish\n"
        "DROP TABLE users;\n",
        encoding="utf-8",
    )
    report = check(path)
    assert [(f.code, f.metadata["line"], f.metadata["column"]) for f in report] == [
        ("MIG016", 2, 42),
        ("MIG010", 3, 1),  # after the NUL: checked
    ]
    nul = report[0]
    assert nul.severity.name.lower() == "error"
    assert "NUL byte U+0000 at line 2, column 42" in nul.message


def test_other_control_characters_are_findings(tmp_path: Path) -> None:
    sql = "SELECT 1;\nSELECT '\x1b[2K';\n/* \u202e */ SELECT 2;\n"
    report = check(sql)
    assert [(f.code, f.metadata["line"]) for f in report] == [("MIG016", 2), ("MIG016", 3)]
    assert "U+001B" in report[0].message
    assert "U+202E" in report[1].message
    # tabs, newlines and carriage returns are ordinary whitespace
    assert not check("SELECT\t1;\r\nSELECT 2;\n").codes()


def test_control_characters_in_op_execute_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "0012_nul.py",
        """\
        from alembic import op

        def upgrade():
            op.execute("SET lock_timeout = '1s'; SELECT 1; -- \\x00\\nDROP TABLE users")
        """,
    )
    report = check(path)
    assert [f.code for f in report] == ["MIG016", "MIG010"]
    assert report[0].metadata["line"] == 4


def test_many_control_characters_are_capped(tmp_path: Path) -> None:
    report = check("SELECT 1; -- " + "\x01" * 500 + "\nSELECT 2;")
    assert [f.code for f in report] == ["MIG016"] * 20
    assert "480 more" in report[-1].message
    sarif = tmp_path / "out.sarif"
    assert (
        main(["check-migrations", str(_as_file(tmp_path)), "--format", "json", "-o", str(sarif)])
        == ExitCode.FINDINGS
    )
    assert "MIG016" in json.dumps(json.loads(sarif.read_text()))


def _as_file(tmp_path: Path) -> Path:
    path = tmp_path / "ctl.sql"
    path.write_text("SELECT 1;\x07\n", encoding="utf-8")
    return path
