"""Find the application's frame that issued a statement, cheaply.

A frame is the application's unless it is library code: installed packages
(any file under ``site-packages`` or ``dist-packages``, so SQLModel,
Flask-SQLAlchemy or Jinja2 need no special case), the standard library,
frozen modules, and the top-level packages of :data:`DEFAULT_IGNORED_PACKAGES`
(dbopt itself and the usual stacks, also when they are checked out rather
than installed). :func:`ignore_packages` and :func:`ignore_paths` add to the
exclusions, :func:`treat_as_application` overrides them for modules or
packages of yours (an editable install, a vendored app).

A statement issued while a Jinja2 template renders is attributed to the
template file and its real line (Jinja2 keeps the compiled code's line map:
``Template.get_corresponding_lineno``), with the view that rendered it as the
next frame. Django templates likewise: frames of ``django.template`` are
library code, but the innermost ``Node.render_annotated`` frame of a render
names the node's template (``node.origin``) and the line of its tag
(``node.token.lineno``).

The walk looks only at ``frame.f_code.co_filename`` and a cached decision per
file, and each call site is resolved once per code object and instruction,
so it costs a few dict look-ups per frame; nothing is formatted until a
report asks for it. :func:`display_path` writes a file relative to the
project root (the working directory, or :func:`set_project_root`) for
reports.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import threading
from types import CodeType, FrameType
from typing import Any

from dbopt.core.events import CallSite

__all__ = [
    "DEFAULT_IGNORED_PACKAGES",
    "capture_stack",
    "display_path",
    "ignore_packages",
    "ignore_paths",
    "set_project_root",
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
_ignored_paths: list[str] = []
#: file name → 0 (application), 1 (library), _DJANGO_NODES or _ASYNC_LOOP.
_decisions: dict[str, int] = {}
#: The files decided plain library code (1): most frames of a walk are, and a set's
#: ``in`` is the cheapest test the walk can make of them.
_library: set[str] = set()
_lock = threading.Lock()
_STDLIB: tuple[str, ...] = tuple(
    {
        path
        for key in ("stdlib", "platstdlib")
        for path in (
            sysconfig.get_paths().get(key),
            sysconfig.get_path(key, vars={"base": sys.base_prefix, "platbase": sys.base_prefix}),
        )
        if path
    }
)
_INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


def ignore_packages(*packages: str) -> None:
    """Treat frames from these top-level packages as library code, not call sites."""
    with _lock:
        _ignored.update(packages)
        _forget()


def ignore_paths(*prefixes: str) -> None:
    """Treat frames from files under these directories as library code (vendored code)."""
    with _lock:
        _ignored_paths.extend(os.path.abspath(p) for p in prefixes)
        _forget()


def treat_as_application(*modules: str) -> None:
    """Treat frames from these modules, or packages and their modules, as application code.

    Overrides every exclusion: use it for your own package installed into
    ``site-packages``, or for demos and examples inside a library.
    """
    with _lock:
        _application.update(modules)
        _forget()


def _forget() -> None:
    """Drop every cached decision and call site (the exclusions changed)."""
    _decisions.clear()
    _library.clear()
    _sites.clear()


def _is_application_module(module: str) -> bool:
    if not _application:
        return False
    if module in _application:
        return True
    head, _, _ = module.rpartition(".")
    while head:
        if head in _application:
            return True
        head, _, _ = head.rpartition(".")
    return False


#: The decision for the module of Django's template nodes: library code whose
#: ``render_annotated`` frames locate the template line (see _django_template_site).
_DJANGO_NODES = 2
#: The decision for ``asyncio.events``: its ``Handle._run`` frame is where an
#: asyncio task's coroutine frames end and the event loop's begin.
_ASYNC_LOOP = 3


def _is_library(frame: FrameType) -> int:
    """Decide (and cache by file name) whether ``frame`` belongs to library code."""
    filename = frame.f_code.co_filename
    module = frame.f_globals.get("__name__") or ""
    top = module.partition(".")[0]
    decision = not _is_application_module(module) and (
        top in _ignored
        or filename.startswith("<frozen")
        or any(marker in filename for marker in _INSTALLED)
        or filename.startswith(_STDLIB)
        or (bool(_ignored_paths) and filename.startswith(tuple(_ignored_paths)))
    )
    result = int(decision)
    if decision and module == "django.template.base":
        result = _DJANGO_NODES
    elif decision and module == "asyncio.events":
        result = _ASYNC_LOOP
    _decisions[filename] = result
    if result == 1:
        _library.add(filename)
    return result


_root: list[str] = []


def set_project_root(path: str | os.PathLike[str] | None) -> None:
    """The directory call sites are shown relative to (None: the working directory)."""
    _root[:] = [os.path.abspath(path)] if path is not None else []


def display_path(file: str) -> str:
    """``file`` relative to the project root when it is under it, else as given.

    Never a bare base name: ``auth/routes.py`` and ``main/routes.py`` stay apart.
    """
    root = _root[0] if _root else os.getcwd()
    if not os.path.isabs(file):
        return file
    try:
        relative = os.path.relpath(file, root)
    except ValueError:  # another drive (Windows)
        return file
    return file if relative.startswith(os.pardir) else relative


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
_sites: dict[tuple[int, int], tuple[CodeType, CallSite | None]] = {}
_SITES_MAX = 4096
_new_site = tuple.__new__


def _walk(frame: FrameType | None, depth: int, out: list[CallSite]) -> None:
    library_files = _library
    decisions = _decisions
    sites = _sites
    in_template = False
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if filename in library_files:  # most frames: nothing else to look at
            frame = frame.f_back
            continue
        library = decisions.get(filename)
        if library is None:
            library = _is_library(frame)
        if not library:
            key = (id(code), frame.f_lasti)
            entry = sites.get(key)
            if entry is None or entry[0] is not code:
                if len(sites) >= _SITES_MAX:
                    sites.clear()
                entry = sites[key] = (code, _site_of(frame, code))
            site = entry[1]
            if site is None:  # a template frame
                if not in_template:
                    in_template = True
                    out.append(_template_site(frame, code))
            else:
                in_template = False
                out.append(site)
            if len(out) >= depth:
                return
        elif library == _DJANGO_NODES and code.co_name == "render_annotated" and not in_template:
            node_site = _django_template_site(frame)
            if node_site is not None:
                in_template = True
                out.append(node_site)
                if len(out) >= depth:
                    return
        elif library == _ASYNC_LOOP and not out and code.co_name == "_run":
            # The task's own frames end here, and none was the app's: a task of
            # asyncio.gather() or a TaskGroup running a library coroutine (say
            # AsyncSession.scalars) was started by a line of the task that awaits
            # it, not by whatever started the event loop.
            _walk_awaiters(depth, out)
            if len(out) >= depth:
                return
        frame = frame.f_back


#: Tasks followed outwards at most (gather inside gather ...).
_MAX_AWAITERS = 8


def _walk_awaiters(depth: int, out: list[CallSite]) -> None:
    """Add the suspended frames of the tasks awaiting the current one, innermost first."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return
    seen = 0
    while task is not None and seen < _MAX_AWAITERS:
        seen += 1
        task = _awaiter(task, asyncio)
        if task is None:
            return
        for frame in reversed(_coroutine_frames(task.get_coro())):
            _walk(frame, depth, out)  # suspended: f_back is None, one frame each
            if len(out) >= depth:
                return


