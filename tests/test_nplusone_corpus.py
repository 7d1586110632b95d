"""The N+1 corpus: true N+1s of every kind and legitimate patterns, on real databases.

Each scenario is a function run inside ``dbopt.scope(<its name>)`` with a
fresh :class:`dbopt.NPlusOneDetector` attached to every connection it uses.
What it must report is written next to the line that must be reported, as
``# expect: <kind> [<loader option>] [x<times>]``; a scenario with no such
comment must report nothing. The test compares the findings with those
comments exactly (kind, loader option, call-site file and line, multiplicity):
100 % recall and no false positive, per scenario and backend.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Table,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncEngine, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    immediateload,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)
from sqlalchemy.pool import NullPool

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_allow import NPlusOneAllow
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.testing import libpq_url

# Schema and data


class Base(AsyncAttrs, DeclarativeBase):
    pass


post_tags = Table(
    "npc_post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("npc_posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("npc_tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "npc_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(default="active")
    posts: Mapped[list[Post]] = relationship(back_populates="author", order_by="Post.id")
    profile: Mapped[Profile | None] = relationship(back_populates="user")


class Profile(Base):
    __tablename__ = "npc_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("npc_users.id"), unique=True)
    bio: Mapped[str]
    user: Mapped[User] = relationship(back_populates="profile")


class Post(Base):
    __tablename__ = "npc_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("npc_users.id"))
    title: Mapped[str]
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post", order_by="Comment.id")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, back_populates="posts")


class Comment(Base):
    __tablename__ = "npc_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("npc_posts.id"))
    body: Mapped[str]
    post: Mapped[Post] = relationship(back_populates="comments")


class Tag(Base):
    __tablename__ = "npc_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(secondary=post_tags, back_populates="tags")


#: 520 users (more than one selectinload batch of 500); the first 6 have a
#: profile and 3 posts, each post 2 comments and 2 of the 4 tags.
USERS = 520
AUTHORS = 6
POSTS_PER_USER = 3


def build(engine: Engine) -> None:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    posts = [
        {"id": u * 10 + j, "user_id": u, "title": f"post {u}.{j}"}
        for u in range(1, AUTHORS + 1)
        for j in range(POSTS_PER_USER)
    ]
    with engine.begin() as conn:
        conn.execute(insert(User), [{"id": i, "name": f"user {i}"} for i in range(1, USERS + 1)])
        conn.execute(
            insert(Profile),
            [{"id": i, "user_id": i, "bio": f"bio {i}"} for i in range(1, AUTHORS + 1)],
        )
        conn.execute(insert(Post), posts)
        conn.execute(
            insert(Comment),
            [
                {"id": p["id"] * 10 + k, "post_id": p["id"], "body": "hi"}
                for p in posts
                for k in range(2)
            ],
        )
        conn.execute(insert(Tag), [{"id": t, "name": f"tag {t}"} for t in range(1, 5)])
        conn.execute(
            insert(post_tags),
            [
                {"post_id": p["id"], "tag_id": t}
                for p in posts
                for t in (p["id"] % 4 + 1, (p["id"] + 1) % 4 + 1)
            ],
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE SEQUENCE IF NOT EXISTS npc_seq"))


# Harness


@dataclass
class Env:
    """What a scenario runs against; every target it opens feeds ``detector``."""

    backend: str
    engine: Engine
    async_engine: AsyncEngine
    url: str
    detector: NPlusOneDetector = field(init=False)

    def raw(self) -> Any:
        """A DB-API connection of the backend's plain driver, wrapped by dbopt."""
        if self.backend == "sqlite":
            conn: Any = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        else:
            conn = psycopg.connect(libpq_url(self.url))
        return dbopt.wrap_dbapi(conn, self.detector)

    @property
    def placeholder(self) -> str:
        return "?" if self.backend == "sqlite" else "%s"


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    path = tmp_path_factory.mktemp("nplusone") / "corpus.db"
    engine = create_engine(f"sqlite:///{path}")
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    yield from _env("sqlite", engine, async_engine, f"sqlite:///{path}")


@pytest.fixture(scope="module")
def postgresql_env(pg_url: str) -> Iterator[Env]:
    engine = create_engine(pg_url, pool_size=8)
    async_engine = create_async_engine(pg_url, poolclass=NullPool)
    yield from _env("postgresql", engine, async_engine, pg_url)


