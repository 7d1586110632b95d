"""N+1 detection on the shape of a real FastAPI + async SQLAlchemy app (issue 19), on PostgreSQL.

Modelled on a RealWorld ("Conduit") backend, adr1enbe4udou1n/fastapi-realworld-example-app
(commit 8fc2a33, docs/real-apps.md): articles with an author, tags and favourites,
users who follow users; a list query run beside its count with ``asyncio.gather``
on two sessions, every collection ``joinedload``-ed at once, a tag lookup awaited
per tag, and a lazy load that an ``AsyncSession`` refuses (``MissingGreenlet``).
Runs on the installed SQLAlchemy; put a 2.0 release first on ``PYTHONPATH`` to
check 2.0.x.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
import sqlalchemy.orm
from sqlalchemy import Column, ForeignKey, String, Table, create_engine, event, func, select
from sqlalchemy.exc import MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)
from sqlalchemy.sql import Select

import dbopt
from dbopt.integrations.asgi import COUNT_HEADER, DboptMiddleware


class Base(DeclarativeBase):
    pass


article_tag = Table(
    "aa_article_tag",
    Base.metadata,
    Column("article_id", ForeignKey("aa_articles.id"), primary_key=True),
    Column("tag_id", ForeignKey("aa_tags.id"), primary_key=True),
)
article_favorite = Table(
    "aa_article_favorite",
    Base.metadata,
    Column("article_id", ForeignKey("aa_articles.id"), primary_key=True),
    Column("user_id", ForeignKey("aa_users.id"), primary_key=True),
)
follower_user = Table(
    "aa_follower_user",
    Base.metadata,
    Column("follower_id", ForeignKey("aa_users.id"), primary_key=True),
    Column("following_id", ForeignKey("aa_users.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "aa_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    followers: Mapped[list[User]] = relationship(
        secondary=follower_user,
        primaryjoin=lambda: User.id == follower_user.c.following_id,
        secondaryjoin=lambda: User.id == follower_user.c.follower_id,
    )


class Tag(Base):
    __tablename__ = "aa_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Article(Base):
    __tablename__ = "aa_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("aa_users.id"))
    title: Mapped[str] = mapped_column(String(80))
    author: Mapped[User] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=article_tag)
    favorited_by: Mapped[list[User]] = relationship(secondary=article_favorite)
    comments: Mapped[list[Comment]] = relationship(back_populates="article")


class Comment(Base):
    __tablename__ = "aa_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("aa_articles.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("aa_users.id"))
    article: Mapped[Article] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


MODELS = {"User": User, "Tag": Tag, "Article": Article, "Comment": Comment}
USERS, TAGS, ARTICLES = 12, 8, 40


@pytest.fixture(scope="module")
def tables(pg_url: str) -> Iterator[str]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        users = [User(id=i, name=f"user{i}") for i in range(1, USERS + 1)]
        tags = [Tag(id=i, name=f"tag{i}") for i in range(1, TAGS + 1)]
        for user in users:
            user.followers = [u for u in users if u is not user and (u.id + user.id) % 3 == 0]
        session.add_all(users + tags)
        for i in range(1, ARTICLES + 1):
            article = Article(id=i, author=users[i % USERS], title=f"article {i}")
            article.tags = [tags[i % TAGS], tags[(i * 3) % TAGS]] if i % 4 else [tags[0]]
            article.favorited_by = [u for u in users if (u.id * i) % 5 == 0]
            article.comments = [
                Comment(id=i * 10 + k, author_id=1 + (i + k) % USERS) for k in range(i % 4)
            ]
            session.add(article)
        session.commit()
    yield pg_url
    Base.metadata.drop_all(engine)
    engine.dispose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def articles_query() -> Select[Any]:
    """The app's list query: every relationship the page shows, joined at once."""
    return select(Article).options(
        joinedload(Article.author).joinedload(User.followers),
        joinedload(Article.tags),
        joinedload(Article.favorited_by),
    )


async def paginated(engine: AsyncEngine, query: Select[Any]) -> tuple[list[Article], int]:
    """The app's ``get_paginated_list``: the page and its count on two sessions at once."""
    listed = query.order_by(Article.id.desc()).limit(10)
    counted = select(func.count()).select_from(query.subquery())
    async with AsyncSession(engine) as db, AsyncSession(engine) as db_count:
        rows, count = await asyncio.gather(db.scalars(listed), db_count.scalar(counted))  # gather
        return list(rows.unique().all()), count or 0


