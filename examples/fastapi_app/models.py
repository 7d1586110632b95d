"""The learning platform's core tables (seed 001): users, courses, course modules."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import Engine, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    user_role: Mapped[str] = mapped_column(String(20))


class Course(Base):
    __tablename__ = "courses"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    instructor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(timezone.utc))
    instructor: Mapped[User] = relationship()
    modules: Mapped[list[CourseModule]] = relationship(
        back_populates="course", order_by="CourseModule.position"
    )


class CourseModule(Base):
    __tablename__ = "course_modules"
    __table_args__ = (UniqueConstraint("course_id", "position"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    course: Mapped[Course] = relationship(back_populates="modules")


def seed(engine: Engine, courses: int = 12, modules: int = 4) -> None:
    """Create the tables and a few instructors, courses and modules."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        instructors = [
            User(email=f"teacher{i}@example.com", full_name=f"Teacher {i}", user_role="instructor")
            for i in range(courses)
        ]
        session.add_all(instructors)
        for i in range(courses):
            course = Course(
                title=f"Course {i}",
                status="published" if i % 4 else "draft",
                instructor=instructors[i],
            )
            course.modules = [CourseModule(title=f"Module {p}", position=p) for p in range(modules)]
            session.add(course)
        session.commit()