def _env(backend: str, engine: Engine, async_engine: AsyncEngine, url: str) -> Iterator[Env]:
    async def warm_up() -> None:
        async with async_engine.connect() as conn:
            await conn.execute(select(1))

    try:
        build(engine)
        asyncio.run(warm_up())  # the dialect's first-connect queries run here, not in a scenario
        yield Env(backend, engine, async_engine, url)
    finally:
        Base.metadata.drop_all(engine)
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SEQUENCE IF EXISTS npc_seq"))
        asyncio.run(async_engine.dispose())
        engine.dispose()


_EXPECT = re.compile(
    r"#\s*expect:\s*(?P<kind>n_plus_one|repeated_query)"
    r"(?:\s+(?P<option>\w+\([\w.]+\)))?(?:\s+x(?P<times>\d+))?"
)
Expected = Counter[tuple[str, "str | None", int]]


@dataclass(frozen=True)
class Scenario:
    name: str
    category: str
    run: Callable[[Env], None]
    backends: tuple[str, ...]
    options: dict[str, Any]

    @property
    def expected(self) -> Expected:
        """(kind, loader option, line) → times, from the ``# expect:`` comments."""
        lines, start = inspect.getsourcelines(self.run)
        expected: Expected = Counter()
        for offset, line in enumerate(lines):
            match = _EXPECT.search(line)
            if match:
                key = (match["kind"], match["option"], start + offset)
                expected[key] += int(match["times"] or 1)
        return expected


SCENARIOS: dict[str, Scenario] = {}
BOTH = ("sqlite", "postgresql")


def scenario(
    category: str, *, backends: tuple[str, ...] = BOTH, **options: Any
) -> Callable[[Callable[[Env], None]], Callable[[Env], None]]:
    def register(func: Callable[[Env], None]) -> Callable[[Env], None]:
        SCENARIOS[func.__name__] = Scenario(func.__name__, category, func, backends, options)
        return func

    return register


POSTS_OF = text("SELECT id FROM npc_posts WHERE user_id = :u")
USER_BY_ID = text("SELECT * FROM npc_users WHERE id = :id")


def first_users(session: Session, n: int = 4) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id).limit(n)))


# True N+1s and repeated queries


@scenario("orm lazy collection")
def lazy_collection_loop(env: Env) -> None:
    with Session(env.engine) as s:
        for user in first_users(s):
            _ = len(user.posts)  # expect: n_plus_one selectinload(User.posts)


@scenario("orm lazy collection")
def lazy_collection_in_comprehension(env: Env) -> None:
    with Session(env.engine) as s:
        users = first_users(s, 5)
        [p.title for u in users for p in u.posts]  # expect: n_plus_one selectinload(User.posts)


@scenario("orm lazy collection")
def lazy_collection_in_helper(env: Env) -> None:
    def titles(user: User) -> list[str]:
        return [p.title for p in user.posts]  # expect: n_plus_one selectinload(User.posts)

    with Session(env.engine) as s:
        for user in first_users(s):
            titles(user)


@scenario("orm lazy many-to-one")
def lazy_many_to_one(env: Env) -> None:
    with Session(env.engine) as s:
        posts = s.scalars(select(Post).order_by(Post.id).limit(12)).all()
        for post in posts:  # 12 posts by 4 authors: the identity map leaves 4 loads
            _ = post.author.name  # expect: n_plus_one joinedload(Post.author)


@scenario("orm lazy one-to-one")
def lazy_one_to_one(env: Env) -> None:
    with Session(env.engine) as s:
        for user in first_users(s):
            _ = user.profile  # expect: n_plus_one joinedload(User.profile)


@scenario("orm lazy many-to-many")
def lazy_many_to_many(env: Env) -> None:
    with Session(env.engine) as s:
        for post in s.scalars(select(Post).order_by(Post.id).limit(5)):
            {t.name for t in post.tags}  # expect: n_plus_one selectinload(Post.tags)


@scenario("orm nested")
def nested_lazy_loads(env: Env) -> None:
    with Session(env.engine) as s:
        for user in first_users(s, 3):
            for post in user.posts:  # expect: n_plus_one selectinload(User.posts)
                len(post.comments)  # expect: n_plus_one selectinload(Post.comments)