def _awaiter(task: Any, asyncio: Any) -> Any:
    """The task that waits for ``task``: through gather's future, a TaskGroup, or ``await``."""
    future_type = getattr(asyncio, "Future", None)
    task_type = getattr(asyncio, "Task", None)
    if future_type is None or task_type is None:
        return None
    pending: list[object] = [task]
    for _ in range(3):  # a task, gather's outer future, the task awaiting that
        nxt: list[object] = []
        for future in pending:
            for entry in getattr(future, "_callbacks", None) or ():
                callback = entry[0] if isinstance(entry, tuple) else entry
                owner = getattr(callback, "__self__", None)
                if isinstance(owner, task_type) and owner is not task:
                    return owner
                parent = getattr(owner, "_parent_task", None)  # TaskGroup._on_task_done
                if isinstance(parent, task_type):
                    return parent
                for cell in getattr(callback, "__closure__", None) or ():
                    try:
                        value = cell.cell_contents
                    except ValueError:  # an empty cell
                        continue
                    if isinstance(value, future_type) and value is not future:
                        nxt.append(value)
        pending = nxt
        if not pending:
            return None
    return None


def _coroutine_frames(coro: object) -> list[FrameType]:
    """The frames of a suspended coroutine chain, outermost first."""
    frames: list[FrameType] = []
    current: object | None = coro
    while current is not None and len(frames) < 200:
        frame = (
            getattr(current, "cr_frame", None)
            or getattr(current, "gi_frame", None)
            or getattr(current, "ag_frame", None)
        )
        if not isinstance(frame, FrameType):
            break
        frames.append(frame)
        current = (
            getattr(current, "cr_await", None)
            or getattr(current, "gi_yieldfrom", None)
            or getattr(current, "ag_await", None)
        )
    return frames