def gather_line() -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(n for n, line in enumerate(source, 1) if line.rstrip().endswith("# gather"))


def test_statements_of_gathered_tasks_are_located_at_the_awaiting_line(tables: str) -> None:
    async def main() -> list[dbopt.QueryEvent]:
        engine = create_async_engine(tables)
        try:
            with dbopt.capture_queries(engine) as queries, dbopt.scope("GET /api/articles"):
                await paginated(engine, select(Article))

                async with (
                    AsyncSession(engine) as one,
                    AsyncSession(engine) as two,
                    asyncio.TaskGroup() as group,  # library coroutines as tasks
                ):
                    group.create_task(one.scalar(select(User).where(User.name == "user1")))
                    group.create_task(two.scalar(select(User).where(User.name == "user2")))
            return [q for q in queries if q.kind == "select"]
        finally:
            await engine.dispose()

    selects = run(main())
    assert len(selects) == 4
    this = __file__
    for query in selects[:2]:  # the page and its count
        site = query.callsite
        assert site is not None
        assert (site.file, site.line, site.function) == (this, gather_line(), "paginated")
        assert query.stack[1].function == "main"
    for query in selects[2:]:  # the TaskGroup's: the line of the task that owns the group
        assert (query.stack[0].file, query.stack[0].function) == (this, "main")


def option_from_text(text: str) -> Any:
    """``joinedload(Article.author).selectinload(User.followers)`` as a user would paste it."""
    option: Any = None
    for loader, model, attr in re.findall(r"(\w+)\((\w+)\.(\w+)\)", text):
        target = getattr(MODELS[model], attr)
        option = (
            getattr(sqlalchemy.orm, loader)(target)
            if option is None
            else getattr(option, loader)(target)
        )
    return option


def page(articles: list[Article]) -> list[tuple[Any, ...]]:
    return [
        (
            a.id,
            sorted(t.name for t in a.tags),
            a.author.name,
            sorted(u.id for u in a.author.followers),
            len(a.favorited_by),
        )
        for a in articles
    ]


def test_cartesian_fix_for_a_nested_collection_runs(tables: str) -> None:
    """Three collections joined side by side, one under a many-to-one: the fix chains it."""

    async def main() -> tuple[list[dbopt.NPlusOneFinding], Any, Any, int, int]:
        engine = create_async_engine(tables)
        detector = dbopt.NPlusOneDetector(action=lambda f: None, checks=["cartesian_products"])
        try:
            with dbopt.instrument(engine, detector), dbopt.scope("GET /api/articles"):
                before, _ = await paginated(engine, articles_query())
            (finding,) = detector.findings
            texts = [
                text.strip() for text in re.split(r",\s(?=\w+load\()", finding.loader_option or "")
            ]
            fixed = select(Article).options(*(option_from_text(text) for text in texts))
            with dbopt.capture_queries(engine) as queries, dbopt.scope("fixed"):
                after, count = await paginated(engine, fixed)
            fixed_findings = detector.findings[1:]
            return [finding, *fixed_findings], page(before), page(after), count, len(queries)
        finally:
            await engine.dispose()

    findings, before, after, count, statements = run(main())
    finding = findings[0]
    assert finding.kind == "cartesian_product"
    assert finding.loader_option == (
        "selectinload(Article.favorited_by), selectinload(Article.tags), "
        "joinedload(Article.author).selectinload(User.followers)"
    )
    assert "joinedload(Article.author).selectinload(User.followers)" in finding.suggestion
    assert len(findings) == 1  # the fixed query joins no collection side by side
    assert after == before
    assert count == ARTICLES
    assert statements == 5  # page, count, and one SELECT ... IN per collection


def test_awaited_lookup_per_tag_names_the_column(tables: str) -> None:
    """The app's ``create``: ``await db.scalar(select(Tag).filter_by(name=tag))`` per tag."""

    async def main() -> tuple[list[dbopt.NPlusOneFinding], list[str], list[str]]:
        engine = create_async_engine(tables)
        detector = dbopt.NPlusOneDetector(action=lambda f: None)
        names = ["tag2", "tag5", "tag7", "brand-new"]
        try:
            async with AsyncSession(engine) as db:
                with dbopt.instrument(engine, detector), dbopt.scope("POST /api/articles"):
                    found = [await db.scalar(select(Tag).filter_by(name=n)) for n in names]
                # the suggested fix, as written in the finding
                fixed = (await db.scalars(select(Tag).where(Tag.name.in_(names)))).all()
            return detector.findings, [t.name for t in found if t], sorted(t.name for t in fixed)
        finally:
            await engine.dispose()

    findings, loop, fixed = run(main())
    (finding,) = findings
    assert finding.kind == "n_plus_one"
    assert finding.count == 4
    assert "select(Tag).where(Tag.name.in_(keys))" in finding.suggestion
    assert sorted(loop) == fixed