@scenario("orm nested")
def nested_inner_level_only(env: Env) -> None:
    with Session(env.engine) as s:
        users = s.scalars(select(User).where(User.id <= 3).options(selectinload(User.posts))).all()
        for user in users:
            for post in user.posts:
                len(post.comments)  # expect: n_plus_one selectinload(Post.comments)


@scenario("orm immediateload")
def immediateload_option(env: Env) -> None:
    with Session(env.engine) as s:
        query = select(User).where(User.id <= 4).options(immediateload(User.posts))
        s.scalars(query).all()  # expect: n_plus_one selectinload(User.posts)


@scenario("orm query loop")
def orm_query_per_row(env: Env) -> None:
    with Session(env.engine) as s:
        for user in first_users(s):
            s.scalars(select(Post).where(Post.user_id == user.id)).all()  # expect: n_plus_one


@scenario("orm query loop")
def session_get_per_id(env: Env) -> None:
    with Session(env.engine) as s:
        for pk in range(1, 5):
            s.get(User, pk)  # expect: n_plus_one


@scenario("raw sqlite3 loop", backends=("sqlite",))
def raw_sqlite3_loop(env: Env) -> None:
    conn = env.raw()
    try:
        query = "SELECT id FROM npc_posts WHERE user_id = ?"
        for uid in range(1, 5):
            conn.execute(query, (uid,)).fetchall()  # expect: n_plus_one
    finally:
        conn.close()


@scenario("raw psycopg loop", backends=("postgresql",))
def raw_psycopg_loop(env: Env) -> None:
    conn = env.raw()
    try:
        with conn.cursor() as cur:
            query = "SELECT id FROM npc_posts WHERE user_id = %s"
            for uid in range(1, 5):
                cur.execute(query, (uid,))  # expect: n_plus_one
                cur.fetchall()
    finally:
        conn.close()


@scenario("raw psycopg loop", backends=("postgresql",))
def instrumented_psycopg_loop(env: Env) -> None:
    query = "SELECT id FROM npc_posts WHERE user_id = %s"
    with psycopg.connect(libpq_url(env.url)) as conn, dbopt.instrument(conn, env.detector):
        for uid in range(1, 5):
            conn.execute(query, (uid,)).fetchall()  # expect: n_plus_one


@scenario("async raw psycopg loop", backends=("postgresql",))
def async_psycopg_loop(env: Env) -> None:
    query = "SELECT id FROM npc_posts WHERE user_id = %s"

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(env.url)) as conn:
            with dbopt.instrument(conn, env.detector):
                for uid in range(1, 5):
                    cursor = await conn.execute(query, (uid,))  # expect: n_plus_one
                    await cursor.fetchall()

    asyncio.run(main())


@scenario("raw driver loop, inlined literals")
def raw_inlined_literals(env: Env) -> None:
    with env.engine.connect() as conn:
        for uid in range(1, 5):
            sql = f"SELECT id FROM npc_posts WHERE user_id = {uid}"
            conn.exec_driver_sql(sql).all()  # expect: n_plus_one


@scenario("core loop")
def core_text_loop(env: Env) -> None:
    query = text("SELECT id, title FROM npc_posts WHERE user_id = :uid")
    with env.engine.connect() as conn:
        for uid in range(1, 5):
            conn.execute(query, {"uid": uid}).all()  # expect: n_plus_one


@scenario("core loop")
def core_select_loop(env: Env) -> None:
    posts = Post.__table__
    with env.engine.connect() as conn:
        for uid in range(1, 5):
            conn.execute(select(posts).where(posts.c.user_id == uid)).all()  # expect: n_plus_one


@scenario("core loop")
def raw_loop_with_repeating_keys(env: Env) -> None:
    with env.engine.connect() as conn:
        author_ids = conn.execute(text("SELECT user_id FROM npc_posts ORDER BY id")).scalars()
        name_of = text("SELECT name FROM npc_users WHERE id = :id")
        for uid in list(author_ids):  # 18 posts, 6 authors: an N+1, not a missing cache
            conn.execute(name_of, {"id": uid}).one()  # expect: n_plus_one


@scenario("async orm lazy collection")
def async_lazy_collection(env: Env) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async def main() -> None:
        async with AsyncSession(env.async_engine) as s:
            users = (await s.scalars(select(User).order_by(User.id).limit(4))).all()
            for user in users:
                await user.awaitable_attrs.posts  # expect: n_plus_one selectinload(User.posts)

    asyncio.run(main())


