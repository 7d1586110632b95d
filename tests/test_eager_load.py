"""eager.load: loader options from dotted paths, checked against the mappers, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Select, Table, create_engine, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    aliased,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)

import dbopt
from dbopt import eager


class Base(DeclarativeBase):
    pass


post_tags = Table(
    "el_post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("el_posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("el_tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "el_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author")
    profile: Mapped[Profile | None] = relationship(back_populates="user")


class Profile(Base):
    __tablename__ = "el_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("el_users.id"), unique=True)
    user: Mapped[User] = relationship(back_populates="profile")


class Post(Base):
    __tablename__ = "el_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("el_users.id"))
    title: Mapped[str]
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags)


class Comment(Base):
    __tablename__ = "el_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("el_posts.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("el_users.id"))
    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


class Tag(Base):
    __tablename__ = "el_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        users = [User(name=f"u{i}", profile=Profile() if i % 2 else None) for i in range(4)]
        tags = [Tag(name=f"t{i}") for i in range(3)]
        for i in range(6):
            post = Post(title=f"p{i}", author=users[i % 4], tags=tags[: i % 3 + 1])
            post.comments = [Comment(author=users[(i + j) % 4]) for j in range(i % 3)]
            session.add(post)
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def sql(stmt: object) -> str:
    return str(stmt)


# The options built


def test_paths_become_selectin_for_collections_and_joined_for_scalars() -> None:
    built = eager.load(select(Post), "author", "comments.author", "tags")
    hand = select(Post).options(
        joinedload(Post.author),
        selectinload(Post.comments).joinedload(Comment.author),
        selectinload(Post.tags),
    )
    assert sql(built) == sql(hand)
    assert "LEFT OUTER JOIN el_users" in sql(built)  # the joinedload reached the statement
    assert eager.loader_for(User.posts.property) == "selectin"
    assert eager.loader_for(Post.author.property) == "joined"
    assert eager.loader_for(User.profile.property) == "joined"  # one-to-one: scalar


def test_loaders_override_the_default_per_path() -> None:
    built = eager.load(
        select(Post),
        "comments.author",
        loaders={"comments": "joined", "comments.author": "selectin"},
    )
    hand = select(Post).options(joinedload(Post.comments).selectinload(Comment.author))
    assert sql(built) == sql(hand)
    assert "el_comments" in sql(built)
    sub = eager.load(select(User), "posts", loaders={"posts": "subquery"})
    assert sql(sub) == sql(select(User).options(subqueryload(User.posts)))


def test_shared_prefixes_nest_under_one_option() -> None:
    options = eager.loader_options(Post, "comments", "comments.author", "comments.post")
    assert len(options) == 1
    assert sql(select(Post).options(*options)) == sql(
        select(Post).options(
            selectinload(Post.comments).options(
                joinedload(Comment.author), joinedload(Comment.post)
            )
        )
    )
    plain = eager.load(select(Post))
    assert isinstance(plain, Select)
    assert sql(plain) == sql(select(Post))  # no paths: no loader options


def test_entity_and_alias() -> None:
    writer = aliased(User, name="writer")
    built = eager.load(select(writer), "profile")
    assert sql(built) == sql(select(writer).options(joinedload(writer.profile)))
    second = eager.load(select(Post.id, User), "profile", entity=User)
    assert sql(second) == sql(select(Post.id, User).options(joinedload(User.profile)))


# Errors name what exists


def test_unknown_relationship_names_the_valid_ones() -> None:
    with pytest.raises(dbopt.ConfigurationError) as info:
        eager.load(select(Post), "coments")
    message = str(info.value)
    assert "Post has no relationship 'coments'" in message
    assert "did you mean 'comments'?" in message
    assert "author, comments, tags" in message
    with pytest.raises(dbopt.ConfigurationError, match=r"Comment has no relationship 'autor'.*"):
        eager.load(select(Post), "comments.autor")
    with pytest.raises(dbopt.ConfigurationError) as nested:
        eager.load(select(Post), "comments.autor")
    assert "(in path 'comments.autor')" in str(nested.value)
    assert "Comment's relationships are: author, post" in str(nested.value)


def test_column_attribute_is_not_a_relationship() -> None:
    with pytest.raises(dbopt.ConfigurationError, match=r"Post\.title .* is a column attribute"):
        eager.load(select(Post), "title")


@pytest.mark.parametrize(
    ("paths", "options", "message"),
    [
        (("",), {}, "non-empty string"),
        (("author",), {"loaders": {"comments": "joined"}}, "not in the requested paths: comments"),
        (("author",), {"loaders": {"author": "eager"}}, "unknown loader 'eager'"),
        (("author",), {"entity": 42}, "not a mapped class"),
    ],
)
def test_bad_arguments(paths: tuple[str, ...], options: dict[str, object], message: str) -> None:
    with pytest.raises(dbopt.ConfigurationError, match=message):
        eager.load(select(Post), *paths, **options)  # type: ignore[arg-type]


def test_statement_without_entity() -> None:
    with pytest.raises(dbopt.ConfigurationError, match="selects no ORM entity"):
        eager.load(select(Post.id), "author")


# On the database: the options do what they say


def run_view(session: Session) -> list[tuple[str, str, list[str], list[str]]]:
    posts = session.scalars(
        eager.load(select(Post).order_by(Post.id), "author.profile", "comments.author", "tags")
    ).all()
    return [
        (
            p.title,
            p.author.name + ("+" if p.author.profile else ""),
            [c.author.name for c in p.comments],
            [t.name for t in p.tags],
        )
        for p in posts
    ]


def test_loaded_paths_need_no_lazy_load(engine: Engine) -> None:
    with Session(engine) as session:
        expected = [
            (
                p.title,
                p.author.name + ("+" if p.author.profile else ""),
                [c.author.name for c in p.comments],
                [t.name for t in p.tags],
            )
            for p in session.scalars(select(Post).order_by(Post.id))
        ]
    with (
        Session(engine) as session,
        eager.strict(session),
        dbopt.capture_queries(engine) as queries,
    ):
        assert run_view(session) == expected
    # posts+author+profile joined; comments (+author joined); tags
    assert len(queries) == 3


def test_legacy_query_object(engine: Engine) -> None:
    with Session(engine) as session, eager.strict(session):
        query = eager.load(session.query(User).order_by(User.id), "posts.tags")
        names = [[t.name for p in u.posts for t in p.tags] for u in query]
        assert len(names) == 4