def test_lazy_load_refused_by_async_session_is_no_statement_but_a_finding(tables: str) -> None:
    """The app's comment list: ``comment.author.followers`` per comment, never loaded.

    An ``AsyncSession`` refuses the first lazy load (``MissingGreenlet``, HTTP 500)
    before the driver gets the SQL: the header must not count a statement that
    did not run, and with ``checks=["potential"]`` the detector reports the load
    the loop asked for, with the option that loads it.
    """
    executed: list[str] = []
    refused: list[BaseException | None] = []
    findings: list[dbopt.NPlusOneFinding] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async with AsyncSession(engine) as db:
            comments = (await db.scalars(select(Comment).options(joinedload(Comment.author)))).all()
            try:
                body = str([len(c.author.followers) for c in comments]).encode()  # refused
                status = 200
            except (StatementError, MissingGreenlet) as exc:  # the app's 500 (2.0 raises it bare)
                refused.append(getattr(exc, "orig", exc))
                body, status = b"MissingGreenlet", 500
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    engine = create_async_engine(tables)

    def count(*args: Any) -> None:
        executed.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    detector = dbopt.NPlusOneDetector(action=findings.append, checks=["potential"])
    middleware = DboptMiddleware(app, targets=[engine], headers=True, detector=detector)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        try:
            with dbopt.capture_queries(engine) as captured:
                await middleware({"type": "http", "method": "GET", "path": "/c"}, receive, send)
            assert len(captured) == len(executed)
        finally:
            middleware.close()
            await engine.dispose()

    run(main())
    start = sent[0]
    assert start["status"] == 500
    assert isinstance(refused[0], MissingGreenlet)
    headers = dict(start["headers"])
    # 2.1 refuses when it makes the cursor, before before_cursor_execute; 2.0 after it
    assert headers[COUNT_HEADER.encode()] == str(len(executed)).encode()
    assert len(executed) == (2 if sqlalchemy.__version__.startswith("2.0.") else 1)
    (finding,) = findings
    assert finding.kind == "n_plus_one"
    assert finding.relationship == "User.followers"
    assert finding.loader_option == "selectinload(User.followers)"
    assert finding.suggestion.startswith("the AsyncSession refused this lazy load")
    with open(__file__, encoding="utf-8") as source:
        line = next(n for n, text in enumerate(source, 1) if text.rstrip().endswith("# refused"))
    assert finding.callsite is not None
    assert (finding.callsite.file, finding.callsite.line) == (__file__, line)


# Session.merge(): the app's favourite and follow endpoints (crud_article.py:135,
# crud_user.py:63): the article (or user) was loaded and detached elsewhere, the
# current user appended, then ``await self.db.merge(db_obj)``.

FAVOURITE = "POST /api/articles/{slug}/favorite"


def detached_article(engine: Any, article_id: int) -> Article:
    """The app's ``get_by_slug``: the article with its author, the author's followers and fans."""
    with Session(engine) as session:
        return (
            session.scalars(
                select(Article)
                .where(Article.id == article_id)
                .options(
                    joinedload(Article.author).joinedload(User.followers),
                    joinedload(Article.favorited_by),
                )
            )
            .unique()
            .one()
        )


def detached_user(engine: Any, user_id: int) -> User:
    """The app's current user (loaded by the token's e-mail, in another session)."""
    with Session(engine) as session:
        return session.scalars(select(User).where(User.id == user_id)).one()


def new_fan(engine: Any, article: Article) -> User:
    """A user ``merge()`` must load by key (not a fan, the author or one of its followers)."""
    fans = {u.id for u in article.favorited_by} | {article.author_id}
    fans |= {u.id for u in article.author.followers}
    return detached_user(engine, next(i for i in range(1, USERS + 1) if i not in fans))


