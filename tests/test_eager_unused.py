"""``dbopt.eager.unused_eager_loads()``: relationships loaded eagerly and never read.

Scenarios from bullet's unused eager loading specs (flyerhzm/bullet
``spec/integration/active_record/association_spec.rb``, the ``has_many`` and
``belongs_to`` contexts), ported to SQLAlchemy 2 on PostgreSQL: Rails'
``includes`` is ``selectinload`` (joined and subquery variants too), and each
scenario keeps bullet's models (Category, Post, Entry, Comment, Writer),
statement shape and verdict: which ``(model, association)`` bullet reports as
an unused preload. Then: the tracker is opt-in and ``disable()`` restores
everything it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, event, insert, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)
from sqlalchemy.orm.attributes import InstrumentedAttribute

import dbopt
from dbopt.core.nplusone_findings import NPlusOneError, NPlusOneFinding
from dbopt.core.sinks import _attached
from dbopt.eager import UnusedEagerLoads, unused_eager_loads
from dbopt.errors import ConfigurationError

BULLET = "flyerhzm/bullet spec/integration/active_record/association_spec.rb"


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "neu_categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="category", order_by="Post.id")
    entries: Mapped[list[Entry]] = relationship(order_by="Entry.id")


class Writer(Base):
    __tablename__ = "neu_writers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Post(Base):
    __tablename__ = "neu_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    category_id: Mapped[int] = mapped_column(ForeignKey("neu_categories.id"))
    writer_id: Mapped[int] = mapped_column(ForeignKey("neu_writers.id"))
    category: Mapped[Category] = relationship(back_populates="posts")
    writer: Mapped[Writer] = relationship()
    comments: Mapped[list[Comment]] = relationship(back_populates="post", order_by="Comment.id")


class Entry(Base):
    __tablename__ = "neu_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    category_id: Mapped[int] = mapped_column(ForeignKey("neu_categories.id"))


class Comment(Base):
    __tablename__ = "neu_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    post_id: Mapped[int] = mapped_column(ForeignKey("neu_posts.id"))
    post: Mapped[Post] = relationship(back_populates="comments")


class Tagged(Base):
    """A relationship eager by default on the mapper (``lazy="selectin"``)."""

    __tablename__ = "neu_tagged"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("neu_posts.id"))
    post: Mapped[Post] = relationship(lazy="selectin")


@pytest.fixture(scope="module")
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    # bullet's seed, in small: two categories, writers, posts with comments, entries
    with pg_engine.begin() as conn:
        conn.execute(insert(Category), [{"id": 1, "name": "first"}, {"id": 2, "name": "second"}])
        conn.execute(insert(Writer), [{"id": 1, "name": "w1"}, {"id": 2, "name": "w2"}])
        conn.execute(
            insert(Post),
            [
                {"id": i, "name": f"p{i}", "category_id": 1 + i % 2, "writer_id": 1 + i % 2}
                for i in range(1, 5)
            ],
        )
        conn.execute(
            insert(Entry), [{"id": i, "name": f"e{i}", "category_id": 1 + i % 2} for i in (1, 2)]
        )
        conn.execute(
            insert(Comment), [{"id": i, "name": f"c{i}", "post_id": 1 + i % 4} for i in range(1, 9)]
        )
        conn.execute(insert(Tagged), [{"id": 1, "post_id": 1}, {"id": 2, "post_id": 2}])
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


def unused(engine: Engine, body: Callable[[Session], Any]) -> set[str]:
    found: list[NPlusOneFinding] = []
    with Session(engine) as session, unused_eager_loads(action=found.append):
        with dbopt.scope("test"):
            body(session)
        scoped = {f.relationship for f in found}
    assert all(f.kind == "unused_eager_load" for f in found)
    return {r for r in scoped if r}


def _names(items: Any) -> list[str]:
    return [item.name for item in items]


# (bullet test, body, what bullet reports as unused)
SCENARIOS: list[tuple[str, Callable[[Session], Any], set[str]]] = [
    (
        "has_many post => comments: should detect preload with post => comments",
        lambda s: [
            _names(p.comments) for p in s.scalars(select(Post).options(selectinload(Post.comments)))
        ],
        set(),
    ),
    (
        "has_many post => comments: should detect unused preload post => comments",
        lambda s: _names(s.scalars(select(Post).options(selectinload(Post.comments)))),
        {"Post.comments"},
    ),
    (
        "has_many post => comments: should not detect unused preload post => comments",
        lambda s: _names(s.scalars(select(Post))),
        set(),
    ),
    (
        "category => posts => comments: should detect preload with category => posts => comments",
        lambda s: [
            [_names(p.comments) for p in c.posts]
            for c in s.scalars(
                select(Category).options(selectinload(Category.posts).selectinload(Post.comments))
            )
        ],
        set(),
    ),
    (
        "category => posts => comments: should detect unused preload with "
        "category => posts => comments",
        lambda s: _names(
            s.scalars(
                select(Category).options(selectinload(Category.posts).selectinload(Post.comments))
            )
        ),
        {"Category.posts", "Post.comments"},  # bullet asserts Post.comments
    ),
    (
        "category => posts => comments: should detect unused preload with post => commnets, "
        "no category => posts",
        lambda s: [
            _names(c.posts)
            for c in s.scalars(
                select(Category).options(selectinload(Category.posts).selectinload(Post.comments))
            )
        ],
        {"Post.comments"},
    ),
    (
        "category => posts, category => entries: should detect unused preload with "
        "category => [posts, entries]",
        lambda s: _names(
            s.scalars(
                select(Category).options(
                    selectinload(Category.posts), selectinload(Category.entries)
                )
            )
        ),
        {"Category.posts", "Category.entries"},
    ),
    (
        "category => posts, category => entries: should detect unused preload with "
        "category => entries, but not with category => posts",
        lambda s: [
            _names(c.posts)
            for c in s.scalars(
                select(Category).options(
                    selectinload(Category.posts), selectinload(Category.entries)
                )
            )
        ],
        {"Category.entries"},
    ),
    (
        "post => comment: should detect unused preload with post => comments (first&.name)",
        lambda s: [
            p.comments[0].name if p.comments else None
            for p in s.scalars(select(Post).options(selectinload(Post.comments)))
        ],
        set(),
    ),
    (
        "category => posts => writer: should not detect unused preload associations",
        lambda s: [
            (p.name, p.writer.name)
            for p in s.scalars(
                select(Category)
                .where(Category.name == "first")
                .options(selectinload(Category.posts).joinedload(Post.writer))
            )
            .one()
            .posts
        ],
        set(),
    ),
    (
        "belongs_to comment => post: should detect preload with comment => post",
        lambda s: [
            c.post.name for c in s.scalars(select(Comment).options(selectinload(Comment.post)))
        ],
        set(),
    ),
    (
        "belongs_to comment => post: should not detect preload with comment => post",
        lambda s: _names(s.scalars(select(Comment))),
        set(),
    ),
    (
        "belongs_to comment => post: should detect unused preload with comment => post",
        lambda s: _names(s.scalars(select(Comment).options(selectinload(Comment.post)))),
        {"Comment.post"},
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(b, e) for _, b, e in SCENARIOS], ids=[t for t, _, _ in SCENARIOS]
)
def test_bullet_scenarios(
    engine: Engine, body: Callable[[Session], Any], expected: set[str]
) -> None:
    assert unused(engine, body) == expected


@pytest.mark.parametrize("loader", [joinedload, subqueryload, selectinload])
def test_each_eager_loader_unused_and_used(engine: Engine, loader: Any) -> None:
    def unread(s: Session) -> Any:
        return _names(s.scalars(select(Post).options(loader(Post.comments))).unique())

    def read(s: Session) -> Any:
        return [
            _names(p.comments)
            for p in s.scalars(select(Post).options(loader(Post.comments))).unique()
        ]

    assert unused(engine, unread) == {"Post.comments"}
    assert unused(engine, read) == set()


def test_the_finding_names_the_option_the_query_line_and_the_objects(engine: Engine) -> None:
    found: list[NPlusOneFinding] = []
    tracker = unused_eager_loads(action=found.append)
    with Session(engine) as session, tracker, dbopt.scope("GET /posts"):
        posts = session.scalars(select(Post).options(selectinload(Post.comments))).all()
    (finding,) = found
    assert len(posts) == finding.count == 4
    assert finding.loader_option == "selectinload(Post.comments)"
    assert finding.callsite is not None
    assert finding.callsite.file == __file__
    assert finding.scope_path == "GET /posts"
    assert "drop it from the query" in finding.suggestion
    assert str(finding).startswith("unused eager load of Post.comments: loaded for 4 object(s)")


def test_mapper_level_eager_default_is_reported_with_its_own_fix(engine: Engine) -> None:
    found: list[NPlusOneFinding] = []
    tracker = unused_eager_loads(action=found.append)
    with Session(engine) as session, tracker, dbopt.scope("test"):
        session.scalars(select(Tagged)).all()
    (finding,) = found
    assert finding.relationship == "Tagged.post"
    assert finding.loader_option is None
    assert "lazy='select'" in finding.suggestion


def test_raise_allow_and_loads_outside_scopes(engine: Engine) -> None:
    stmt = select(Comment).options(selectinload(Comment.post))
    with Session(engine) as session:
        with pytest.raises(NPlusOneError) as raised, unused_eager_loads(action="raise"):
            session.scalars(stmt).all()  # no scope: reported by disable()
        assert [f.relationship for f in raised.value.findings] == ["Comment.post"]
        with unused_eager_loads(action="raise", allow=["relationship:Comment.*"]):
            session.scalars(stmt).all()


def test_disable_restores_everything(engine: Engine) -> None:
    def state() -> tuple[Any, ...]:
        return (
            type(Post.__dict__["comments"]),
            type(Comment.__dict__["post"]),
            event.contains(Mapper, "load", tracker._on_load),
            id(tracker) in _attached,
        )

    tracker = UnusedEagerLoads(action=lambda f: None)
    before = state()
    assert before == (InstrumentedAttribute, InstrumentedAttribute, False, False)
    tracker.enable()
    with Session(engine) as session, dbopt.scope("test"):
        posts = session.scalars(select(Post).options(selectinload(Post.comments))).all()
        assert type(Post.__dict__["comments"]) is not InstrumentedAttribute
        assert event.contains(Mapper, "load", tracker._on_load)
        assert _names(posts[0].comments)
    tracker.disable()
    assert state() == before
    assert tracker.findings == []
    # after disable, nothing is tracked
    with Session(engine) as session, dbopt.scope("test"):
        session.scalars(select(Post).options(selectinload(Post.comments))).all()
    assert tracker.findings == []


def test_one_tracker_at_a_time() -> None:
    with unused_eager_loads(), pytest.raises(ConfigurationError):
        UnusedEagerLoads().enable()