@scenario("async core loop")
def async_core_loop(env: Env) -> None:
    async def main() -> None:
        async with env.async_engine.connect() as conn:
            for uid in range(1, 5):
                await conn.execute(POSTS_OF, {"u": uid})  # expect: n_plus_one

    asyncio.run(main())


@scenario("async fan-out")
def async_gather_fan_out(env: Env) -> None:
    async def posts_of(uid: int) -> None:
        async with env.async_engine.connect() as conn:
            await conn.execute(POSTS_OF, {"u": uid})  # expect: n_plus_one

    async def main() -> None:
        await asyncio.gather(*(posts_of(uid) for uid in range(1, 5)))

    asyncio.run(main())


@scenario("async concurrent scopes")
def async_tasks_in_own_scopes(env: Env) -> None:
    async def request(i: int) -> None:
        async with dbopt.scope(f"request {i}"), env.async_engine.connect() as conn:
            uids = range(1, 4) if i % 3 == 0 else [i % AUTHORS + 1]
            for uid in uids:  # requests 0, 3, 6, 9 loop
                await conn.execute(POSTS_OF, {"u": uid})  # expect: n_plus_one x4

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(10)))

    asyncio.run(main())


@scenario("threads")
def threads_in_own_scopes(env: Env) -> None:
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        with dbopt.scope(f"worker {i}"), env.engine.connect() as conn:
            barrier.wait()
            uids = range(1, 4) if i % 2 else [i + 1]
            for uid in uids:  # workers 1, 3, 5 loop
                conn.execute(POSTS_OF, {"u": uid}).all()  # expect: n_plus_one x3

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(6)))


@scenario("repeated query")
def repeated_from_several_lines(env: Env) -> None:
    def current_user(conn: Any) -> Any:
        return conn.execute(USER_BY_ID, {"id": 1}).one()  # expect: repeated_query

    with env.engine.connect() as conn:
        current_user(conn)
        current_user(conn)
        current_user(conn)


@scenario("repeated query")
def repeated_in_loop(env: Env) -> None:
    with env.engine.connect() as conn:
        for _ in range(3):
            conn.execute(text("SELECT count(*) FROM npc_users")).scalar()  # expect: repeated_query


@scenario("repeated query")
def repeated_orm_query(env: Env) -> None:
    with Session(env.engine) as s:
        s.scalars(select(Tag).order_by(Tag.id)).all()  # expect: repeated_query
        s.scalars(select(Tag).order_by(Tag.id)).all()


@scenario("repeated query")
def get_of_an_object_nobody_holds(env: Env) -> None:
    with Session(env.engine) as s:
        for _ in range(3):  # the identity map is weak: each get loads the row again
            s.get(User, 1)  # expect: repeated_query


# Legitimate patterns


@scenario("fixed with selectinload")
def selectinload_used(env: Env) -> None:
    with Session(env.engine) as s:
        users = s.scalars(select(User).where(User.id <= 4).options(selectinload(User.posts)))
        for user in users:
            len(user.posts)


@scenario("fixed with joinedload")
def joinedload_used(env: Env) -> None:
    with Session(env.engine) as s:
        posts = s.scalars(select(Post).options(joinedload(Post.author)).limit(12)).all()
        for post in posts:
            _ = post.author.name


@scenario("fixed with subqueryload")
def subqueryload_used(env: Env) -> None:
    with Session(env.engine) as s:
        for user in s.scalars(select(User).where(User.id <= 4).options(subqueryload(User.posts))):
            len(user.posts)


@scenario("fixed, nested chain")
def nested_chain_used(env: Env) -> None:
    option = selectinload(User.posts).selectinload(Post.comments)
    with Session(env.engine) as s:
        for user in s.scalars(select(User).where(User.id <= 4).options(option)):
            for post in user.posts:
                len(post.comments)


@scenario("selectinload in batches of 500")
def selectinload_batches(env: Env) -> None:
    with Session(env.engine) as s:
        users = s.scalars(select(User).options(selectinload(User.posts))).all()
        assert len(users) == USERS
        sum(len(u.posts) for u in users)


@scenario("async, fixed with selectinload")
def async_selectinload_used(env: Env) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async def main() -> None:
        async with AsyncSession(env.async_engine) as s:
            query = select(User).where(User.id <= 4).options(selectinload(User.posts))
            for user in (await s.scalars(query)).all():
                len(user.posts)

    asyncio.run(main())


