"""Sessions: tests, lint (ruff), typecheck (mypy --strict on src/), bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (real PostgreSQL: DBOPT_TEST_DSN, else an embedded server)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(name="tests-sqlalchemy-2.0")
def tests_sqlalchemy_20(session: nox.Session) -> None:
    """The suite on the oldest supported SQLAlchemy release line."""
    session.install("-e", ".[dev]", "SQLAlchemy>=2.0,<2.1")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    paths = ["src", "tests", "bench", "examples", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the MkDocs site with warnings as errors."""
    session.install("-e", ".[dev]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark in bench/ and print its figures."""
    session.install("-e", ".[dev]")
    import pathlib

    for script in sorted(pathlib.Path("bench").glob("[!_]*.py")):
        session.run("python", str(script), *session.posargs)
