"""The demo's application: request handlers written the way ORM code usually starts out.

Each handler is what a view of the learning platform would run. They
contain the problems dbopt is for: lazy loads in loops (N+1), filters on
columns without an index, and analytics over the partitioned interactions.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from dbopt.core.callsite import treat_as_application
from dbopt.demo.schema import (
    ContentItem,
    Course,
    EngagementMetric,
    User,
    UserInteraction,
    UserProgress,
    UserSession,
    VideoInteraction,
)

# These handlers stand for application code: report their lines as call sites.
treat_as_application(__name__)

__all__ = ["Request", "course_id", "requests", "user_id"]


def user_id(n: int) -> uuid.UUID:
    """The id of generated user ``n`` (1-based)."""
    return uuid.UUID(hashlib.md5(f"u{n}".encode()).hexdigest())  # noqa: S324 - an id


def course_id(n: int) -> uuid.UUID:
    """The id of generated course ``n`` (1-based)."""
    return uuid.UUID(hashlib.md5(f"c{n}".encode()).hexdigest())  # noqa: S324 - an id


def course_catalog(session: Session) -> list[dict[str, Any]]:
    """GET /courses: published courses with instructor and module count (two N+1s)."""
    courses = session.scalars(
        select(Course).where(Course.status == "published").order_by(Course.title).limit(24)
    ).all()
    return [
        {
            "title": course.title,
            "instructor": course.instructor.full_name if course.instructor else None,
            "modules": len(course.modules),
        }
        for course in courses
    ]


def course_outline(session: Session, course: uuid.UUID) -> list[tuple[str, list[str]]]:
    """GET /courses/<id>: modules and their items (an N+1 per module)."""
    found = session.get(Course, course)
    if found is None:
        return []
    return [(module.title, [item.title for item in module.items]) for module in found.modules]


def dashboard(session: Session, user: uuid.UUID) -> list[tuple[str, float | None]]:
    """GET /me/dashboard: the user's courses and progress (an N+1 on the course)."""
    rows = session.scalars(select(UserProgress).where(UserProgress.user_id == user)).all()
    return [(p.course.title if p.course else "", p.completion_percentage) for p in rows]


def recent_activity(session: Session, user: uuid.UUID) -> list[tuple[str, str | None]]:
    """GET /me/activity: last interactions (unindexed join columns, an N+1 on content)."""
    stmt = (
        select(UserInteraction)
        .join(UserSession, UserSession.id == UserInteraction.session_id)
        .where(UserSession.user_id == user)
        .order_by(UserInteraction.created_at.desc())
        .limit(20)
    )
    items = session.scalars(stmt).all()
    return [(i.interaction_type, i.content.title if i.content else None) for i in items]


def at_risk_students(session: Session) -> list[Any]:
    """GET /admin/at-risk: the seed's user-progress query (stalled, not finished)."""
    week_ago = datetime.now(timezone.utc) - timedelta(days=7)
    stmt = (
        select(
            User.full_name,
            Course.title,
            UserProgress.completion_percentage,
            UserProgress.time_spent,
            UserProgress.average_score,
            UserProgress.last_activity_at,
        )
        .join(User, UserProgress.user_id == User.id)
        .join(Course, UserProgress.course_id == Course.id)
        .where(UserProgress.completion_percentage < 100, UserProgress.last_activity_at < week_ago)
        .order_by(UserProgress.last_activity_at)
        .limit(50)
    )
    return list(session.execute(stmt).all())


def engagement_report(session: Session) -> list[Any]:
    """GET /admin/engagement: the seed's content-engagement query for yesterday's videos."""
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    stmt = (
        select(ContentItem.title, EngagementMetric.views_count, EngagementMetric.engagement_score)
        .join(ContentItem, EngagementMetric.content_id == ContentItem.id)
        .where(
            EngagementMetric.date_measured == yesterday,
            ContentItem.content_type == "video",
            EngagementMetric.views_count > 10,
        )
        .order_by(EngagementMetric.engagement_score.desc())
        .limit(20)
    )
    return list(session.execute(stmt).all())


def course_daily_activity(session: Session, course: uuid.UUID) -> list[Any]:
    """GET /courses/<id>/stats: daily interactions and sessions over 30 days."""
    since = datetime.now(timezone.utc) - timedelta(days=30)
    day = cast(UserInteraction.created_at, Date)
    stmt = (
        select(day, func.count(), func.count(UserInteraction.session_id.distinct()))
        .where(UserInteraction.course_id == course, UserInteraction.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    return list(session.execute(stmt).all())


def video_watch_time(session: Session, course: uuid.UUID) -> list[Any]:
    """GET /courses/<id>/videos: watch time per video over 90 days (a join of big tables)."""
    since = datetime.now(timezone.utc) - timedelta(days=90)
    stmt = (
        select(UserInteraction.content_id, func.sum(VideoInteraction.watched_duration))
        .join(
            UserInteraction,
            (VideoInteraction.interaction_id == UserInteraction.id)
            & (VideoInteraction.interaction_created_at == UserInteraction.created_at),
        )
        .where(UserInteraction.course_id == course, UserInteraction.created_at >= since)
        .group_by(UserInteraction.content_id)
    )
    return list(session.execute(stmt).all())


def processing_backlog(session: Session) -> list[Any]:
    """Worker: the oldest interactions not yet processed (a queue scan)."""
    stmt = (
        select(UserInteraction.id, UserInteraction.created_at)
        .where(UserInteraction.is_processed.is_(False))
        .order_by(UserInteraction.created_at)
        .limit(100)
    )
    return list(session.execute(stmt).all())


@dataclass(frozen=True)
class Request:
    """One request of the workload: a scope name and the handler call."""

    name: str
    call: Callable[[Session], Any]
    n_plus_one: bool = False  # a page with lazy loads in a loop
    analytic: bool = False  # filters and aggregates the index advisor works on


def requests(users: int, courses: int) -> list[Request]:
    """The workload: every handler, with a few users and courses each."""
    out = [
        Request("GET /courses", course_catalog, n_plus_one=True),
        Request("GET /courses", course_catalog, n_plus_one=True),
    ]
    for n in (3, 5, 8):
        c = course_id(n)
        out.append(Request(f"GET /courses/{n}", partial(course_outline, course=c), n_plus_one=True))
    for n in (17, 211 % users + 1, 1009 % users + 1, 4099 % users + 1):
        u = user_id(n)
        out.append(Request("GET /me/dashboard", partial(dashboard, user=u), n_plus_one=True))
        out.append(Request("GET /me/activity", partial(recent_activity, user=u), analytic=True))
    out += [Request("GET /admin/at-risk", at_risk_students, analytic=True)] * 2
    out += [Request("GET /admin/engagement", engagement_report, analytic=True)] * 2
    for n in (1, 2, 4, 7 % courses + 1):
        c = course_id(n)
        out.append(
            Request("GET /courses/stats", partial(course_daily_activity, course=c), analytic=True)
        )
    for n in (1, 3):
        c = course_id(n)
        out.append(
            Request("GET /courses/videos", partial(video_watch_time, course=c), analytic=True)
        )
    out += [Request("job process-interactions", processing_backlog, analytic=True)] * 2
    return out