@scenario("identity map")
def many_to_one_same_parent(env: Env) -> None:
    with Session(env.engine) as s:
        for post in s.scalars(select(Post).where(Post.user_id == 1)):
            _ = post.author.name  # one load; the other posts find the author in the identity map


@scenario("identity map")
def session_get_same_object(env: Env) -> None:
    with Session(env.engine) as s:
        user = s.get(User, 1)
        for _ in range(3):
            assert s.get(User, 1) is user
        assert user is not None
        len(user.posts)
        len(user.posts)


@scenario("below threshold", threshold=3)
def loop_below_threshold(env: Env) -> None:
    with Session(env.engine) as s:
        for user in first_users(s, 2):
            len(user.posts)


@scenario("different call sites, each below threshold", threshold=3)
def different_call_sites(env: Env) -> None:
    query = text("SELECT id FROM npc_posts WHERE user_id = :uid")
    with env.engine.connect() as conn:
        for uid in (1, 2):
            conn.execute(query, {"uid": uid}).all()
        for uid in (3, 4):
            conn.execute(query, {"uid": uid}).all()


@scenario("different scopes")
def one_scope_per_item(env: Env) -> None:
    with env.engine.connect() as conn:
        for uid in range(1, 6):
            with dbopt.scope("job", uid=uid):
                conn.execute(text("SELECT id FROM npc_posts WHERE user_id = :u"), {"u": uid}).all()


@scenario("different scopes")
def threads_each_one_query(env: Env) -> None:
    def request(uid: int) -> None:
        with dbopt.scope("request"), Session(env.engine) as s:
            user = s.get(User, uid)
            assert user is not None
            len(user.posts)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(request, range(1, 9)))


@scenario("paginated loop: pages are batches")
def paginated_loop(env: Env) -> None:
    def all_pages(conn: Any) -> list[Any]:
        rows: list[Any] = []
        for offset in range(0, USERS, 200):
            page = text("SELECT id FROM npc_users ORDER BY id LIMIT 200 OFFSET :o")
            rows.extend(conn.execute(page, {"o": offset}).all())
        return rows

    with env.engine.connect() as conn:
        assert len(all_pages(conn)) == USERS


@scenario("row by row through OFFSET: pages of one row are a loop")
def one_row_pages(env: Env) -> None:
    with env.engine.connect() as conn:
        for offset in range(3):
            page = text("SELECT id FROM npc_users ORDER BY id LIMIT 1 OFFSET :o")
            conn.execute(page, {"o": offset}).all()  # expect: n_plus_one


@scenario(
    "polling, allowed",
    allow=[NPlusOneAllow(function="wait_for_status", kind="repeated_query")],
)
def polling_allowed(env: Env) -> None:
    def wait_for_status(conn: Any) -> str:
        for _ in range(3):
            status: str = conn.execute(
                text("SELECT status FROM npc_users WHERE id = :id"), {"id": 1}
            ).scalar_one()
        return status

    with env.engine.connect() as conn:
        wait_for_status(conn)


@scenario("executemany")
def executemany_insert(env: Env) -> None:
    with env.engine.connect() as conn, conn.begin() as tx:
        conn.execute(insert(Tag), [{"id": 100 + i, "name": f"new {i}"} for i in range(20)])
        tx.rollback()


@scenario("bulk insert")
def orm_bulk_add(env: Env) -> None:
    with Session(env.engine) as s:
        s.add_all([Tag(id=200 + i, name=f"bulk {i}") for i in range(20)])
        s.flush()
        s.rollback()


@scenario("insert loop")
def insert_per_row(env: Env) -> None:
    with env.engine.connect() as conn, conn.begin() as tx:
        for i in range(5):
            conn.execute(insert(Tag).values(id=300 + i, name=f"loop {i}"))
        tx.rollback()


@scenario("raw sqlite3 executemany", backends=("sqlite",))
def raw_sqlite3_executemany(env: Env) -> None:
    conn = env.raw()
    try:
        conn.executemany(
            "INSERT INTO npc_tags (id, name) VALUES (?, ?)", [(400 + i, "x") for i in range(9)]
        )
        conn.rollback()
    finally:
        conn.close()


