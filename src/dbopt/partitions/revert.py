"""Undo or finish an online conversion (see ``convert``).

``revert_table`` after the swap replays what was written to the partitioned
table since the swap into the old table (captured into
``<table>__dbopt_revert``), then swaps back in one short transaction under
``lock_timeout`` and drops the partitioned copy. Before the swap (an
interrupted conversion) it just removes what the conversion built.
``finish_table`` stops the revert capture and, when asked, drops the old table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from psycopg import sql

from dbopt.partitions import ddl
from dbopt.partitions.capture import Mirror, drop_capture_sql
from dbopt.partitions.catalog import relation_kind
from dbopt.partitions.conversion import ConversionResult, aux_name, inspect_source
from dbopt.partitions.convert import (
    abandon,
    hand_over_sequences,
    names_for,
    rename_index,
)
from dbopt.partitions.errors import ConversionError
from dbopt.partitions.locking import LockPolicy, with_retry
from dbopt.partitions.plan import Name

if TYPE_CHECKING:
    import psycopg

    from dbopt.partitions.state import StateStore

__all__ = ["finish_table", "revert_table"]


def _exists(conn: psycopg.Connection[Any], name: Name) -> bool:
    return relation_kind(conn, *name) is not None


def revert_table(
    conn: psycopg.Connection[Any],
    store: StateStore,
    policy: LockPolicy,
    table: Name,
    *,
    batch_size: int,
    catch_up: int,
) -> ConversionResult:
    """Undo the conversion of ``table``; ConversionError when there is none to undo."""
    began = time.perf_counter()
    found = store.conversion(conn, str(table))
    if found is None:
        raise ConversionError(f"no conversion of {table} to revert")
    status, detail = found
    aux = names_for(table)
    if status == "copying":
        oid = detail.get("oid") if isinstance(detail, dict) else None
        abandon(conn, store, table, aux, oid=oid if isinstance(oid, int) else None, policy=policy)
        return ConversionResult(str(table), "abandoned", seconds=time.perf_counter() - began)
    old = aux["old"]
    if not _exists(conn, old):
        raise ConversionError(f"{old} is gone (finish_conversion dropped it?); cannot revert")
    info = inspect_source(conn, old, str(detail["key"]))
    back = Mirror(table, old, aux["revert"], info.rows)
    with_retry(lambda: back.ensure_marker(conn), policy, f"upgrade {aux['revert']}")
    replayed = 0
    for _ in range(1000):
        if back.backlog(conn) <= catch_up and not back.truncate_pending(conn):
            break
        replayed += with_retry(
            lambda: back.replay(conn, batch_size), policy, f"replay changes of {table}"
        )[0]
    renames: list[list[str]] = detail.get("renames", [])
    parked = Name(table.schema, aux_name(table.name, "reverted"))

    def attempt() -> tuple[float, int]:
        with conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(ddl.ident(table)))
            locked = time.perf_counter()
            moved = back.replay(conn, None)
            for statement in drop_capture_sql(table, aux["revert"], aux["revert_capture"]):
                conn.execute(statement)
            for original, _ in renames:
                rename_index(conn, Name(table.schema, original), aux_name(original, "gone"))
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    ddl.ident(table), sql.Identifier(parked.name)
                )
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    ddl.ident(old), sql.Identifier(table.name)
                )
            )
            for original, _ in renames:
                rename_index(conn, Name(table.schema, aux_name(original, "old")), original)
            sequences = [tuple(s) for s in detail.get("sequences", [])]
            hand_over_sequences(conn, sequences, parked, table)
            store.forget_parent(conn, str(table))
            store.drop_conversion(conn, str(table))
            return time.perf_counter() - locked, moved

    (held, moved), _ = with_retry(attempt, policy, f"swap {table} back")
    conn.execute(sql.SQL("DROP TABLE {}").format(ddl.ident(parked)))
    return ConversionResult(
        str(table),
        "reverted",
        replayed=replayed + moved,
        seconds=time.perf_counter() - began,
        swap_seconds=held,
    )


def finish_table(
    conn: psycopg.Connection[Any], store: StateStore, table: Name, *, drop_old: bool
) -> None:
    """Stop the revert capture of a swapped conversion; drop the old table if asked."""
    found = store.conversion(conn, str(table))
    if found is None or found[0] != "swapped":
        raise ConversionError(f"no swapped conversion of {table} to finish")
    aux = names_for(table)
    with conn.transaction():
        for statement in drop_capture_sql(table, aux["revert"], aux["revert_capture"]):
            conn.execute(statement)
        if drop_old:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ddl.ident(aux["old"])))
        store.drop_conversion(conn, str(table))
