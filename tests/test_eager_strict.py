"""eager.strict: every lazy load raises, naming the relationship and the option; on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, select
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
    sessionmaker,
)

import dbopt
from dbopt import eager
from dbopt.eager import LazyLoadError


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "es_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author", cascade="all, delete-orphan")
    notes: Mapped[list[Note]] = relationship()  # no delete cascade: the flush nulls the FKs


class Post(Base):
    __tablename__ = "es_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("es_users.id"))
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(cascade="all, delete-orphan")


class Comment(Base):
    __tablename__ = "es_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("es_posts.id"))


class Note(Base):
    __tablename__ = "es_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("es_users.id"))


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def data(engine: Engine) -> Iterator[Engine]:
    with Session(engine) as session:
        session.add_all(
            [
                User(
                    id=i,
                    name=f"u{i}",
                    posts=[Post(comments=[Comment()]) for _ in range(2)],
                    notes=[Note()],
                )
                for i in range(1, 4)
            ]
        )
        session.commit()
    yield engine
    with Session(engine) as session:
        for user in session.scalars(select(User)):
            session.delete(user)
        for note in session.scalars(select(Note)):
            session.delete(note)
        session.commit()


def test_lazy_collection_raises_with_the_fix(data: Engine) -> None:
    with Session(data) as session, eager.strict(session) as guard:
        users = session.scalars(select(User).order_by(User.id)).all()
        with pytest.raises(LazyLoadError) as info:
            _ = users[0].posts
    error = info.value
    assert isinstance(error, dbopt.ReportedError)
    assert (error.relationship, error.loader_option) == ("User.posts", "selectinload(User.posts)")
    assert error.instance == "User(1)"
    assert str(error).startswith("lazy load of User.posts on User(1) in a dbopt.eager.strict()")
    assert "add .options(selectinload(User.posts)) to the query that loads the User objects" in (
        str(error)
    )
    assert guard.blocked == 1
    # The traceback ends at the line that read the attribute, through SQLAlchemy.
    assert any("users[0].posts" in (entry.statement.__str__()) for entry in info.traceback)


def test_many_to_one_gets_joinedload(data: Engine) -> None:
    with Session(data) as session, eager.strict(session):
        posts = session.scalars(select(Post).order_by(Post.id)).all()
        with pytest.raises(LazyLoadError, match=r"add \.options\(joinedload\(Post\.author\)\)"):
            _ = posts[0].author


def test_nested_path_gets_a_chained_option(data: Engine) -> None:
    with Session(data) as session, eager.strict(session):
        users = session.scalars(select(User).options(selectinload(User.posts))).all()
        with pytest.raises(LazyLoadError) as info:
            _ = users[0].posts[0].comments
    assert info.value.loader_option == "selectinload(User.posts).selectinload(Post.comments)"
    assert "to the query that loads the User objects" in str(info.value)


def test_eager_loads_identity_map_and_column_loads_pass(data: Engine) -> None:
    with Session(data) as session, eager.strict(session) as guard:
        users = session.scalars(
            select(User).options(selectinload(User.posts).selectinload(Post.comments))
        ).all()
        assert sum(len(p.comments) for u in users for p in u.posts) == 6
        # many-to-one whose target is in the identity map: no SQL, nothing to refuse
        assert {p.author.name for u in users for p in u.posts} == {"u1", "u2", "u3"}
        session.expire(users[0], ["name"])
        assert users[0].name == "u1"  # a column refresh is not a lazy load
        assert guard.blocked == 0


def test_allow_globs_and_allowing_block(data: Engine) -> None:
    with Session(data) as session, eager.strict(session, allow=["Post.*"]) as guard:
        posts = session.scalars(select(Post)).all()
        assert all(len(p.comments) == 1 for p in posts)
        users = session.scalars(select(User).order_by(User.id)).all()
        with pytest.raises(LazyLoadError):
            _ = users[0].posts
        with guard.allowing("User.posts"):
            assert len(users[1].posts) == 2
        with pytest.raises(LazyLoadError):
            _ = users[2].posts
        with guard.allowing():
            assert len(users[2].posts) == 2
        assert guard.blocked == 2


def test_undo_restores_lazy_loading(data: Engine) -> None:
    with Session(data) as session:
        guard = eager.strict(session)
        users = session.scalars(select(User).order_by(User.id)).all()
        with pytest.raises(LazyLoadError):
            _ = users[0].posts
        guard.close()
        guard.close()
        assert len(users[0].posts) == 2
        assert "undone" in repr(guard)


def test_delete_cascade_is_refused_flush_is_not(data: Engine) -> None:
    with Session(data) as session, eager.strict(session) as guard:
        user = session.scalars(select(User).where(User.id == 1)).one()
        with pytest.raises(LazyLoadError, match=r"selectinload\(User\.posts\)"):
            session.delete(user)  # the delete cascade reads user.posts: one query per user
        user = session.scalars(
            select(User).where(User.id == 2).options(selectinload(User.posts))
        ).one()
        with guard.allowing("Post.comments"):
            session.delete(user)
        # The flush itself loads user.notes to null their user_id: let through, or the
        # session would be left half-flushed.
        session.flush()
        assert session.scalars(select(Note).where(Note.user_id.is_(None))).all() != []
        session.rollback()


def test_sessionmaker_makes_every_session_strict(data: Engine) -> None:
    factory = sessionmaker(data)
    with eager.strict(factory):
        with factory() as session:
            user = session.scalars(select(User).limit(1)).one()
            with pytest.raises(LazyLoadError):
                _ = user.posts
        with Session(data) as other:  # not from the factory
            user = other.scalars(select(User).limit(1)).one()
            assert len(user.posts) == 2
    with factory() as session:
        user = session.scalars(select(User).limit(1)).one()
        assert len(user.posts) == 2


def test_async_session(data: Engine, pg_url: str) -> None:
    async def main() -> str:
        engine = create_async_engine(pg_url)
        try:
            async with AsyncSession(engine) as session:
                with eager.strict(session):
                    user = (await session.scalars(select(User).limit(1))).one()
                    try:
                        await user.awaitable_attrs.posts
                    except LazyLoadError as exc:
                        return exc.relationship
            return "no error"
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == "User.posts"


def test_bad_target() -> None:
    with pytest.raises(dbopt.ConfigurationError, match="expected a Session"):
        eager.strict(object())
