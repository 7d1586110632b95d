"""eager.auto: lazy loads batched across a result, exactly right, on PostgreSQL.

Every test compares what the application reads under ``auto`` with what plain
lazy loading reads (the reference), and counts the statements with
``dbopt.capture_queries``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    create_engine,
    event,
    select,
)
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    immediateload,
    lazyload,
    mapped_column,
    relationship,
    sessionmaker,
    with_loader_criteria,
)

import dbopt
from dbopt import eager


class Base(AsyncAttrs, DeclarativeBase):
    type_annotation_map = {str: String(100)}  # noqa: RUF012 - MySQL wants lengths


post_tags = Table(
    "ea_post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("ea_posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("ea_tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "ea_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author", order_by="Post.id.desc()")
    profile: Mapped[Profile | None] = relationship(back_populates="user")
    visible_posts: Mapped[list[Post]] = relationship(
        primaryjoin="and_(User.id == Post.author_id, Post.hidden.is_(False))",
        order_by="Post.title",
        viewonly=True,
    )


class Profile(Base):
    __tablename__ = "ea_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ea_users.id"), unique=True)
    bio: Mapped[str]
    user: Mapped[User] = relationship(back_populates="profile")


class Post(Base):
    __tablename__ = "ea_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("ea_users.id"))
    title: Mapped[str]
    hidden: Mapped[bool] = mapped_column(default=False)
    author: Mapped[User | None] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post", order_by="Comment.id")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, order_by="Tag.name")


class Comment(Base):
    __tablename__ = "ea_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("ea_posts.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("ea_users.id"))
    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


class Tag(Base):
    __tablename__ = "ea_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Node(Base):
    """Self-referential, with a composite-key child."""

    __tablename__ = "ea_nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ea_nodes.id"))
    name: Mapped[str]
    children: Mapped[list[Node]] = relationship(back_populates="parent", order_by="Node.name")
    parent: Mapped[Node | None] = relationship(back_populates="children", remote_side=[id])


class Shelf(Base):
    __tablename__ = "ea_shelves"
    room: Mapped[int] = mapped_column(primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list[Book]] = relationship(order_by="Book.id")


class Book(Base):
    __tablename__ = "ea_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    room: Mapped[int]
    slot: Mapped[int]
    __table_args__ = (
        ForeignKeyConstraint(["room", "slot"], ["ea_shelves.room", "ea_shelves.slot"]),
    )


playlist_songs = Table(
    "ea_playlist_songs",
    Base.metadata,
    Column("playlist_id", ForeignKey("ea_playlists.id"), primary_key=True),
    Column("song_id", ForeignKey("ea_songs.id"), primary_key=True),
    Column("position", Integer, nullable=False),
)


class Playlist(Base):
    """Ordered by a column of the association table: batches cannot keep that order."""

    __tablename__ = "ea_playlists"
    id: Mapped[int] = mapped_column(primary_key=True)
    songs: Mapped[list[Song]] = relationship(
        secondary=playlist_songs, order_by=playlist_songs.c.position, viewonly=True
    )


class Song(Base):
    __tablename__ = "ea_songs"
    id: Mapped[int] = mapped_column(primary_key=True)


USERS = 100


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        users = [User(id=i, name=f"u{i}") for i in range(USERS)]
        tags = [Tag(id=i, name=f"t{(7 * i) % 5}") for i in range(5)]
        session.add_all(users + tags)
        for i, user in enumerate(users):
            if i % 3 == 0:
                user.profile = Profile(bio=f"bio{i}")
            for j in range(i % 4):  # users with 0 to 3 posts
                post = Post(title=f"p{i}.{j}", author=user, hidden=(j == 2), tags=tags[j : j + 2])
                post.comments = [Comment(author=users[(i * 7 + k) % USERS]) for k in range(j)]
                session.add(post)
        session.add(Post(title="orphan"))  # many-to-one to nothing
        roots = [
            Node(name=f"r{i}", children=[Node(name=f"c{i}{k}") for k in (3, 1, 2)])
            for i in range(5)
        ]
        session.add_all(roots)
        session.add_all(
            [
                Shelf(room=r, slot=s, books=[Book() for _ in range(r + s)])
                for r in range(3)
                for s in range(2)
            ]
        )
        session.add_all([Playlist(id=i) for i in range(3)] + [Song(id=i) for i in range(4)])
        session.flush()
        session.execute(
            playlist_songs.insert(),
            [
                {"playlist_id": p, "song_id": song, "position": (song * (p + 2)) % 5}
                for p in range(3)
                for song in range(4)
            ],
        )
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def reference(engine: Engine, view: Callable[[Session], Any]) -> tuple[Any, int]:
    """What plain lazy loading reads, and how many statements it takes."""
    with Session(engine) as session, dbopt.capture_queries(engine) as queries:
        return view(session), len(queries)


def with_auto(engine: Engine, view: Callable[[Session], Any], **options: Any) -> tuple[Any, int]:
    with (
        Session(engine) as session,
        eager.auto(session, **options),
        dbopt.capture_queries(engine) as queries,
    ):
        return view(session), len(queries)


def users_posts(session: Session) -> list[list[str]]:
    return [[p.title for p in u.posts] for u in session.scalars(select(User).order_by(User.id))]


# One level: each kind of relationship


@pytest.mark.parametrize(
    ("name", "view", "naive"),
    [
        ("one-to-many", users_posts, 1 + USERS),
        (
            "many-to-one",
            lambda s: [
                p.author and p.author.name for p in s.scalars(select(Post).order_by(Post.id))
            ],
            1 + 75,  # 75 distinct authors (users with posts), the orphan's is None without SQL
        ),
        (
            "many-to-many",
            lambda s: [[t.name for t in p.tags] for p in s.scalars(select(Post).order_by(Post.id))],
            1 + 151,
        ),
        (
            "one-to-one",
            lambda s: [
                u.profile and u.profile.bio for u in s.scalars(select(User).order_by(User.id))
            ],
            1 + USERS,
        ),
    ],
)
def test_a_loop_runs_two_queries(engine: Engine, name: str, view: Any, naive: int) -> None:
    expected, plain = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert plain == naive
    assert count == 2, name


def test_order_by_empty_collections_and_none(engine: Engine) -> None:
    posts, _ = with_auto(engine, users_posts)
    assert posts[1] == ["p1.0"]
    assert posts[3] == ["p3.2", "p3.1", "p3.0"]  # relationship order_by desc
    assert posts[4] == []  # a parent with nothing related gets an empty list, not a lazy load


def test_nested_paths_batch_per_level(engine: Engine) -> None:
    def view(session: Session) -> list[Any]:
        users = session.scalars(select(User).order_by(User.id)).all()
        return [
            [
                (p.title, [(c.id, c.author.name) for c in p.comments], [t.name for t in p.tags])
                for p in u.posts
            ]
            for u in users
        ]

    expected, plain = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert plain > 300
    # users, posts, comments, tags (comment authors are users already in the identity map)
    assert count == 4


def test_self_referential_and_composite_keys(engine: Engine) -> None:
    def view(session: Session) -> list[Any]:
        roots = session.scalars(select(Node).where(Node.parent_id.is_(None)).order_by(Node.id))
        shelves = session.scalars(select(Shelf).order_by(Shelf.room, Shelf.slot)).all()
        return [
            [(c.name, c.parent and c.parent.name, len(c.children)) for c in r.children]
            for r in roots
        ] + [[b.id for b in s.books] for s in shelves]

    expected, _ = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert count == 5  # roots, their children, the children's children; shelves, books


def test_loader_criteria_apply_to_the_batch(engine: Engine) -> None:
    def view(session: Session) -> list[list[str]]:
        stmt = select(User).order_by(User.id).options(with_loader_criteria(Post, ~Post.hidden))
        return [[p.title for p in u.posts] for u in session.scalars(stmt)]

    expected, _ = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert not any(title.endswith(".2") for titles in got for title in titles)
    assert count == 2


def test_custom_primaryjoin_immediateload_and_hook_criteria(engine: Engine) -> None:
    def view(session: Session) -> list[Any]:
        users = session.scalars(
            select(User).order_by(User.id).options(immediateload(User.profile))
        ).all()
        return [([p.title for p in u.visible_posts], u.profile and u.profile.bio) for u in users]

    expected, plain = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert plain == 1 + 2 * USERS
    assert count == 3

    def hide(state: ORMExecuteState) -> None:
        if state.is_select and not state.is_column_load and not state.is_relationship_load:
            state.statement = state.statement.options(
                with_loader_criteria(Post, ~Post.hidden, include_aliases=True)
            )

    factory = sessionmaker(engine)
    event.listen(factory, "do_orm_execute", hide)
    with factory() as session:
        hidden_out = users_posts(session)  # plain lazy loads, criteria from the hook
    with eager.auto(factory), factory() as session, dbopt.capture_queries(engine) as queries:
        assert users_posts(session) == hidden_out
    assert not any(title.endswith(".2") for row in hidden_out for title in row)
    assert sum(map(len, hidden_out)) == 125
    assert len(queries) == 2


def test_criteria_on_a_lazyload_option(engine: Engine) -> None:
    def view(session: Session) -> list[list[str]]:
        stmt = select(User).order_by(User.id).options(lazyload(User.posts.and_(Post.hidden)))
        return [[p.title for p in u.posts] for u in session.scalars(stmt)]

    expected, _ = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert sum(map(len, got)) == 25
    assert count == 2


def test_association_table_order_falls_back_to_lazy_loads(engine: Engine) -> None:
    def view(session: Session) -> list[list[int]]:
        return [
            [s.id for s in p.songs] for p in session.scalars(select(Playlist).order_by(Playlist.id))
        ]

    expected, plain = reference(engine, view)
    with (
        Session(engine) as session,
        eager.auto(session) as handle,
        dbopt.capture_queries(engine) as queries,
    ):
        assert view(session) == expected
    assert expected[1] == [0, 2, 1, 3]  # by position, not by id
    assert len(queries) == plain == 4
    assert handle.batches == 0


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_sqlite_and_mysql(request: pytest.FixtureRequest, backend: str) -> None:
    if backend == "sqlite":
        db: Engine = request.getfixturevalue("sqlite_engine")
    else:
        db = create_engine(request.getfixturevalue("mysql_db_url"))
        request.addfinalizer(db.dispose)
    Base.metadata.create_all(db)
    request.addfinalizer(lambda: Base.metadata.drop_all(db))
    with Session(db) as session:
        session.add_all([Shelf(room=r, slot=1, books=[Book() for _ in range(r)]) for r in range(4)])
        session.add_all(
            [User(id=i, name=f"u{i}", posts=[Post(title=f"p{i}")]) for i in range(1, 6)]
        )
        session.commit()

    def view(session: Session) -> list[Any]:
        shelves = session.scalars(select(Shelf).order_by(Shelf.room)).all()
        posts = session.scalars(select(Post).order_by(Post.id)).all()
        return [len(s.books) for s in shelves] + [p.author.name for p in posts if p.author]

    expected, plain = reference(db, view)
    got, count = with_auto(db, view)
    assert got == expected == [0, 1, 2, 3, "u1", "u2", "u3", "u4", "u5"]
    assert (plain, count) == (1 + 4 + 1 + 5, 4)


def test_batch_size(engine: Engine) -> None:
    got, count = with_auto(engine, users_posts, batch_size=30)
    assert count == 1 + 4  # 100 users in batches of 30
    assert got == reference(engine, users_posts)[0]
    with pytest.raises(dbopt.ConfigurationError):
        eager.auto(Session(engine), batch_size=1)


def detect(engine: Engine, **options: Any) -> list[tuple[str | None, str | None]]:
    findings: list[dbopt.NPlusOneFinding] = []
    detector = dbopt.NPlusOneDetector(action=findings.append)
    with dbopt.instrument(engine, detector):
        with dbopt.scope("naive"):
            reference(engine, users_posts)
        with dbopt.scope("auto"):
            with_auto(engine, users_posts, **options)
    return [(f.scope, f.relationship) for f in findings]


def test_detector_sees_no_n_plus_one_under_auto(engine: Engine) -> None:
    assert detect(engine) == [("naive", "User.posts")]


def test_detector_ignores_split_batches(engine: Engine) -> None:
    assert detect(engine, batch_size=30) == [("naive", "User.posts")]


# The identity map, expiry, refresh, pending changes


def test_single_row_results_do_not_batch(engine: Engine) -> None:
    with Session(engine) as session, eager.auto(session) as handle:
        users = [session.get(User, i) for i in range(1, 4)]
        with dbopt.capture_queries(engine) as queries:
            assert [len(u.posts) for u in users if u] == [1, 2, 3]
        assert len(queries) == 3
        assert handle.batches == 0


def test_identity_map_keeps_loaded_and_modified_collections(engine: Engine) -> None:
    with Session(engine) as session, eager.auto(session):
        first = session.scalars(select(User).where(User.id.in_([1, 2]))).all()
        assert [len(u.posts) for u in first] == [1, 2]
        first[0].posts.append(Post(title="unsaved"))  # modified, not flushed
        with session.no_autoflush:
            users = session.scalars(select(User).order_by(User.id)).all()  # includes both again
            with dbopt.capture_queries(engine) as queries:
                titles = [[p.title for p in u.posts] for u in users]
        assert titles[1] == ["unsaved", "p1.0"] or titles[1] == ["p1.0", "unsaved"]
        assert titles[2] == ["p2.1", "p2.0"]
        assert len(queries) == 1  # users 1 and 2 kept what they had; the others in one batch
        session.rollback()


def test_pending_backref_changes_survive_the_batch(engine: Engine) -> None:
    with Session(engine) as session, eager.auto(session):
        users = session.scalars(select(User).order_by(User.id)).all()
        with session.no_autoflush:
            extra = Post(title="pending", author=users[5])  # backref onto unloaded users[5].posts
            session.add(extra)
            assert [p.title for p in users[1].posts] == ["p1.0"]  # batches users[5] too
            assert sorted(p.title for p in users[5].posts) == ["p5.0", "pending"]
        session.rollback()


def test_modified_foreign_key_is_not_batched(engine: Engine) -> None:
    with Session(engine) as session, eager.auto(session):
        posts = session.scalars(
            select(Post).where(Post.author_id.is_not(None)).order_by(Post.id)
        ).all()
        with session.no_autoflush:
            posts[1].author_id = 99  # unflushed: the batch must not load the old author for it
            names = [p.author.name if p.author else None for p in posts[:4]]
        assert names[1] == "u99"
        assert names[0] == f"u{posts[0].author_id}"
        session.rollback()


def test_expired_and_refreshed_objects_read_fresh_data(engine: Engine) -> None:
    with Session(engine) as session, eager.auto(session) as handle:
        users = session.scalars(select(User).order_by(User.id)).all()
        assert len(users[4].posts) == 0
        with Session(engine) as other:  # another transaction adds a post
            other.add(Post(title="fresh", author_id=4))
            other.commit()
        session.commit()  # expires everything
        try:
            with dbopt.capture_queries(engine) as queries:
                assert [p.title for p in users[4].posts] == ["fresh"]
                counts = [len(u.posts) for u in users]
            assert counts[4] == 1
            assert sum(counts) == 151
            assert len(queries) == 2  # users[4] refreshes its own row, then one batch
            session.expire(users[7], ["posts"])
            session.refresh(users[8])
            assert [p.title for p in users[7].posts] == ["p7.2", "p7.1", "p7.0"]
            assert users[8].posts == []
            again = session.scalars(
                select(User).order_by(User.id).execution_options(populate_existing=True)
            ).all()
            with dbopt.capture_queries(engine) as queries:
                assert sum(len(u.posts) for u in again) == 151
            assert len(queries) == 1
            assert handle.fallbacks == 0
        finally:
            session.rollback()
            with Session(engine) as other:
                other.query(Post).filter(Post.title == "fresh").delete()
                other.commit()


def test_yield_per_batches_per_chunk(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def view(session: Session) -> list[int]:
        stmt = select(User).order_by(User.id).execution_options(yield_per=25)
        return [len(u.posts) for u in session.scalars(stmt)]

    expected, _ = reference(engine, view)
    got, count = with_auto(engine, view)
    assert got == expected
    assert count == 1 + 4
    # A streamed result keeps a bounded window of keys, and still batches per chunk.
    cohorts = sys.modules["dbopt.eager._cohorts"]
    monkeypatch.setattr(cohorts, "MAX_MEMBERS", 40)
    with Session(engine) as session, eager.auto(session):
        with dbopt.capture_queries(engine) as queries:
            assert view(session) == expected
        recent = session.info["dbopt.eager.cohorts"]
        assert max(len(c.keys) for c in recent) <= 40
    assert len(queries) == 1 + 4


# Targets and undo


def test_sessionmaker_and_undo(engine: Engine) -> None:
    factory = sessionmaker(engine)
    handle = eager.auto(factory)
    with factory() as session, dbopt.capture_queries(engine) as queries:
        users_posts(session)
    assert len(queries) == 2
    with Session(engine) as session, dbopt.capture_queries(engine) as queries:
        users_posts(session)  # not made by the factory
    assert len(queries) == 1 + USERS
    handle.close()
    handle.close()
    with factory() as session, dbopt.capture_queries(engine) as queries:
        users_posts(session)
    assert len(queries) == 1 + USERS
    assert "undone" in repr(handle)


def test_async_session_with_awaitable_attrs(engine: Engine, pg_url: str) -> None:
    expected, _ = reference(engine, users_posts)

    async def main() -> tuple[list[list[str]], int]:
        async_engine = create_async_engine(pg_url)
        try:
            async with AsyncSession(async_engine) as session:
                with eager.auto(session), dbopt.capture_queries(async_engine) as queries:
                    users = (await session.scalars(select(User).order_by(User.id))).all()
                    titles = [[p.title for p in await u.awaitable_attrs.posts] for u in users]
                    return titles, len(queries)
        finally:
            await async_engine.dispose()

    titles, count = asyncio.run(main())
    assert titles == expected
    assert count == 2
