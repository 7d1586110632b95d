"""The ASGI middleware under FastAPI and Starlette: concurrent httpx requests, PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, ForeignKey, create_engine, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import dbopt
from dbopt.integrations.asgi import COUNT_HEADER, TIME_HEADER, DboptMiddleware


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "ia_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    posts: Mapped[list[Post]] = relationship()


class Post(Base):
    __tablename__ = "ia_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ia_users.id"))


USERS = 60


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url, pool_size=5, max_overflow=10, pool_timeout=60)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(id=i, posts=[Post(), Post()]) for i in range(1, USERS + 1)])
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def fastapi_app(async_engine: AsyncEngine, engine: Engine) -> FastAPI:
    app = FastAPI()

    @app.get("/loop/{n}")
    async def loop(n: int) -> list[int]:
        """An N+1 of n explicit queries, awaiting between them so requests interleave."""
        async with AsyncSession(async_engine) as session:
            users = (await session.scalars(select(User).order_by(User.id).limit(n))).all()
            counts = []
            for user in users:
                posts = await session.scalars(select(Post).where(Post.user_id == user.id))
                counts.append(len(posts.all()))
            return counts

    @app.get("/eager/{n}")
    async def eager(n: int) -> list[int]:
        async with AsyncSession(async_engine) as session:
            stmt = select(User).order_by(User.id).limit(n).options(selectinload(User.posts))
            return [len(u.posts) for u in (await session.scalars(stmt)).all()]

    @app.get("/sync-loop/{n}")
    def sync_loop(n: int) -> list[int]:
        """A sync endpoint: Starlette runs it in a worker thread, with the request's context."""
        with Session(engine) as session:
            users = session.scalars(select(User).order_by(User.id).limit(n))
            return [len(u.posts) for u in users]

    return app


def requests_plan() -> list[tuple[str, int]]:
    """50 requests; the N+1 ones each load a different number of users (their signature)."""
    plan: list[tuple[str, int]] = []
    for i in range(50):
        if i % 5 == 0:
            plan.append(("loop", 2 + i // 5))  # 2..11
        elif i % 5 == 1:
            plan.append(("sync-loop", 20 + i // 5))  # 20..29
        else:
            plan.append(("eager", 3 + i % 7))
    return plan


def test_fifty_concurrent_requests_findings_in_exactly_those(engine: Engine, pg_url: str) -> None:
    findings: list[dbopt.NPlusOneFinding] = []
    order: list[int] = []  # the scope of each statement, in the order they ran

    async def main() -> list[httpx.Response]:
        async_engine = create_async_engine(pg_url, pool_size=5, max_overflow=15, pool_timeout=60)
        app = fastapi_app(async_engine, engine)
        detector = dbopt.NPlusOneDetector(action=findings.append)
        middleware = DboptMiddleware(
            app, targets=[engine, async_engine], detector=detector, headers=True
        )
        recorder = dbopt.instrument(async_engine, lambda event: order.append(id(event.scope)))
        try:
            transport = httpx.ASGITransport(app=middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await asyncio.gather(
                    *(client.get(f"/{kind}/{n}") for kind, n in requests_plan())
                )
        finally:
            recorder.close()
            middleware.close()
            await async_engine.dispose()

    responses = asyncio.run(main())
    plan = requests_plan()
    for (kind, n), response in zip(plan, responses, strict=True):
        assert response.status_code == 200
        assert response.json() == [2] * n
        expected_queries = 2 if kind == "eager" else 1 + n
        assert int(response.headers[COUNT_HEADER]) == expected_queries, (kind, n)
        assert float(response.headers[TIME_HEADER]) > 0
    got = sorted((f.scope, f.count, f.relationship) for f in findings)
    expected = sorted(
        [("GET /loop/{n}", n, None) for kind, n in plan if kind == "loop"]
        + [("GET /sync-loop/{n}", n, "User.posts") for kind, n in plan if kind == "sync-loop"]
    )
    assert got == expected
    assert dbopt.current_scope() is None
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > 40, switches  # the requests really ran interleaved


def test_starlette_logs_names_routes_and_closes_on_errors(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    async def users(request: Request) -> JSONResponse:
        n = int(request.path_params["n"])
        with Session(engine) as session:
            found = session.scalars(select(User).order_by(User.id).limit(n)).all()
            return JSONResponse([len(u.posts) for u in found])

    async def boom(request: Request) -> JSONResponse:
        with Session(engine) as session:
            session.scalars(select(User).limit(1)).all()
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/users/{n:int}", users), Route("/boom", boom)])
    app.add_middleware(DboptMiddleware, targets=[engine])

    async def main() -> tuple[httpx.Response, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ok = await client.get("/users/3")
            try:
                await client.get("/boom")
            except RuntimeError as exc:
                return ok, exc
            return ok, None

    with caplog.at_level(logging.WARNING, logger="dbopt.asgi"):
        ok, error = asyncio.run(main())
    assert ok.json() == [2, 2, 2]
    assert COUNT_HEADER not in ok.headers  # headers are opt-in
    assert isinstance(error, RuntimeError)
    (record,) = [r for r in caplog.records if r.name == "dbopt.asgi"]
    finding: dict[str, Any] = record.finding  # type: ignore[attr-defined]
    assert (finding["scope"], finding["count"]) == ("GET /users/{n:int}", 3)
    assert finding["loader_option"] == "selectinload(User.posts)"
    assert dbopt.current_scope() is None


def test_other_scope_types_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        assert dbopt.current_scope() is None

    middleware = DboptMiddleware(app)
    asyncio.run(middleware({"type": "lifespan"}, _never, _never))
    assert seen == ["lifespan"]
    assert middleware.detector is not None
    with pytest.raises(dbopt.ConfigurationError):
        DboptMiddleware(app, detector="yes")  # type: ignore[arg-type]


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


def test_scope_names_carry_router_prefixes_and_mounts(engine: Engine) -> None:
    """FastAPI keeps an included router's route as declared (``path=""``): the name has the prefix.

    The shape of the RealWorld app in docs/real-apps.md: ``include_router(articles,
    prefix="/articles")`` inside ``include_router(api, prefix="/api")``.
    """
    from fastapi import APIRouter
    from starlette.routing import Mount

    scopes: list[dbopt.Scope] = []  # named once the request ends
    articles = APIRouter()

    @articles.get("")
    async def list_articles() -> list[int]:
        scopes.append(dbopt.current_scope())  # type: ignore[arg-type]
        return []

    @articles.get("/{slug}")
    async def get_article(slug: str) -> str:
        scopes.append(dbopt.current_scope())  # type: ignore[arg-type]
        return slug

    api = APIRouter()
    api.include_router(articles, prefix="/articles")
    app = FastAPI()
    app.include_router(api, prefix="/api")

    async def users(request: Request) -> JSONResponse:
        scopes.append(dbopt.current_scope())  # type: ignore[arg-type]
        return JSONResponse([])

    mounted = Starlette(routes=[Mount("/v1", routes=[Route("/users/{n:int}", users)])])

    async def main() -> None:
        for root, paths in (
            (app, ("/api/articles", "/api/articles/hello")),
            (mounted, ("/v1/users/3",)),
        ):
            middleware = DboptMiddleware(root, targets=[engine])
            transport = httpx.ASGITransport(app=middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for path in paths:
                    assert (await client.get(path)).status_code == 200
            middleware.close()

    asyncio.run(main())
    assert [scope.name for scope in scopes] == [
        "GET /api/articles",
        "GET /api/articles/{slug}",
        "GET /v1/users/{n:int}",
    ]
