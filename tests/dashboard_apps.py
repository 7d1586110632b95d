"""Small instrumented applications that mount the dashboard, one per mount style.

Each serves ``/users`` (an N+1: one SELECT of posts per user, plus a
repeated query) and ``/posts/<n>`` on a real PostgreSQL, with a
RequestRecorder and a QueryStats attached, and the dashboard at ``/_dbopt``
(token ``TOKEN``). Run as a script to serve one over HTTP on loopback
(the browser tests and bench/dashboard.py do)::

    python tests/dashboard_apps.py flask|asgi|django|wsgi PORT SQLALCHEMY_URL [nomount]
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, ForeignKey, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import dbopt
from dbopt.dashboard import Dashboard, RequestRecorder
from dbopt.pool import PoolMonitor

TOKEN = "test-token-0123456789"
MOUNT = "/_dbopt"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "dash_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(80))
    posts: Mapped[list[Post]] = relationship(back_populates="author")


class Post(Base):
    __tablename__ = "dash_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("dash_users.id"))
    title: Mapped[str] = mapped_column(String(80))
    author: Mapped[User] = relationship(back_populates="posts")


def prepare(url: str) -> Engine:
    """An engine on ``url`` (a database of its own), the tables created and filled once."""
    engine = create_engine(url, pool_size=4, max_overflow=4)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if session.scalar(select(User.id).limit(1)) is None:
            for i in range(12):
                user = User(name=f"user{i}", email=f"user{i}@example.com")
                user.posts = [Post(title=f"post {i}.{j}") for j in range(3)]
                session.add(user)
            session.commit()
    return engine


def users_view(engine: Engine) -> list[dict[str, Any]]:
    """Every user with their post titles: an N+1 (lazy posts) and a repeated query."""
    with Session(engine) as session:
        users = session.scalars(select(User).order_by(User.id)).all()
        out = [{"name": u.name, "posts": [p.title for p in u.posts]} for u in users]
        for _ in range(2):
            session.execute(
                text("SELECT count(*) FROM dash_posts WHERE title LIKE 'post 1.%'")
            ).scalar()
    return out


def post_view(engine: Engine, post_id: int) -> dict[str, Any]:
    """One post and its author's e-mail."""
    with Session(engine) as session:
        post = session.get(Post, post_id)
        if post is None:
            return {}
        return {"title": post.title, "author": post.author.email}


@dataclass
class Wiring:
    """What an app attaches: the sinks, the monitor, the dashboard."""

    engine: Engine
    recorder: RequestRecorder
    stats: dbopt.QueryStats
    monitor: PoolMonitor
    dashboard: Dashboard


def wire(url: str, **dashboard_options: Any) -> Wiring:
    engine = prepare(url)
    recorder = RequestRecorder()
    stats = dbopt.QueryStats()
    dbopt.instrument(engine, recorder, stats)
    monitor = PoolMonitor(engine, name="app")
    options: dict[str, Any] = {"token": TOKEN}
    options.update(dashboard_options)
    dashboard = Dashboard(recorder=recorder, stats=stats, dsn=url, monitors=[monitor], **options)
    return Wiring(engine, recorder, stats, monitor, dashboard)


def flask_app(w: Wiring, mount: bool = True) -> Any:
    import flask

    from dbopt.integrations.flask import DboptFlask

    app = flask.Flask("dashboard_test")
    DboptFlask(app, detector=False)

    @app.get("/users")
    def users() -> Any:
        return flask.jsonify(users_view(w.engine))

    @app.get("/posts/<int:post_id>")
    def post(post_id: int) -> Any:
        return flask.jsonify(post_view(w.engine, post_id))

    if mount:
        app.register_blueprint(w.dashboard.flask_blueprint(url_prefix=MOUNT))
    return app


def asgi_app(w: Wiring, mount: bool = True) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from dbopt.integrations.asgi import DboptMiddleware

    def users(request: Any) -> Any:
        return JSONResponse(users_view(w.engine))

    def post(request: Any) -> Any:
        return JSONResponse(post_view(w.engine, int(request.path_params["post_id"])))

    routes: list[Any] = [Route("/users", users), Route("/posts/{post_id:int}", post)]
    if mount:
        routes.append(Mount(MOUNT, app=w.dashboard.asgi()))
    app = Starlette(routes=routes)
    return DboptMiddleware(app, detector=False)


def wsgi_app(w: Wiring, mount: bool = True) -> Callable[..., Any]:
    """A bare WSGI app: its own scope per request, the dashboard under MOUNT."""
    import json

    dash = w.dashboard.wsgi(MOUNT)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if mount and path.startswith(MOUNT):
            return dash(environ, start_response)
        with dbopt.scope(f"GET {path}"):
            if path == "/users":
                data: Any = users_view(w.engine)
            elif path.startswith("/posts/"):
                data = post_view(w.engine, int(path.rsplit("/", 1)[1]))
            else:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
        body = json.dumps(data).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def django_app(w: Wiring, mount: bool = True) -> Any:
    """A Django WSGI app (settings configured here: run it in its own process)."""
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="dashboard-test",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    import django
    from django.core.wsgi import get_wsgi_application
    from django.http import JsonResponse
    from django.urls import include, path

    def users(request: Any) -> Any:
        with dbopt.scope("GET users/"):
            return JsonResponse(users_view(w.engine), safe=False)

    def post(request: Any, post_id: int) -> Any:
        with dbopt.scope("GET posts/<int:post_id>"):
            return JsonResponse(post_view(w.engine, post_id))

    urlpatterns[:] = [path("users", users), path("posts/<int:post_id>", post)]
    if mount:
        urlpatterns.append(path(MOUNT.strip("/") + "/", include(w.dashboard.django_urls())))
    django.setup()
    return get_wsgi_application()


urlpatterns: list[Any] = []

BUILDERS: dict[str, Callable[..., Any]] = {
    "flask": flask_app,
    "asgi": asgi_app,
    "wsgi": wsgi_app,
    "django": django_app,
}


def serve(style: str, port: int, url: str, mount: bool = True) -> None:
    """Serve the app of ``style`` on 127.0.0.1:``port`` until killed; prints ``ready``."""
    w = wire(url)
    app = BUILDERS[style](w, mount)
    if style == "asgi":
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)

        def ready() -> None:
            while not server.started:
                threading.Event().wait(0.05)
            print("ready", flush=True)

        threading.Thread(target=ready, daemon=True).start()
        server.run()
        return
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = make_server("127.0.0.1", port, app, server_class=Server, handler_class=Quiet)
    print("ready", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    serve(
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        mount=(sys.argv[4] != "nomount") if len(sys.argv) > 4 else True,
    )
