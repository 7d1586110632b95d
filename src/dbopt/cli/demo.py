"""``dbopt demo``: a learning-platform workload, and what dbopt sees of it.

This first demo runs on an in-memory SQLite database so it needs nothing
installed: the query logger's slow-query log, the in-app statistics, and the
repeated statements (an N+1) that the statistics expose, before and after a
fix. The PostgreSQL demo (embedded server, partitions, index advice) builds
on it.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TextIO

from sqlalchemy import ForeignKey, create_engine, func, insert, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

import dbopt
from dbopt.core.callsite import treat_as_application
from dbopt.report.text import stats_table, table

# The workload below stands for application code: show its lines as call sites.
treat_as_application(__name__)

__all__ = ["run_demo"]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    full_name: Mapped[str]
    user_role: Mapped[str]


class Course(Base):
    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    instructor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str]
    modules: Mapped[list[CourseModule]] = relationship(back_populates="course")
    instructor: Mapped[User] = relationship()


class CourseModule(Base):
    __tablename__ = "course_modules"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    title: Mapped[str]
    position: Mapped[int]
    course: Mapped[Course] = relationship(back_populates="modules")


class UserInteraction(Base):
    __tablename__ = "user_interactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]  # no index, no FK: as in the seed's first schema
    course_id: Mapped[int]
    interaction_type: Mapped[str]
    created_at: Mapped[datetime]


def _generate(session: Session, users: int, rng: random.Random) -> int:
    session.add_all(
        User(
            id=i,
            email=f"user{i}@example.com",
            full_name=f"User {i}",
            user_role="instructor" if i % 20 == 0 else "student",
        )
        for i in range(1, users + 1)
    )
    courses = max(5, users // 10)
    session.add_all(
        Course(
            id=c,
            title=f"Course {c}",
            instructor_id=20 * (1 + c % max(1, users // 20)),
            status=rng.choice(["draft", "published", "published", "archived"]),
        )
        for c in range(1, courses + 1)
    )
    session.add_all(
        CourseModule(id=c * 100 + p, course_id=c, title=f"Module {p}", position=p)
        for c in range(1, courses + 1)
        for p in range(1, 6)
    )
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    kinds = ["video_play", "video_pause", "quiz_start", "quiz_submit", "page_view"]
    n = users * 150
    session.execute(
        insert(UserInteraction),
        [
            {
                "id": i,
                "user_id": rng.randint(1, users),
                "course_id": rng.randint(1, courses),
                "interaction_type": rng.choice(kinds),
                "created_at": start + timedelta(minutes=i),
            }
            for i in range(1, n + 1)
        ],
    )
    session.commit()
    return n


def _course_page(session: Session) -> int:
    """List published courses with their module counts: the N+1 way."""
    total = 0
    for course in session.scalars(select(Course).where(Course.status == "published")):
        total += len(course.modules)  # lazy load per course
    return total


def _course_page_fixed(session: Session) -> int:
    """The same page with one extra query for all modules."""
    stmt = select(Course).where(Course.status == "published").options(selectinload(Course.modules))
    return sum(len(course.modules) for course in session.scalars(stmt))


def _activity_report(session: Session, users: int, rng: random.Random) -> None:
    """Per-user activity: filters on an unindexed column."""
    for _ in range(10):
        user_id = rng.randint(1, users)
        session.execute(
            select(UserInteraction.interaction_type, func.count())
            .where(UserInteraction.user_id == user_id)
            .group_by(UserInteraction.interaction_type)
        ).all()


def run_demo(rows: int = 200, out: TextIO | None = None, seed: int = 7) -> dict[str, object]:
    """Run the demo workload and print what dbopt saw; returns the figures."""
    import sys

    out = out or sys.stdout
    rng = random.Random(seed)
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    stats = dbopt.QueryStats()
    slow_log = logging.getLogger("dbopt.demo.sql")
    slow_log.propagate = False
    lines: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = _Collect(level=logging.WARNING)
    slow_log.addHandler(handler)
    slow_log.setLevel(logging.WARNING)
    logger = dbopt.QueryLogger(slow_log, slow_ms=2.0)
    started = time.perf_counter()
    try:
        with Session(engine) as session:
            interactions = _generate(session, rows, rng)
        out.write(
            f"dbopt demo: learning platform on SQLite, {rows} users, "
            f"{interactions} interactions\n\n"
        )
        with dbopt.instrument(engine, stats, logger):
            with (
                dbopt.scope("GET /courses"),
                Session(engine) as session,
                dbopt.capture_queries() as naive,
            ):
                _course_page(session)
            with (
                dbopt.scope("GET /courses (selectinload)"),
                Session(engine) as session,
                dbopt.capture_queries() as fixed,
            ):
                _course_page_fixed(session)
            with dbopt.scope("GET /activity"), Session(engine) as session:
                _activity_report(session, rows, rng)
    finally:
        slow_log.removeHandler(handler)
        engine.dispose()

    lazy = Counter(e.orm.describe() for e in naive if e.orm and e.orm.kind == "lazy_load")
    site = next((e.callsite for e in naive if e.orm and e.orm.kind == "lazy_load"), None)
    out.write("1. Repeated statements in one request (an N+1)\n")
    for what, count in lazy.items():
        out.write(f"   {count} x {what}, from {site}\n")
    out.write(
        f"   GET /courses ran {len(naive)} statements; with selectinload(Course.modules): "
        f"{len(fixed)}\n\n"
    )
    out.write(f"2. Slow queries (>= 2 ms), logged by QueryLogger: {len(lines)}\n")
    for line in lines[:3]:
        out.write("   " + line.splitlines()[0][:160] + "\n")
    out.write("\n3. Top statements by total time (QueryStats)\n")
    for line in stats_table(stats.top(5)).splitlines():
        out.write("   " + line + "\n")
    path = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the file outlives this function
        prefix="dbopt-demo-stats-", suffix=".json", delete=False
    ).name
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh)
    summary = {
        "statements": stats.total_calls,
        "naive_queries": len(naive),
        "fixed_queries": len(fixed),
        "slow_logged": len(lines),
        "stats_file": path,
        "seconds": round(time.perf_counter() - started, 2),
    }
    out.write("\n" + table(("figure", "value"), list(summary.items())) + "\n")
    out.write(f"\nSaved statistics: {path}  (show them with: dbopt stats {path})\n")
    return summary
