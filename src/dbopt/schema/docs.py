"""Markdown documentation of a schema: a table index, then per table its columns, keys,
indexes (with sizes and scans from a live database), foreign keys both ways, checks.

Names are shown through :func:`dbopt.postgres.render.escape` (control
characters as escapes, nothing collapsed), so distinct objects stay distinct;
anchors are unique per document.
"""

from __future__ import annotations

from dbopt.postgres import render
from dbopt.schema.model import SchemaDoc, TableDoc

__all__ = ["render_markdown"]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: str) -> str:
    """A name as inline code: escaped, never collapsed (``a  b`` stays distinct from ``a b``)."""
    text = render.escape(value).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _rows(n: float | None) -> str:
    return "" if n is None else f"~{n:,.0f}"


def _anchor(table: TableDoc) -> str:
    text = f"{table.schema}.{table.name}" if table.schema else table.name
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())


def _anchors(doc: SchemaDoc) -> dict[tuple[str | None, str], str]:
    """A unique anchor per table (``-2``, ``-3`` ... when two names map to the same one)."""
    out: dict[tuple[str | None, str], str] = {}
    used: set[str] = set()
    for table in doc.tables:
        base = _anchor(table)
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        used.add(anchor)
        out[(table.schema, table.name)] = anchor
    return out


def _table_section(doc: SchemaDoc, table: TableDoc, anchor: str) -> list[str]:
    out = [f'<a id="{anchor}"></a>', f"## {_code(table.full_name)}", ""]
    if table.comment:
        out += [_cell(table.comment), ""]
    facts = []
    if table.rows is not None:
        facts.append(f"rows {_rows(table.rows)}")
    if table.size_bytes is not None:
        facts.append(f"table {_size(table.size_bytes)}")
    if table.index_bytes is not None:
        facts.append(f"indexes {_size(table.index_bytes)}")
    if table.partitions:
        facts.append(f"{len(table.partitions)} partitions")
    if facts:
        out += [" · ".join(facts), ""]
    out += ["| Column | Type | Null | Default | Key | Comment |", "|---|---|---|---|---|---|"]
    for col in table.columns:
        key = ", ".join(
            k
            for k, on in (("PK", col.primary_key), ("FK", col.foreign_key), ("UNIQUE", col.unique))
            if on
        )
        out.append(
            f"| {_code(col.name)} | {_cell(col.type)} | "
            f"{'yes' if col.nullable else 'no'} | {_cell(col.default)} | {key} | "
            f"{_cell(col.comment)} |"
        )
    if table.indexes:
        out += ["", "**Indexes**", "", "| Name | Definition | Size | Scans |", "|---|---|---|---|"]
        for idx in table.indexes:
            definition = idx.definition or (
                f"{'UNIQUE ' if idx.unique else ''}({', '.join(idx.columns)})"
            )
            out.append(
                f"| {_code(idx.name)} | {_cell(definition)} | {_size(idx.size_bytes)} | "
                f"{'' if idx.scans is None else idx.scans} |"
            )
    if table.foreign_keys:
        out += ["", "**References**", ""]
        for fk in table.foreign_keys:
            target = f"{fk.ref_schema}.{fk.ref_table}" if fk.ref_schema else fk.ref_table
            action = f" ON DELETE {fk.on_delete}" if fk.on_delete else ""
            out.append(
                f"- ({_cell(', '.join(fk.columns))}) → {_code(target)} "
                f"({_cell(', '.join(fk.ref_columns))}){action}"
            )
    referenced = [
        (other, fk)
        for other in doc.tables
        for fk in other.foreign_keys
        if fk.ref_table == table.name and fk.ref_schema in (None, table.schema)
    ]
    if referenced:
        out += ["", "**Referenced by**", ""]
        out += [f"- {_code(o.full_name)} ({_cell(', '.join(fk.columns))})" for o, fk in referenced]
    if table.checks:
        out += ["", "**Checks**", ""]
        out += [f"- {_code(name)}: {_cell(defn)}" for name, defn in table.checks]
    if table.partitions:
        out += ["", "**Partitions**: " + ", ".join(_code(p) for p in table.partitions)]
    return [*out, ""]


def render_markdown(doc: SchemaDoc) -> str:
    """The schema as a Markdown document (GitHub-flavoured tables)."""
    title = f"Schema of {doc.database}" if doc.database else "Schema"
    out = [
        f"# {_cell(title)}",
        "",
        f"{len(doc.tables)} tables.",
        "",
        "| Table | Rows | Size | Comment |",
        "|---|---|---|---|",
    ]
    anchors = _anchors(doc)
    for table in doc.tables:
        link = _cell(render.escape(table.full_name))
        out.append(
            f"| [{link}](#{anchors[(table.schema, table.name)]}) | {_rows(table.rows)} | "
            f"{_size(table.size_bytes)} | {_cell(table.comment)} |"
        )
    out.append("")
    for table in doc.tables:
        out += _table_section(doc, table, anchors[(table.schema, table.name)])
    return "\n".join(out)
