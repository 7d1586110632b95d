"""Change capture and copying between two tables with the same rows, keyed by a primary key.

Capture: three statement-level triggers (INSERT, UPDATE, DELETE, using
transition tables) on the source write the key of every changed row into a
change table, in order; a fourth (TRUNCATE) writes a marker row. Replay: take
a batch of change rows, delete those keys from the target and copy the
source's current rows for them; a key changed again later has a later change
row, so replaying everything in order makes the target equal the source.

A TRUNCATE marker empties the target and discards the change rows before it.
That is exact because TRUNCATE takes ACCESS EXCLUSIVE: every write before it
has committed (its change rows have lower ``seq`` and are visible once the
marker is), every write after it waits for it (higher ``seq``), and every row
the source holds after it was written after it, so it has a change row past
the marker and is copied again. Rows the copy took before the TRUNCATE are
removed with the rest; the copy ends before replay starts.

Copy: keyset batches in key order (integer, UUID or composite keys; anything
with a btree order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from dbopt.partitions import ddl
from dbopt.partitions.plan import Name

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Mirror",
    "Rows",
    "capture_setup_sql",
    "capture_sql",
    "capture_triggers_sql",
    "drop_capture_sql",
]

TRIGGER = "dbopt_capture"
#: The change table's marker column: true on the row a TRUNCATE of the source wrote.
MARKER = "dbopt_truncate"
EVENTS = ("insert", "update", "delete", "truncate")


@dataclass(frozen=True)
class Rows:
    """The rows a mirror copies: their ``key`` (column names and types), the
    ``columns`` a copy writes, and whether identity columns need ``OVERRIDING``."""

    key: tuple[str, ...]
    key_types: tuple[str, ...]
    columns: tuple[str, ...]
    overriding: bool


@dataclass(frozen=True)
class Mirror:
    """A source table mirrored into a target by the key of its ``rows``."""

    source: Name
    target: Name
    changes: Name
    rows: Rows

    def _cols(self, alias: str | None = None) -> sql.Composable:
        if alias is None:
            return sql.SQL(", ").join(map(sql.Identifier, self.rows.columns))
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.rows.columns)

    def _key(self, alias: str | None = None) -> sql.Composable:
        if alias is None:
            return sql.SQL(", ").join(map(sql.Identifier, self.rows.key))
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.rows.key)

    def _overriding(self) -> sql.Composable:
        return sql.SQL(" OVERRIDING SYSTEM VALUE" if self.rows.overriding else "")

    def copy_batch(
        self, conn: psycopg.Connection[Any], after: Sequence[Any] | None, size: int
    ) -> tuple[int, tuple[Any, ...] | None]:
        """Copy the source rows after key ``after``, ``size`` of them; (rows, last key).

        The last key is None when fewer than ``size`` rows were left: then all
        of them were copied. Two statements: the batch's last key, found by
        walking the primary key's index, then one ``INSERT ... SELECT`` of the
        key range (a plain range scan, no sort, no materialised batch). No
        ``ON CONFLICT``: keys only grow from batch to batch, so no key is
        copied twice, and concurrent writes reach the target only by replay,
        which runs after the copy.
        """
        key = self._key()
        after_sql: sql.Composable = sql.SQL("")
        params: list[Any] = []
        if after is not None:
            after_sql = sql.SQL("({}) > ({})").format(
                key, sql.SQL(", ").join(sql.Placeholder() * len(self.rows.key))
            )
            params = list(after)
        src = ddl.ident(self.source)
        last = conn.execute(
            sql.SQL("SELECT {} FROM {}{} ORDER BY {} OFFSET {} LIMIT 1").format(
                key,
                src,
                sql.SQL(" WHERE {}").format(after_sql) if after is not None else sql.SQL(""),
                key,
                sql.Literal(size - 1),
            ),
            params,
        ).fetchone()
        where = [after_sql] if after is not None else []
        if last is not None:
            where.append(
                sql.SQL("({}) <= ({})").format(
                    key, sql.SQL(", ").join(sql.Placeholder() * len(self.rows.key))
                )
            )
            params = [*params, *last]
        cur = conn.execute(
            sql.SQL("INSERT INTO {} ({}){} SELECT {} FROM {}{}").format(
                ddl.ident(self.target),
                self._cols(),
                self._overriding(),
                self._cols(),
                src,
                sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(where)) if where else sql.SQL(""),
            ),
            params,
        )
        return max(cur.rowcount, 0), None if last is None else tuple(last)

    def replay(self, conn: psycopg.Connection[Any], limit: int | None) -> int:
        """Apply up to ``limit`` change rows (all when None) in one transaction; how many.

        The change rows are taken in ``seq`` order; when they include a TRUNCATE
        marker the target is emptied and only the keys changed after the last
        marker are copied again (see the module doc for why that is exact).
        """
        pick = sql.SQL("SELECT seq FROM {} ORDER BY seq").format(ddl.ident(self.changes))
        if limit is not None:
            pick = sql.SQL("{} LIMIT {}").format(pick, sql.Literal(limit))
        with conn.transaction():
            rows = conn.execute(
                sql.SQL("DELETE FROM {} WHERE seq IN ({}) RETURNING seq, {}, {}").format(
                    ddl.ident(self.changes), pick, sql.Identifier(MARKER), self._key()
                )
            ).fetchall()
            if not rows:
                return 0
            cut = max((int(r[0]) for r in rows if r[1]), default=None)
            if cut is not None:
                conn.execute(sql.SQL("TRUNCATE {}").format(ddl.ident(self.target)))
            keys = list({tuple(r[2:]) for r in rows if not r[1] and (cut is None or r[0] > cut)})
            if keys:
                self._copy_keys(conn, keys)
        return len(rows)

    def _copy_keys(self, conn: psycopg.Connection[Any], keys: list[tuple[Any, ...]]) -> None:
        """Delete ``keys`` from the target and copy the source's current rows for them."""
        arrays = [list(col) for col in zip(*keys, strict=True)]
        unnest = sql.SQL("unnest({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}::{}[]").format(sql.Placeholder(), sql.SQL(t))
                for t in self.rows.key_types
            )
        )
        keyset = sql.SQL("{} AS k({})").format(unnest, self._key())
        # As in replay_all_sql: = ANY on the first key column keeps each side an
        # index lookup (a join alone may be planned as a scan of every partition).
        probe = sql.SQL("{} = ANY ({}::{}[])").format(
            sql.Identifier("t", self.rows.key[0]),
            sql.Placeholder(),
            sql.SQL(self.rows.key_types[0]),
        )
        for statement in self._refresh_sql(keyset, probe):
            conn.execute(statement, [*arrays, arrays[0]])

    def _refresh_sql(self, keys: sql.Composable, probe: sql.Composable) -> list[sql.Composed]:
        """Delete the target's rows for ``keys`` (a relation aliased ``k``, one column per
        key column) and copy the source's current rows for them; ``probe`` narrows ``t``
        to those keys by the first key column, so each side stays an index lookup."""
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("t", c), sql.Identifier("k", c))
            for c in self.rows.key
        )
        return [
            sql.SQL("DELETE FROM {} t USING {} WHERE {} AND {}").format(
                ddl.ident(self.target), keys, probe, match
            ),
            sql.SQL("INSERT INTO {} ({}){} SELECT {} FROM {} t JOIN {} ON {} WHERE {}").format(
                ddl.ident(self.target),
                self._cols(),
                self._overriding(),
                self._cols("t"),
                ddl.ident(self.source),
                keys,
                match,
                probe,
            ),
        ]

    def replay_all_sql(self, conn: psycopg.Connection[Any]) -> list[sql.Composed]:
        """Statements replaying every change row at once, with no round trip in between.

        Only for a caller that holds a lock keeping the source unwritten (so
        the change table cannot grow). The first statement counts the change
        rows (the number replayed). A ``DO`` block then applies a TRUNCATE
        marker if there is one (empties the target, discards the change rows
        up to the last marker, as ``replay`` does); the keys changed are
        deleted from the target and the source's current rows for them
        copied, each one set-based statement. The change rows are left (the
        caller drops the change table).
        """
        changes = ddl.ident(self.changes)
        marker = sql.Identifier(MARKER)
        truncate = sql.SQL(
            "BEGIN\n"
            "  IF EXISTS (SELECT 1 FROM {changes} WHERE {marker}) THEN\n"
            "    TRUNCATE {target};\n"
            "    DELETE FROM {changes}\n"
            "      WHERE seq <= (SELECT max(seq) FROM {changes} WHERE {marker});\n"
            "  END IF;\n"
            "END"
        ).format(changes=changes, marker=marker, target=ddl.ident(self.target))
        keys = sql.SQL("(SELECT DISTINCT {} FROM {}) k").format(
            self._key(), ddl.ident(self.changes)
        )
        # The change table has no statistics: joined as it is, the planner may hash
        # it against a full scan of the target (every partition). ``= ANY(ARRAY(...))``
        # on the key's first column makes each side an index lookup of those keys.
        first = sql.Identifier(self.rows.key[0])
        probe = sql.SQL("{} = ANY (ARRAY(SELECT {} FROM {}))").format(
            sql.Identifier("t", self.rows.key[0]), first, ddl.ident(self.changes)
        )
        return [
            sql.SQL("SELECT count(*) FROM {}").format(ddl.ident(self.changes)),
            sql.SQL("DO {}").format(sql.Literal(truncate.as_string(conn))),
            *self._refresh_sql(keys, probe),
        ]

    def ensure_marker(self, conn: psycopg.Connection[Any]) -> None:
        """Add the TRUNCATE marker column to a change table made before it existed."""
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attname = %s AND NOT attisdropped)",
            (ddl.ident(self.changes).as_string(conn), MARKER),
        ).fetchone()
        if not (row and row[0]):
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} boolean NOT NULL DEFAULT false").format(
                    ddl.ident(self.changes), sql.Identifier(MARKER)
                )
            )

    def truncate_pending(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether a captured TRUNCATE waits to be replayed."""
        row = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
                ddl.ident(self.changes), sql.Identifier(MARKER)
            )
        ).fetchone()
        return bool(row and row[0])

    def backlog(self, conn: psycopg.Connection[Any]) -> int:
        """Change rows waiting to be replayed."""
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(ddl.ident(self.changes))
        ).fetchone()
        return int(row[0]) if row else 0


def capture_sql(
    conn: psycopg.Connection[Any], mirror: Mirror, function: Name
) -> list[sql.Composed]:
    """Statements creating the change table, the trigger function and the four triggers."""
    return capture_setup_sql(conn, mirror, function) + capture_triggers_sql(mirror, function)


def capture_setup_sql(
    conn: psycopg.Connection[Any], mirror: Mirror, function: Name
) -> list[sql.Composed]:
    """Statements creating the change table and the trigger function (no lock on the source).

    The function names the change table, not the source: both can be made
    ahead of the triggers, which alone need a lock on the source (SHARE ROW
    EXCLUSIVE).
    """
    key_defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
        for c, t in zip(mirror.rows.key, mirror.rows.key_types, strict=True)
    )
    cols = sql.SQL(", ").join(map(sql.Identifier, mirror.rows.key))
    body = sql.SQL(
        "BEGIN\n"
        "  IF TG_OP = 'TRUNCATE' THEN\n"
        "    INSERT INTO {changes} ({marker}) VALUES (true);\n"
        "    RETURN NULL;\n"
        "  END IF;\n"
        "  IF TG_OP IN ('UPDATE', 'DELETE') THEN\n"
        "    INSERT INTO {changes} ({cols}) SELECT {cols} FROM old_rows;\n"
        "  END IF;\n"
        "  IF TG_OP IN ('INSERT', 'UPDATE') THEN\n"
        "    INSERT INTO {changes} ({cols}) SELECT {cols} FROM new_rows;\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END"
    ).format(changes=ddl.ident(mirror.changes), cols=cols, marker=sql.Identifier(MARKER))
    out: list[sql.Composed] = [
        sql.SQL(
            "CREATE TABLE {} (seq bigserial PRIMARY KEY, {} boolean NOT NULL DEFAULT false, {})"
        ).format(ddl.ident(mirror.changes), sql.Identifier(MARKER), key_defs),
        sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
            ddl.ident(function), sql.Literal(body.as_string(conn))
        ),
    ]
    return out


def capture_triggers_sql(mirror: Mirror, function: Name) -> list[sql.Composed]:
    """Statements creating the four triggers of ``capture_setup_sql``'s function on the source."""
    out: list[sql.Composed] = []
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        out.append(
            sql.SQL(
                "CREATE TRIGGER {} AFTER {} ON {} REFERENCING {}"
                " FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(
                sql.Identifier(f"{TRIGGER}_{event.lower()}"),
                sql.SQL(event),
                ddl.ident(mirror.source),
                sql.SQL(refs),
                ddl.ident(function),
            )
        )
    out.append(
        sql.SQL(
            "CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()"
        ).format(
            sql.Identifier(f"{TRIGGER}_truncate"), ddl.ident(mirror.source), ddl.ident(function)
        )
    )
    return out


def drop_capture_sql(source: Name, changes: Name, function: Name) -> list[sql.Composed]:
    """Statements removing what ``capture_sql`` created (each IF EXISTS)."""
    out: list[sql.Composed] = [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(f"{TRIGGER}_{event}"), ddl.ident(source)
        )
        for event in EVENTS
    ]
    out.append(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(ddl.ident(function)))
    out.append(sql.SQL("DROP TABLE IF EXISTS {}").format(ddl.ident(changes)))
    return out
