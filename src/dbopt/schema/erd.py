"""ERDs as text: Mermaid ``erDiagram`` and Graphviz DOT; ``erd()`` also renders Markdown docs.

Names that Mermaid cannot take as identifiers (spaces, quotes, newlines,
other symbols) are replaced by a safe id, unique per table and column, and
shown through an alias label; DOT quotes and HTML-escapes everything. Every
name shown goes through :func:`dbopt.postgres.render.label` /
:func:`~dbopt.postgres.render.escape`: control characters are written as
escapes and ``schema.name`` stays unambiguous, so distinct objects never
merge or look alike.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any, Literal

from dbopt.errors import ConfigurationError
from dbopt.postgres import render
from dbopt.schema.model import ForeignKeyDoc, SchemaDoc, TableDoc, from_database, from_metadata

__all__ = ["Format", "erd", "load", "render_dot", "render_mermaid"]

Format = Literal["mermaid", "dot", "markdown"]

_MERMAID_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load(source: Any, *, schemas: Sequence[str] = ()) -> SchemaDoc:
    """A :class:`SchemaDoc` from a SchemaDoc, SQLAlchemy MetaData/base, or a database target."""
    if isinstance(source, SchemaDoc):
        return source
    if hasattr(source, "tables") or hasattr(getattr(source, "metadata", None), "tables"):
        doc = from_metadata(source)
        if schemas:
            doc.tables = [t for t in doc.tables if t.schema in schemas]
        return doc
    return from_database(source, schemas=schemas)


def _several_schemas(doc: SchemaDoc) -> bool:
    return len({t.schema for t in doc.tables}) > 1


def _label(doc: SchemaDoc, table: TableDoc) -> str:
    if _several_schemas(doc) and table.schema:
        return render.label(table.schema, table.name)
    return render.escape(table.name)


class _Ids:
    """Unique Mermaid-safe ids for arbitrary names."""

    def __init__(self) -> None:
        self.taken: dict[object, str] = {}
        self.used: set[str] = set()

    def __call__(self, key: object, text: str) -> str:
        if key in self.taken:
            return self.taken[key]
        if _MERMAID_ID.fullmatch(text):
            base = text
        else:
            base = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "t"
        if not re.match(r"[A-Za-z_]", base):
            base = "t_" + base
        candidate, n = base, 2
        while candidate in self.used:
            candidate, n = f"{base}_{n}", n + 1
        self.taken[key] = candidate
        self.used.add(candidate)
        return candidate


_SHORT = (
    ("character varying", "varchar"),
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"),
    ("time without time zone", "time"),
    ("double precision", "float8"),
    ("character", "char"),
)
_MERMAID_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-\[\]()]*")


def _mermaid_type(type_: str) -> tuple[str, bool]:
    """A type token Mermaid accepts, and whether it had to drop part of the type."""
    text = type_
    for long, short in _SHORT:
        text = text.replace(long, short)
    text = text.replace(" ", "_")
    if _MERMAID_TYPE.fullmatch(text):
        return text, False
    base = re.sub(r"\(.*", "", text)
    base = re.sub(r"[^A-Za-z0-9_\-\[\]]", "_", base).strip("_") or "type"
    return (base if re.match(r"[A-Za-z_]", base) else "t_" + base), True


def _comment(text: str) -> str:
    """Text for a Mermaid quoted label or comment: one line, no double quote."""
    return render.escape(text).replace('"', "'")


def render_mermaid(doc: SchemaDoc) -> str:
    """A Mermaid ``erDiagram``: entities with typed columns and PK/FK/UK, relationships by FK."""
    ids = _Ids()
    out = ["erDiagram"]
    keys = {(t.schema, t.name): t for t in doc.tables}
    for table in doc.tables:
        label = _label(doc, table)
        eid = ids((table.schema, table.name), label.replace(".", "__"))
        head = (
            eid if eid == label and _MERMAID_ID.fullmatch(label) else f'{eid}["{_comment(label)}"]'
        )
        out.append(f"    {head} {{")
        col_ids = _Ids()
        for col in table.columns:
            cid = col_ids(col.name, col.name)
            marks = [
                m
                for m, on in (
                    ("PK", col.primary_key),
                    ("FK", col.foreign_key),
                    ("UK", col.unique and not col.primary_key),
                )
                if on
            ]
            note = [] if cid == col.name else [render.escape(col.name)]
            token, lossy = _mermaid_type(col.type)
            if lossy:
                note.append(col.type)
            if not col.nullable and not col.primary_key:
                note.append("not null")
            line = f"        {token} {cid}"
            if marks:
                line += " " + ",".join(marks)
            if note:
                line += f' "{_comment("; ".join(note))}"'
            out.append(line)
        out.append("    }")
    for table in doc.tables:
        child = ids((table.schema, table.name), "")
        for fk in table.foreign_keys:
            parent_doc = keys.get((fk.ref_schema or table.schema, fk.ref_table)) or next(
                (t for t in doc.tables if t.name == fk.ref_table), None
            )
            if parent_doc is None:
                continue
            parent = ids((parent_doc.schema, parent_doc.name), "")
            cols = {c.name: c for c in table.columns}
            optional = any(cols[c].nullable for c in fk.columns if c in cols)
            one = any(set(i.columns) == set(fk.columns) and i.unique for i in table.indexes) or (
                len(fk.columns) == 1
                and cols.get(fk.columns[0]) is not None
                and (
                    cols[fk.columns[0]].unique
                    or (
                        cols[fk.columns[0]].primary_key
                        and sum(c.primary_key for c in table.columns) == 1
                    )
                )
            )
            left = "|o" if optional else "||"
            right = "o|" if one else "o{"
            label = ", ".join(fk.columns) + _on_partitions(table, fk)
            out.append(f'    {parent} {left}--{right} {child} : "{_comment(label)}"')
    return "\n".join(out) + "\n"


def _on_partitions(table: TableDoc, fk: ForeignKeyDoc) -> str:
    """`` (on 6 of 7 partitions)`` for a key the partitions declare, else nothing."""
    if not fk.partitions:
        return ""
    return f" (on {len(fk.partitions)} of {len(table.partitions)} partitions)"


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(doc: SchemaDoc) -> str:
    """A Graphviz ``digraph``: one HTML-table node per table, one edge per foreign key."""
    out = [
        "digraph schema {",
        '    graph [rankdir=LR, fontname="Helvetica"];',
        '    node [shape=plain, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    ports: dict[tuple[str | None, str], dict[str, str]] = {}
    for table in doc.tables:
        label = html.escape(_label(doc, table))
        rows = [f'<tr><td bgcolor="#dddddd"><b>{label}</b></td></tr>']
        ports[(table.schema, table.name)] = {}
        for i, col in enumerate(table.columns):
            port = f"c{i}"
            ports[(table.schema, table.name)][col.name] = port
            marks = " ".join(
                m for m, on in (("PK", col.primary_key), ("FK", col.foreign_key)) if on
            )
            shown, type_ = render.escape(col.name), render.escape(col.type)
            text = f"{html.escape(shown)} <i>{html.escape(type_)}</i>"
            if marks:
                text += f" <b>{marks}</b>"
            rows.append(f'<tr><td port="{port}" align="left">{text}</td></tr>')
        body = "".join(rows)
        out.append(
            f'    {_dot_id(_label(doc, table))} [label=<<table border="0" '
            f'cellborder="1" cellspacing="0">{body}</table>>];'
        )
    for table in doc.tables:
        for fk in table.foreign_keys:
            parent = next(
                (
                    t
                    for t in doc.tables
                    if t.name == fk.ref_table and (fk.ref_schema in (None, t.schema))
                ),
                None,
            )
            if parent is None:
                continue
            src = ports[(table.schema, table.name)].get(fk.columns[0], "c0")
            dst = ports[(parent.schema, parent.name)].get(
                fk.ref_columns[0] if fk.ref_columns else "", "c0"
            )
            name = render.escape((fk.name or ", ".join(fk.columns)) + _on_partitions(table, fk))
            out.append(
                f"    {_dot_id(_label(doc, table))}:{src} -> "
                f"{_dot_id(_label(doc, parent))}:{dst} [label={_dot_id(name)}];"
            )
    out.append("}")
    return "\n".join(out) + "\n"


def erd(source: Any, format: Format = "mermaid", *, schemas: Sequence[str] = ()) -> str:
    """The schema of ``source`` as Mermaid, DOT or Markdown text.

    ``source`` is a live database (Engine, URL or libpq string; read without
    locking tables), SQLAlchemy ``MetaData`` or a declarative base, or a
    :class:`~dbopt.schema.model.SchemaDoc`.
    """
    from dbopt.schema.docs import render_markdown

    renderers = {"mermaid": render_mermaid, "dot": render_dot, "markdown": render_markdown}
    if format not in renderers:
        raise ConfigurationError(f"unknown ERD format {format!r}; use mermaid, dot or markdown")
    return renderers[format](load(source, schemas=schemas))