def merge_findings(tables: str, mode: str, checks: list[str], body: Any) -> Any:
    """Run ``body(db)`` (sync Session, or AsyncSession with awaits) in one scope; the findings."""
    findings: list[dbopt.NPlusOneFinding] = []
    detector = dbopt.NPlusOneDetector(action=findings.append, checks=checks)
    if mode == "sync":
        engine = create_engine(tables)
        try:
            with Session(engine) as db, dbopt.instrument(engine, detector):
                with dbopt.scope(FAVOURITE):
                    result = body(db)
                db.rollback()
        finally:
            engine.dispose()
        return findings, result

    async def main() -> Any:
        engine = create_async_engine(tables)
        try:
            async with AsyncSession(engine) as db:
                with dbopt.instrument(engine, detector), dbopt.scope(FAVOURITE):
                    result = await body(db)
                await db.rollback()
            return result
        finally:
            await engine.dispose()

    return findings, run(main())


@pytest.mark.parametrize("checks", [[], ["potential"]], ids=["default", "potential"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_one_merge_that_loads_two_users_is_no_n_plus_one(
    tables: str, mode: str, checks: list[str]
) -> None:
    """One ``merge()`` loads the article's author and the new fan by key: its own cost, no loop."""
    sync_engine = create_engine(tables)
    article = detached_article(sync_engine, 7)
    fan = new_fan(sync_engine, article)
    sync_engine.dispose()

    def favourite(db: Session) -> None:
        article.favorited_by.append(fan)
        db.merge(article)  # the app's `await self.db.merge(db_obj)`
        db.flush()

    async def favourite_async(db: AsyncSession) -> None:
        article.favorited_by.append(fan)
        await db.merge(article)
        await db.flush()

    findings, _ = merge_findings(
        tables, mode, checks, favourite if mode == "sync" else favourite_async
    )
    assert findings == [], [str(f) for f in findings]


@pytest.mark.parametrize("checks", [[], ["potential"]], ids=["default", "potential"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_merge_after_preloading_the_users_is_no_potential_n_plus_one(
    tables: str, mode: str, checks: list[str]
) -> None:
    """The fix applied: users preloaded in one query, then ``merge()``.

    ``merge()`` then finds the author in the session but loads its ``followers``
    (they were loaded on the detached copy): one lazy load on an object of a
    multi-row result, run by ``merge()`` itself, not by a loop of the app.
    """
    sync_engine = create_engine(tables)
    article = detached_article(sync_engine, 7)
    fan = new_fan(sync_engine, article)
    sync_engine.dispose()
    ids = [article.author_id, fan.id, *(u.id for u in article.favorited_by)]
    preload = select(User).where(User.id.in_(ids))

    def favourite(db: Session) -> int:
        users = db.scalars(preload).all()  # kept referenced: merge() finds them
        article.favorited_by.append(fan)
        db.merge(article)
        db.flush()
        return len(users)

    async def favourite_async(db: AsyncSession) -> int:
        users = (await db.scalars(preload)).all()
        article.favorited_by.append(fan)
        await db.merge(article)
        await db.flush()
        return len(users)

    findings, loaded = merge_findings(
        tables, mode, checks, favourite if mode == "sync" else favourite_async
    )
    assert loaded == len(set(ids))
    assert findings == [], [str(f) for f in findings]


def detached_articles(engine: Any, ids: list[int]) -> list[Article]:
    with Session(engine) as session:
        query = select(Article).where(Article.id.in_(ids)).options(joinedload(Article.author))
        return list(session.scalars(query).all())


@pytest.mark.parametrize("checks", [[], ["potential"]], ids=["default", "potential"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_one_merge_per_row_is_an_n_plus_one_with_the_preload_fix(
    tables: str, mode: str, checks: list[str]
) -> None:
    """``merge()`` per article from one line: each loads its row by key, a loop over rows."""
    ids = [3, 4, 5, 6]
    sync_engine = create_engine(tables)
    articles = detached_articles(sync_engine, ids)
    sync_engine.dispose()

    def merge_each(db: Session) -> list[int]:
        return [db.merge(a).id for a in articles]  # merge loop

    async def merge_each_async(db: AsyncSession) -> list[int]:
        return [(await db.merge(a)).id for a in articles]  # merge loop

    findings, merged = merge_findings(
        tables, mode, checks, merge_each if mode == "sync" else merge_each_async
    )
    assert sorted(merged) == ids
    with open(__file__, encoding="utf-8") as source:
        lines = [n for n, text in enumerate(source, 1) if text.rstrip().endswith("# merge loop")]
    # each merge() loads its article by key, and the article's author: two loops
    assert sorted(f.sql.split("FROM")[1].split()[0] for f in findings) == [
        "aa_articles",
        "aa_users",
    ]
    (finding,) = [f for f in findings if "aa_articles" in f.sql.split("WHERE")[0]]
    assert finding.kind == "n_plus_one"
    assert finding.count == len(ids)
    assert finding.callsite is not None
    assert (finding.callsite.file, finding.callsite.line) == (
        __file__,
        lines[0 if mode == "sync" else 1],
    )
    assert "merge()" in finding.suggestion
    assert "select(Article).where(Article.id.in_(keys))" in finding.suggestion
    assert "keep" in finding.suggestion
    (authors,) = [f for f in findings if f is not finding]
    assert "select(User).where(User.id.in_(keys))" in authors.suggestion
    assert authors.count == len({a.author_id for a in articles})

    # the fixes, as the findings say: the rows loaded in one query first, kept referenced
    keys = {a.author_id for a in articles}

    def preloaded(db: Session) -> list[int]:
        rows = db.scalars(select(Article).where(Article.id.in_(ids))).all()
        users = db.scalars(select(User).where(User.id.in_(keys))).all()
        merged = [db.merge(a).id for a in articles]
        assert (len(rows), len(users)) == (len(ids), len(keys))
        return merged

    async def preloaded_async(db: AsyncSession) -> list[int]:
        rows = (await db.scalars(select(Article).where(Article.id.in_(ids)))).all()
        users = (await db.scalars(select(User).where(User.id.in_(keys)))).all()
        merged = [(await db.merge(a)).id for a in articles]
        assert (len(rows), len(users)) == (len(ids), len(keys))
        return merged

    fixed, merged = merge_findings(
        tables, mode, checks, preloaded if mode == "sync" else preloaded_async
    )
    assert sorted(merged) == ids
    assert fixed == [], [str(f) for f in fixed]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_merge_per_row_loading_a_collection_names_the_option(tables: str, mode: str) -> None:
    """``merge()`` per user (found in the session) whose ``followers`` it loads each time."""
    ids = [2, 3, 4, 5]
    sync_engine = create_engine(tables)
    with Session(sync_engine) as session:  # the app's profiles, followers loaded
        loaded = select(User).where(User.id.in_(ids)).options(selectinload(User.followers))
        users = list(session.scalars(loaded).all())
    sync_engine.dispose()
    preload = select(User).where(User.id.in_(ids))

    def follow_each(db: Session) -> int:
        kept = db.scalars(preload).all()
        return len([db.merge(u) for u in users]) + 0 * len(kept)  # follow loop

    async def follow_each_async(db: AsyncSession) -> int:
        kept = (await db.scalars(preload)).all()
        return len([await db.merge(u) for u in users]) + 0 * len(kept)  # follow loop

    findings, merged = merge_findings(
        tables, mode, ["potential"], follow_each if mode == "sync" else follow_each_async
    )
    assert merged == len(ids)
    (finding,) = findings
    assert finding.count == len(ids)
    assert finding.relationship == "User.followers"
    assert finding.loader_option == "selectinload(User.followers)"
    assert finding.suggestion.startswith("merge() in a loop loads User.followers")

    fixed_preload = preload.options(selectinload(User.followers))  # the fix

    def fixed(db: Session) -> int:
        kept = db.scalars(fixed_preload).all()
        return len([db.merge(u) for u in users]) + 0 * len(kept)

    async def fixed_async(db: AsyncSession) -> int:
        kept = (await db.scalars(fixed_preload)).all()
        return len([await db.merge(u) for u in users]) + 0 * len(kept)

    after, merged = merge_findings(
        tables, mode, ["potential"], fixed if mode == "sync" else fixed_async
    )
    assert merged == len(ids)
    assert after == [], [str(f) for f in after]


@pytest.mark.skipif(
    not hasattr(Session, "merge_all"), reason="Session.merge_all() is new in SQLAlchemy 2.1"
)
def test_merge_all_loads_each_row_an_n_plus_one(tables: str) -> None:
    """``merge_all(objs)`` runs one ``merge()`` per object: a loop over rows in one call."""
    ids = [3, 4, 5, 6]
    sync_engine = create_engine(tables)
    articles = detached_articles(sync_engine, ids)
    sync_engine.dispose()

    def merge_all(db: Session) -> list[int]:
        return [a.id for a in db.merge_all(articles)]  # type: ignore[attr-defined, unused-ignore]

    findings, merged = merge_findings(tables, "sync", [], merge_all)
    assert sorted(merged) == ids
    (finding, _authors) = sorted(findings, key=lambda f: "aa_users" in f.sql.split("WHERE")[0])
    assert finding.count == len(ids)
    assert finding.suggestion.startswith("merge() in a loop loads each Article row by its key")
