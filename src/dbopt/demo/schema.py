"""The demo's schema: seed 001's learning platform, as SQL and as SQLAlchemy models.

The tables follow the seed document (UUID keys, JSONB metadata, CHECK
constraints) with the changes PostgreSQL requires: ``user_interactions`` is
partitioned by month, so its primary key is ``(id, created_at)`` and the
video and quiz interaction tables reference both columns. The seed's
"indexing strategy" is deliberately left out: that is what the index
advisor and the linter are shown to find.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "CONSTRAINTS_SQL",
    "DETAIL_SQL",
    "INTERACTIONS_COLUMNS",
    "SCHEMA_SQL",
    "Base",
    "ContentItem",
    "Course",
    "CourseModule",
    "EngagementMetric",
    "User",
    "UserInteraction",
    "UserProgress",
    "UserSession",
    "VideoInteraction",
]

SCHEMA_SQL = """
CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email TEXT UNIQUE NOT NULL,
  full_name TEXT NOT NULL,
  avatar_url TEXT,
  user_role TEXT NOT NULL CHECK (user_role IN ('student', 'instructor', 'admin')),
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE courses (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  title TEXT NOT NULL,
  description TEXT,
  instructor_id UUID REFERENCES users(id),
  thumbnail_url TEXT,
  status TEXT CHECK (status IN ('draft', 'published', 'archived')),
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE TABLE course_modules (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  course_id UUID REFERENCES courses(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  description TEXT,
  position INTEGER NOT NULL,
  is_published BOOLEAN DEFAULT false,
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (course_id, position)
);
CREATE TABLE content_items (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  module_id UUID REFERENCES course_modules(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  description TEXT,
  content_type TEXT CHECK (content_type IN ('video', 'quiz', 'reading', 'exercise', 'attachment')),
  position INTEGER NOT NULL,
  duration INTEGER,
  is_required BOOLEAN DEFAULT true,
  metadata JSONB,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (module_id, position)
);
CREATE TABLE video_content (
  content_id UUID PRIMARY KEY REFERENCES content_items(id) ON DELETE CASCADE,
  video_url TEXT NOT NULL,
  thumbnail_url TEXT,
  transcript_url TEXT,
  captions_available BOOLEAN DEFAULT false,
  duration INTEGER NOT NULL,
  encoding_details JSONB
);
CREATE TABLE quiz_content (
  content_id UUID PRIMARY KEY REFERENCES content_items(id) ON DELETE CASCADE,
  quiz_type TEXT CHECK (quiz_type IN ('assessment', 'practice', 'survey')),
  passing_score INTEGER,
  time_limit INTEGER,
  randomize_questions BOOLEAN DEFAULT false,
  show_answers BOOLEAN DEFAULT true,
  questions JSONB
);
CREATE TABLE user_sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID,
  started_at TIMESTAMP WITH TIME ZONE NOT NULL,
  ended_at TIMESTAMP WITH TIME ZONE,
  device_info JSONB,
  ip_address TEXT,
  metadata JSONB
);
"""

#: Column definitions of the partitioned ``user_interactions`` (PartitionManager.create).
INTERACTIONS_COLUMNS = """
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  session_id UUID,
  interaction_type TEXT NOT NULL,
  content_id UUID,
  course_id UUID,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  metadata JSONB,
  is_processed BOOLEAN DEFAULT false,
  PRIMARY KEY (id, created_at)
"""

DETAIL_SQL = """
CREATE TABLE video_interactions (
  interaction_id UUID NOT NULL,
  interaction_created_at TIMESTAMP WITH TIME ZONE NOT NULL,
  video_id UUID,
  position_seconds FLOAT,
  watched_duration FLOAT,
  playback_rate FLOAT,
  quality_level TEXT,
  is_fullscreen BOOLEAN,
  interaction_details JSONB,
  PRIMARY KEY (interaction_id)
);
CREATE TABLE quiz_interactions (
  interaction_id UUID NOT NULL,
  interaction_created_at TIMESTAMP WITH TIME ZONE NOT NULL,
  quiz_id UUID,
  question_id TEXT,
  user_answer JSONB,
  is_correct BOOLEAN,
  time_taken FLOAT,
  attempt_number INTEGER,
  score FLOAT,
  PRIMARY KEY (interaction_id)
);
CREATE TABLE user_progress (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  course_id UUID REFERENCES courses(id) ON DELETE CASCADE,
  completed_items INTEGER DEFAULT 0,
  total_items INTEGER,
  last_activity_at TIMESTAMP WITH TIME ZONE,
  completion_percentage FLOAT,
  time_spent INTEGER,
  average_score FLOAT,
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (user_id, course_id)
);
CREATE TABLE content_engagement_metrics (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  content_id UUID REFERENCES content_items(id) ON DELETE CASCADE,
  views_count INTEGER DEFAULT 0,
  completion_count INTEGER DEFAULT 0,
  average_time_spent FLOAT,
  average_score FLOAT,
  difficulty_rating FLOAT,
  engagement_score FLOAT,
  date_measured DATE NOT NULL DEFAULT CURRENT_DATE,
  UNIQUE (content_id, date_measured)
);
"""

#: Foreign keys of the big tables, added after the bulk load (as the seed's migration
#: plan does: "create new schema without constraints ... apply constraints").
CONSTRAINTS_SQL = """
ALTER TABLE user_sessions ADD FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE user_interactions
  ADD FOREIGN KEY (session_id) REFERENCES user_sessions(id) ON DELETE CASCADE,
  ADD FOREIGN KEY (content_id) REFERENCES content_items(id) ON DELETE SET NULL,
  ADD FOREIGN KEY (course_id) REFERENCES courses(id) ON DELETE SET NULL;
ALTER TABLE video_interactions
  ADD FOREIGN KEY (interaction_id, interaction_created_at)
    REFERENCES user_interactions (id, created_at) ON DELETE CASCADE,
  ADD FOREIGN KEY (video_id) REFERENCES video_content(content_id);
ALTER TABLE quiz_interactions
  ADD FOREIGN KEY (interaction_id, interaction_created_at)
    REFERENCES user_interactions (id, created_at) ON DELETE CASCADE,
  ADD FOREIGN KEY (quiz_id) REFERENCES quiz_content(content_id)
"""


class Base(DeclarativeBase):
    """Declarative base of the demo's models."""

    metadata = MetaData()


class User(Base):
    """A student, instructor or admin."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str]
    full_name: Mapped[str]
    user_role: Mapped[str]


class Course(Base):
    """A course with its modules; ``instructor`` is a user."""

    __tablename__ = "courses"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str]
    status: Mapped[str | None]
    instructor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    instructor: Mapped[User | None] = relationship()
    modules: Mapped[list[CourseModule]] = relationship(
        back_populates="course", order_by="CourseModule.position"
    )


class CourseModule(Base):
    """A module of a course, holding content items in order."""

    __tablename__ = "course_modules"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"))
    title: Mapped[str]
    position: Mapped[int]
    course: Mapped[Course | None] = relationship(back_populates="modules")
    items: Mapped[list[ContentItem]] = relationship(order_by="ContentItem.position")


class ContentItem(Base):
    """A video, quiz, reading, exercise or attachment."""

    __tablename__ = "content_items"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    module_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("course_modules.id"))
    title: Mapped[str]
    content_type: Mapped[str | None]
    position: Mapped[int]
    duration: Mapped[int | None]


class UserSession(Base):
    """One visit of a user."""

    __tablename__ = "user_sessions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime]


class UserInteraction(Base):
    """One click, play or answer; partitioned by month on ``created_at``."""

    __tablename__ = "user_interactions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_sessions.id"))
    interaction_type: Mapped[str]
    content_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("content_items.id"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"))
    is_processed: Mapped[bool | None]
    content: Mapped[ContentItem | None] = relationship()


class UserProgress(Base):
    """A user's progress in one course."""

    __tablename__ = "user_progress"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"))
    completion_percentage: Mapped[float | None]
    last_activity_at: Mapped[datetime | None]
    time_spent: Mapped[int | None]
    average_score: Mapped[float | None]
    user: Mapped[User | None] = relationship()
    course: Mapped[Course | None] = relationship()


class VideoInteraction(Base):
    """Video details of an interaction."""

    __tablename__ = "video_interactions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["interaction_id", "interaction_created_at"],
            ["user_interactions.id", "user_interactions.created_at"],
        ),
    )
    interaction_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    interaction_created_at: Mapped[datetime]
    video_id: Mapped[uuid.UUID | None]
    watched_duration: Mapped[float | None]


class EngagementMetric(Base):
    """Daily engagement figures of a content item."""

    __tablename__ = "content_engagement_metrics"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    content_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("content_items.id"))
    views_count: Mapped[int | None]
    completion_count: Mapped[int | None]
    average_time_spent: Mapped[float | None]
    engagement_score: Mapped[float | None]
    date_measured: Mapped[date]
    content: Mapped[ContentItem | None] = relationship()
