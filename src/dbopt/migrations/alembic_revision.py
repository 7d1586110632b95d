"""An Alembic revision file as the SQL it would run, each statement tagged with its line.

The revision's ``upgrade()`` runs against Alembic's offline (``--sql``)
context for PostgreSQL, so every ``op.*`` call is rendered exactly as
``alembic upgrade --sql`` would render it, ``op.execute()`` text included.
The frame of the revision file that made each statement gives its line, so
findings point at the ``op.*`` call and ``# dbopt:ignore`` comments there
apply. Importing the revision runs its module code, as Alembic does.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from dbopt.errors import ConfigurationError
from dbopt.migrations.statements import Statement, parse_ignores, split_sql

__all__ = ["is_revision", "revision_statements"]


def is_revision(text: str) -> bool:
    """True when ``text`` looks like an Alembic revision (an ``upgrade`` using ``op``)."""
    return "def upgrade" in text and "op." in text


def _load(path: Path) -> ModuleType:
    name = f"_dbopt_revision_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _line_in(path: str) -> int | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == path:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _render(module: ModuleType, path: str, function: str) -> list[tuple[int | None, str]]:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    emitted: list[tuple[int | None, str]] = []
    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": io.StringIO(), "transactional_ddl": True},
    )

    def capture(text: str) -> None:
        emitted.append((_line_in(path), text))

    impl: Any = ctx.impl
    impl.static_output = capture
    upgrade: Callable[[], None] = getattr(module, function)
    with Operations.context(ctx), ctx.begin_transaction(_per_migration=True):
        upgrade()
    return emitted


def revision_statements(
    path: str | Path, *, function: str = "upgrade", transactional: bool = True
) -> list[Statement]:
    """The statements ``function`` of the revision at ``path`` emits, in order.

    ``transactional`` adds the ``BEGIN``/``COMMIT`` Alembic wraps a migration
    in on PostgreSQL (``transactional_ddl``); ``autocommit_block()`` shows as
    COMMIT ... BEGIN. Raises :class:`~dbopt.ConfigurationError` when the file
    cannot be imported or rendered offline (e.g. it reads from the database).
    """
    file = Path(path)
    source = file.read_text(encoding="utf-8")
    lines = source.splitlines()
    key = str(file.resolve())
    try:
        module = _load(file.resolve())
        if not hasattr(module, function):
            raise ConfigurationError(f"{path} has no {function}()")
        emitted = _render(module, key, function)
    except ConfigurationError:
        raise
    except Exception as exc:  # the user's migration code: anything can go wrong
        raise ConfigurationError(
            f"cannot render {path} offline: {type(exc).__name__}: {exc}"
        ) from exc
    if transactional:
        emitted = [(None, "BEGIN;"), *emitted, (None, "COMMIT;")]
    out: list[Statement] = []
    for line, text in emitted:
        here = line or 1
        around = "\n".join(lines[max(here - 2, 0) : here]) if line else ""
        ignore = parse_ignores(around)
        for stmt in split_sql(text, str(path)):
            stmt.line = stmt.end_line = here
            stmt.column = 1
            if ignore is not None:
                stmt.ignore = ignore if stmt.ignore is None else stmt.ignore | ignore
            out.append(stmt)
    return out