@scenario("executemany", backends=("postgresql",))
def psycopg_executemany(env: Env) -> None:
    rows = [(500 + i, f"many {i}") for i in range(10)]
    with psycopg.connect(libpq_url(env.url)) as conn, dbopt.instrument(conn, env.detector):
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO npc_tags (id, name) VALUES (%s, %s)", rows)
        conn.rollback()


@scenario("read after write")
def read_after_write(env: Env) -> None:
    users = User.__table__
    read = text("SELECT status FROM npc_users WHERE id = :id")
    with env.engine.connect() as conn, conn.begin() as tx:
        conn.execute(read, {"id": 2}).scalar_one()
        conn.execute(update(users).where(users.c.id == 2).values(status="away"))
        conn.execute(read, {"id": 2}).scalar_one()
        tx.rollback()


@scenario("batched by hand")
def one_in_query(env: Env) -> None:
    conn = env.raw()
    try:
        ids = list(range(1, 5))
        marks = ", ".join([env.placeholder] * len(ids))
        cur = conn.cursor()
        cur.execute(f"SELECT id, user_id FROM npc_posts WHERE user_id IN ({marks})", ids)
        by_user: dict[int, list[int]] = {}
        for post_id, user_id in cur.fetchall():
            by_user.setdefault(user_id, []).append(post_id)
        assert len(by_user) == 4
    finally:
        conn.close()


@scenario("one query per table")
def count_per_table(env: Env) -> None:
    with env.engine.connect() as conn:
        for table in ("npc_users", "npc_posts", "npc_comments", "npc_tags"):
            conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()


@scenario("sequence values", backends=("postgresql",))
def nextval_loop(env: Env) -> None:
    with env.engine.connect() as conn:
        for _ in range(5):
            conn.execute(text("SELECT nextval('npc_seq')")).scalar()


# The test


def _cases() -> list[Any]:
    return [
        pytest.param(name, backend, id=f"{name}[{backend}]")
        for name, sc in SCENARIOS.items()
        for backend in sc.backends
    ]


@pytest.mark.parametrize(("name", "backend"), _cases())
def test_scenario(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    sc = SCENARIOS[name]
    env: Env = request.getfixturevalue(f"{backend}_env")
    found: list[NPlusOneFinding] = []
    lock = threading.Lock()

    def collect(finding: NPlusOneFinding) -> None:
        with lock:
            found.append(finding)

    env.detector = NPlusOneDetector(action=collect, **sc.options)
    with (
        dbopt.instrument(env.engine, env.detector),
        dbopt.instrument(env.async_engine, env.detector),
        dbopt.scope(name),
    ):
        sc.run(env)
    assert all(f.callsite is not None and f.callsite.file == __file__ for f in found), [
        str(f) for f in found
    ]
    actual: Expected = Counter(
        (f.kind, f.loader_option, f.callsite.line) for f in found if f.callsite is not None
    )
    assert actual == sc.expected, "\n".join(str(f) for f in found)
    assert env.detector.stale_allowlist() == [], "an allowlist entry was not needed"


REQUIRED = {
    "orm lazy collection",
    "orm lazy many-to-one",
    "orm nested",
    "raw sqlite3 loop",
    "raw psycopg loop",
    "core loop",
    "async orm lazy collection",
    "async core loop",
    "repeated query",
    "executemany",
    "bulk insert",
    "below threshold",
    "different call sites, each below threshold",
    "different scopes",
    "paginated loop: pages are batches",
}


def test_corpus_covers_every_kind() -> None:
    true = [sc for sc in SCENARIOS.values() if sc.expected]
    legitimate = [sc for sc in SCENARIOS.values() if not sc.expected]
    assert len(SCENARIOS) >= 25
    assert len(true) >= 12
    assert len(legitimate) >= 12
    assert {sc.category for sc in SCENARIOS.values()} >= REQUIRED
    assert len(_cases()) >= 50  # scenarios times the databases they run on


def test_expect_comments_are_read() -> None:
    expected = SCENARIOS["nested_lazy_loads"].expected
    assert sorted((kind, option) for kind, option, _ in expected) == [
        ("n_plus_one", "selectinload(Post.comments)"),
        ("n_plus_one", "selectinload(User.posts)"),
    ]
    assert SCENARIOS["threads_in_own_scopes"].expected.total() == 3
    assert Path(__file__).read_text().count("# expect:") >= 20
