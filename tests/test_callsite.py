"""Call sites in the user's code: installed libraries skipped, Jinja2 templates mapped back.

Real statements on PostgreSQL; the "installed library" is a real module
imported from a ``site-packages`` directory made for the test.
"""

from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import flask
import jinja2
import pytest
from sqlalchemy import Engine, ForeignKey, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import dbopt
from dbopt.core import callsite
from dbopt.integrations.flask import DboptFlask
from dbopt.report.html_sections import _site


class Base(DeclarativeBase):
    pass


class Writer(Base):
    __tablename__ = "cs_writers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class Entry(Base):
    __tablename__ = "cs_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    writer_id: Mapped[int] = mapped_column(ForeignKey("cs_writers.id"))
    writer: Mapped[Writer] = relationship()


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Writer(id=i, name=f"w{i}") for i in range(1, 6))
        session.flush()
        session.add_all(Entry(id=i, writer_id=1 + i % 5) for i in range(1, 11))
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def installed_lib(tmp_path: Path) -> Iterator[str]:
    """A module ``cs_fakelib`` living in a ``site-packages`` directory, like any installed one."""
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    (site / "cs_fakelib.py").write_text(
        textwrap.dedent(
            """
            from sqlalchemy import text

            def run(conn):
                return conn.execute(text("SELECT 1")).scalar()
            """
        )
    )
    sys.path.insert(0, str(site))
    try:
        yield str(site / "cs_fakelib.py")
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("cs_fakelib", None)
        callsite._application.discard("cs_fakelib")
        callsite._forget()


def test_installed_packages_are_not_call_sites(engine: Engine, installed_lib: str) -> None:
    lib = importlib.import_module("cs_fakelib")
    with dbopt.capture_queries(engine) as queries, engine.connect() as conn:
        lib.run(conn)  # the line that called the library
    (query,) = [q for q in queries if q.kind == "select"]
    assert query.callsite is not None
    assert query.callsite.file == __file__
    assert query.callsite.function == "test_installed_packages_are_not_call_sites"
    callsite.treat_as_application("cs_fakelib")  # your own package, installed
    with dbopt.capture_queries(engine) as queries, engine.connect() as conn:
        lib.run(conn)
    (query,) = [q for q in queries if q.kind == "select"]
    assert query.callsite is not None
    assert (query.callsite.file, query.callsite.function) == (installed_lib, "run")


def test_ignore_paths(engine: Engine, tmp_path: Path) -> None:
    vendored = tmp_path / "vendor"
    vendored.mkdir()
    source = vendored / "cs_vendored.py"
    source.write_text(
        "from sqlalchemy import text\ndef run(c):\n    return c.execute(text('SELECT 2'))\n"
    )
    sys.path.insert(0, str(vendored))
    saved = list(callsite._ignored_paths)
    try:
        lib = importlib.import_module("cs_vendored")
        with dbopt.capture_queries(engine) as queries, engine.connect() as conn:
            lib.run(conn)
        assert queries[-1].callsite is not None
        assert queries[-1].callsite.file == str(source)
        callsite.ignore_paths(str(vendored))
        with dbopt.capture_queries(engine) as queries, engine.connect() as conn:
            lib.run(conn)
        assert queries[-1].callsite is not None
        assert queries[-1].callsite.file == __file__
    finally:
        sys.path.remove(str(vendored))
        sys.modules.pop("cs_vendored", None)
        callsite._ignored_paths[:] = saved
        callsite._forget()


TEMPLATE = """\
{% extends "base.html" %}
{% block content %}
<ul>
{% for entry in entries %}
  <li>{{ entry.id }}
      by {{ entry.writer.name }}</li>
{% endfor %}
</ul>
{% endblock %}
"""
WRITER_LINE = 6  # the line of entry.writer.name in TEMPLATE


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "base.html").write_text("<html>\n<body>\n{% block content %}{% endblock %}\n</body>")
    (folder / "index.html").write_text(TEMPLATE)
    return folder


def render_index(session: Session, environment: jinja2.Environment) -> str:
    entries = session.scalars(select(Entry).order_by(Entry.id)).all()
    return environment.get_template("index.html").render(entries=entries)


def test_jinja2_template_is_the_call_site(engine: Engine, templates: Path) -> None:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        html = render_index(session, environment)
    assert "by w2" in html
    lazy = [q for q in queries if q.orm is not None and q.orm.kind == "lazy_load"]
    assert len(lazy) == 5  # one per distinct writer
    for query in lazy:
        site = query.callsite
        assert site is not None
        assert (site.file, site.line) == (str(templates / "index.html"), WRITER_LINE)
        assert "site-packages" not in " ".join(map(str, query.stack))
        assert query.stack[1].function == "render_index"  # the view that rendered it
        assert query.stack[1].file == __file__


def test_flask_finding_names_the_template_line(engine: Engine, templates: Path) -> None:
    app = flask.Flask("cs_app", template_folder=str(templates))
    app.config["TESTING"] = True

    @app.get("/")
    def index() -> str:
        with Session(engine) as session:
            entries = session.scalars(select(Entry).order_by(Entry.id)).all()
            return flask.render_template("index.html", entries=entries)

    detector = dbopt.NPlusOneDetector(action=lambda finding: None)
    ext = DboptFlask(app, targets=[engine], detector=detector)
    try:
        assert app.test_client().get("/").status_code == 200
    finally:
        ext.close()
    (finding,) = detector.findings
    assert finding.relationship == "Entry.writer"
    assert finding.callsite is not None
    assert (finding.callsite.file, finding.callsite.line) == (
        str(templates / "index.html"),
        WRITER_LINE,
    )
    assert (finding.stack[1].file, finding.stack[1].function) == (__file__, "index")


def test_string_templates_map_lines_too(engine: Engine) -> None:
    environment = jinja2.Environment(autoescape=True)
    template = environment.from_string("{% for e in entries %}\n\n{{ e.writer.name }}{% endfor %}")
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        template.render(entries=session.scalars(select(Entry)).all())
    lazy = [q for q in queries if q.orm is not None and q.orm.kind == "lazy_load"]
    assert lazy
    assert all(q.callsite is not None and q.callsite.line == 3 for q in lazy)


def test_paths_relative_to_the_project_root(tmp_path: Path) -> None:
    auth = str(tmp_path / "app" / "auth" / "routes.py")
    main = str(tmp_path / "app" / "main" / "routes.py")
    try:
        callsite.set_project_root(tmp_path)
        assert callsite.display_path(auth) == "app/auth/routes.py"
        assert callsite.display_path("/elsewhere/x.py") == "/elsewhere/x.py"
        # the HTML report keeps two routes.py apart
        assert _site(f"{auth}:20 in login") != _site(f"{main}:20 in index")
        assert _site(f"{auth}:20 in login") == "app/auth/routes.py:20 in login"
    finally:
        callsite.set_project_root(None)
    here = callsite.display_path(__file__)
    assert here in ("tests/test_callsite.py", __file__)
    assert not here.startswith("..")


def test_site_cache_keeps_the_walk_cheap(engine: Engine) -> None:
    with engine.connect() as conn:
        for _ in range(3):
            conn.execute(text("SELECT 1"))
    before = len(callsite._sites)
    with dbopt.capture_queries(engine) as queries, engine.connect() as conn:
        for _ in range(50):
            conn.execute(text("SELECT 1"))
    assert len({q.callsite for q in queries}) == 1
    assert len(callsite._sites) <= before + 5  # one entry per site, not per statement
    logging.getLogger(__name__).debug("sites cached: %d", len(callsite._sites))
