"""Find the application's frame that issued a statement, cheaply.

The walk looks only at ``frame.f_code.co_filename`` and a cached decision per
file, so it costs a few dict look-ups per frame; nothing is formatted until a
report asks for it.
"""

from __future__ import annotations

import sys
import sysconfig
import threading
from types import CodeType, FrameType

from dbopt.core.events import CallSite

__all__ = [
    "DEFAULT_IGNORED_PACKAGES",
    "capture_stack",
    "ignore_packages",
    "treat_as_application",
]

#: Top-level packages whose frames are never the application's call site.
DEFAULT_IGNORED_PACKAGES: frozenset[str] = frozenset(
    {
        "dbopt",
        "sqlalchemy",
        "psycopg",
        "psycopg_pool",
        "psycopg2",
        "pymysql",
        "MySQLdb",
        "sqlite3",
        "aiosqlite",
        "asyncpg",
        "alembic",
        "greenlet",
        "asyncio",
        "threading",
        "concurrent",
        "contextlib",
        "contextvars",
        "functools",
        "runpy",
        "flask",
        "werkzeug",
        "starlette",
        "fastapi",
        "anyio",
        "uvicorn",
        "django",
        "celery",
        "gunicorn",
        "_pytest",
        "pytest",
        "pluggy",
        "unittest",
        "hypothesis",
        "sniffio",
        "typing_extensions",
    }
)

_ignored: set[str] = set(DEFAULT_IGNORED_PACKAGES)
_application: set[str] = set()
_decisions: dict[str, bool] = {}
_lock = threading.Lock()
_STDLIB = sysconfig.get_paths().get("stdlib", "\0")


def ignore_packages(*packages: str) -> None:
    """Treat frames from these top-level packages as library code, not call sites."""
    with _lock:
        _ignored.update(packages)
        _decisions.clear()


def treat_as_application(*modules: str) -> None:
    """Treat frames from these exact modules as application code (demos, examples)."""
    with _lock:
        _application.update(modules)
        _decisions.clear()


def _is_library(frame: FrameType) -> bool:
    """Decide (and cache by file name) whether ``frame`` belongs to library code."""
    filename = frame.f_code.co_filename
    module = frame.f_globals.get("__name__") or ""
    top = module.partition(".")[0]
    decision = module not in _application and (
        top in _ignored
        or filename.startswith("<frozen")
        or (filename.startswith(_STDLIB) and "site-packages" not in filename)
    )
    _decisions[filename] = decision
    return decision


def capture_stack(depth: int = 5, skip: int = 1) -> tuple[CallSite, ...]:
    """The innermost ``depth`` application frames of the current thread.

    Frames from dbopt, ORMs, drivers, web frameworks, test runners and the
    standard library are skipped. Returns ``()`` when there are none.
    """
    if depth <= 0:
        return ()
    try:
        frame: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return ()
    out: list[CallSite] = []
    _walk(frame, depth, out)
    if len(out) < depth:
        # SQLAlchemy's asyncio layer runs the driver in a child greenlet: the
        # application's coroutine frames are on the parent greenlet's stack.
        greenlet = sys.modules.get("greenlet")
        if greenlet is not None:
            parent = greenlet.getcurrent().parent
            if parent is not None:
                _walk(parent.gr_frame, depth, out)
    return tuple(out)


#: (id(code), f_lasti) → (code, its CallSite): computing ``f_lineno`` walks the
#: code's line table, so each call site is resolved once. The code object is
#: kept to tell a reused id apart.
_sites: dict[tuple[int, int], tuple[CodeType, CallSite]] = {}
_SITES_MAX = 4096
_new_site = tuple.__new__


def _walk(frame: FrameType | None, depth: int, out: list[CallSite]) -> None:
    decisions = _decisions
    sites = _sites
    while frame is not None:
        code = frame.f_code
        library = decisions.get(code.co_filename)
        if library is None:
            library = _is_library(frame)
        if not library:
            key = (id(code), frame.f_lasti)
            entry = sites.get(key)
            if entry is None or entry[0] is not code:
                site = _new_site(CallSite, (code.co_filename, frame.f_lineno, code.co_name))
                if len(sites) >= _SITES_MAX:
                    sites.clear()
                entry = sites[key] = (code, site)
            out.append(entry[1])
            if len(out) >= depth:
                return
        frame = frame.f_back
