"""Eager loading for SQLAlchemy: options from paths, strict mode, automatic batching.

* :func:`load` adds ``selectinload``/``joinedload`` options from dotted
  relationship paths (``"comments.author"``), checked against the mappers.
* :func:`fit_loader` says which of the two fits a parent statement, and why
  (``selectinload`` where a join would break ``GROUP BY``/``DISTINCT``/``UNION``).
* :func:`strict` makes any lazy load in a session raise
  :class:`LazyLoadError`, naming the option to add (for tests).
* :func:`paginate` pages a statement by keyset (``after`` a cursor, a unique
  tie-breaker), and :func:`cursor_of` gives the next cursor from a row.
* :func:`auto` batches lazy loads: reading ``user.posts`` on one object of a
  multi-row result loads ``posts`` for every object of that result at once.

* :func:`unused_eager_loads` reports eager loads no object read (opt-in:
  nothing is patched until it is enabled, everything is restored after).

Both :func:`strict` and :func:`auto` return a handle whose ``close()`` (or
``with`` block) removes exactly what they added.
"""

from __future__ import annotations

from dbopt.eager.auto import AutoEager, auto
from dbopt.eager.fit import LoaderFit, fit_loader, statement_shape
from dbopt.eager.load import LoaderName, load, loader_for, loader_options
from dbopt.eager.paginate import cursor_of, paginate
from dbopt.eager.strict import LazyLoadError, StrictEager, strict
from dbopt.eager.unused import UnusedEagerLoads, unused_eager_loads

__all__ = [
    "AutoEager",
    "LazyLoadError",
    "LoaderFit",
    "LoaderName",
    "StrictEager",
    "UnusedEagerLoads",
    "auto",
    "cursor_of",
    "fit_loader",
    "load",
    "loader_for",
    "loader_options",
    "paginate",
    "statement_shape",
    "strict",
    "unused_eager_loads",
]
