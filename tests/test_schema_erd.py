"""ERDs (Mermaid, DOT) and Markdown docs from a live database and from SQLAlchemy models."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sqlalchemy import create_engine

from dbopt import ConfigurationError
from dbopt.schema import erd, from_database, from_metadata
from test_lint_support import LEARNING_SQL, connect, fresh_schema
from test_schema_drift import vocabulary_models

pytestmark = pytest.mark.postgres

HOSTILE = """
CREATE TABLE "Odd ""Parent"" x" (id bigint PRIMARY KEY, "Display Name" text NOT NULL,
  "pipe|col" numeric(10,2));
CREATE TABLE child (id bigint PRIMARY KEY,
  parent_id bigint NOT NULL REFERENCES "Odd ""Parent"" x" (id),
  at timestamp with time zone);
COMMENT ON TABLE child IS 'Children | of the odd parent';
"""

_ENTITY = re.compile(r'^    ([A-Za-z_][A-Za-z0-9_]*)(\["[^"]*"\])? \{$')
_ATTRIBUTE = re.compile(
    r"^        [A-Za-z_][A-Za-z0-9_\-\[\]()]* [A-Za-z_][A-Za-z0-9_]*"
    r'( (PK|FK|UK)(,(PK|FK|UK))*)?( "[^"]*")?$'
)
_RELATION = re.compile(
    r"^    [A-Za-z_][A-Za-z0-9_]* (\|\||\|o)--(o\{|o\|) "
    r'[A-Za-z_][A-Za-z0-9_]* : "[^"]*"$'
)


def assert_mermaid_syntax(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """Every line matches Mermaid's erDiagram grammar; returns entities and edges."""
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    entities, edges = set(), set()
    for line in lines[1:]:
        if m := _ENTITY.match(line):
            entities.add(m.group(1))
        elif _RELATION.match(line):
            parts = line.split()
            edges.add((parts[0], parts[2]))
        else:
            assert line == "    }" or _ATTRIBUTE.match(line), line
    return entities, edges


def test_mermaid_from_the_learning_platform(pg_url: str) -> None:
    with fresh_schema(pg_url, LEARNING_SQL, prefix="erd") as name:
        text = erd(pg_url, "mermaid", schemas=[name])
    entities, edges = assert_mermaid_syntax(text)
    assert len(entities) == 13  # partitions are folded into user_interactions
    assert not any("y2023" in e for e in entities)
    assert ("users", "courses") in edges
    assert ("user_interactions", "video_interactions") in edges
    assert ("content_items", "video_content") in edges
    # video_content's key is also its foreign key: one to one
    assert re.search(r"^    content_items \|\|--o\| video_content : ", text, re.M)
    # a nullable foreign key: zero or one parent
    assert re.search(r"^    users \|o--o\{ courses : \"instructor_id\"$", text, re.M)
    assert "        uuid id PK" in text


def test_database_and_models_draw_the_same_diagram(pg_url: str) -> None:
    with fresh_schema(pg_url, prefix="erd") as name:
        models = vocabulary_models(name)
        engine = create_engine(pg_url)
        try:
            models.metadata.create_all(engine)
        finally:
            engine.dispose()
        from_db = assert_mermaid_syntax(erd(pg_url, "mermaid", schemas=[name]))
    from_models = assert_mermaid_syntax(erd(models, "mermaid"))
    assert from_db == from_models
    assert ("users", "practice_sessions") in from_db[1]


def test_hostile_identifiers(pg_url: str) -> None:
    with fresh_schema(pg_url, HOSTILE, prefix="erd") as name:
        doc = from_database(pg_url, schemas=[name])
    mermaid = erd(doc, "mermaid")
    entities, edges = assert_mermaid_syntax(mermaid)
    assert entities == {"Odd_Parent_x", "child"}
    assert "Odd_Parent_x[\"Odd 'Parent' x\"] {" in mermaid
    assert '        text Display_Name "Display Name; not null"' in mermaid
    assert '        numeric pipe_col "pipe|col; numeric(10,2)"' in mermaid
    assert edges == {("Odd_Parent_x", "child")}
    markdown = erd(doc, "markdown")
    assert "Children \\| of the odd parent" in markdown
    assert "| `pipe\\|col` | numeric(10,2) |" in markdown
    dot = erd(doc, "dot")
    assert '"Odd \\"Parent\\" x"' in dot
    assert "pipe|col" in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_dot(pg_url: str) -> None:
    with fresh_schema(pg_url, HOSTILE + LEARNING_SQL, prefix="erd") as name:
        dot = erd(pg_url, "dot", schemas=[name])
    binary = shutil.which("dot") or "dot"
    result = subprocess.run(  # noqa: S603 - Graphviz with our own text on stdin
        [binary, "-Tsvg"], input=dot, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count('class="node"') == 15
    assert result.stdout.count('class="edge"') == 17  # 16 foreign keys in the seed, 1 here


def test_markdown_docs_with_sizes_rows_and_indexes(pg_url: str) -> None:
    ddl = (
        LEARNING_SQL
        + """
    INSERT INTO users (email, full_name, user_role)
      SELECT 'u' || g || '@x.org', 'U ' || g, 'student' FROM generate_series(1, 500) g;
    ANALYZE users;
    """
    )
    with fresh_schema(pg_url, ddl, prefix="erd") as name:
        markdown = erd(pg_url, "markdown", schemas=[name])
    assert markdown.startswith("# Schema of ")
    assert f"| [{name}.users](#{name}-users) | ~500 |" in markdown
    users = markdown.split(f"## `{name}.users`")[1].split("\n## ")[0]
    assert "rows ~500 · table " in users
    assert (
        f"| `users_email_key` | CREATE UNIQUE INDEX users_email_key ON {name}.users "
        "USING btree (email) |" in users
    )
    assert "**Referenced by**" in users
    assert f"- `{name}.courses` (instructor_id)" in users
    assert "**Checks**" in users
    interactions = markdown.split(f"## `{name}.user_interactions`")[1].split("\n## ")[0]
    assert "2 partitions" in interactions
    assert "`user_interactions_y2023m07`" in interactions


def test_docs_while_a_table_is_locked_fall_back_to_columns(pg_url: str) -> None:
    with fresh_schema(pg_url, LEARNING_SQL, prefix="erd") as name:
        holder = connect(pg_url)
        holder.autocommit = False
        try:
            holder.execute(f'LOCK TABLE "{name}".users IN ACCESS EXCLUSIVE MODE')
            doc = from_database(pg_url, schemas=[name], lock_timeout_ms=100)
        finally:
            holder.rollback()
            holder.close()
    users = doc.table(name, "users")
    assert users is not None
    assert [i.definition for i in users.indexes] == [None, None]
    assert "UNIQUE (email)" in erd(doc, "markdown")


def test_metadata_source_and_bad_format() -> None:
    doc = from_metadata(vocabulary_models("app"))
    assert [t.name for t in doc.tables][:2] == ["categories", "users"]
    ps = doc.table("app", "practice_sessions")
    assert ps is not None
    assert ps.foreign_keys[0].ref_table == "users"
    with pytest.raises(ConfigurationError):
        erd(doc, "svg")  # type: ignore[arg-type]