def _site_of(frame: FrameType, code: CodeType) -> CallSite | None:
    """The frame's call site, or None for a compiled Jinja2 template (see _template_site)."""
    if "__jinja_template__" in frame.f_globals:
        return None
    return _new_site(CallSite, (code.co_filename, frame.f_lineno, code.co_name))


_template_sites: dict[tuple[int, int], tuple[CodeType, CallSite]] = {}


def _template_site(frame: FrameType, code: CodeType) -> CallSite:
    """A template frame as its source file and line (``Template.get_corresponding_lineno``).

    Only the innermost template frame of a render is kept: the layouts'
    block calls and ``{% extends %}`` lines outside it say nothing more, and
    the next frame is the view that rendered the template.
    """
    key = (id(code), frame.f_lineno)
    entry = _template_sites.get(key)
    if entry is not None and entry[0] is code:
        return entry[1]
    template = frame.f_globals["__jinja_template__"]
    line = frame.f_lineno
    with contextlib.suppress(Exception):  # keep the compiled line rather than fail
        line = template.get_corresponding_lineno(line)
    filename = getattr(template, "filename", None) or code.co_filename
    name = getattr(template, "name", None) or code.co_name
    site = _new_site(CallSite, (filename, line, f"template {name}"))
    if len(_template_sites) >= _SITES_MAX:
        _template_sites.clear()
    _template_sites[key] = (code, site)
    return site


_node_sites: dict[int, tuple[object, CallSite | None]] = {}


def _django_template_site(frame: FrameType) -> CallSite | None:
    """A Django template node being rendered, as its template file and tag line.

    Only the innermost node of a render is kept (the ``{% for %}`` or
    ``{{ variable }}`` that ran the statement); the enclosing blocks and the
    ``{% extends %}`` say nothing more, and the next frame is the view.
    """
    node = frame.f_locals.get("self")
    entry = _node_sites.get(id(node))
    if entry is not None and entry[0] is node:
        return entry[1]
    site: CallSite | None = None
    with contextlib.suppress(Exception):  # a node without origin or token: no site
        origin = node.origin  # type: ignore[union-attr]
        line = node.token.lineno  # type: ignore[union-attr]
        name = getattr(origin, "template_name", None) or origin.name
        if isinstance(line, int):
            site = _new_site(CallSite, (str(origin.name), line, f"template {name}"))
    if len(_node_sites) >= _SITES_MAX:
        _node_sites.clear()
    _node_sites[id(node)] = (node, site)
    return site
