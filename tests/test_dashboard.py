"""The dashboard on real PostgreSQL, through each mount's own test client (no browser).

The browser tests (test_dashboard_browser.py) drive the same apps in Chromium.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import dbopt
from dbopt.dashboard import Dashboard, RequestRecorder
from dbopt.errors import ConfigurationError

sys.path.insert(0, str(Path(__file__).parent))
import dashboard_apps as apps

PAGES = ["/requests", "/queries", "/indexes", "/health", "/partitions", "/pool"]
AUTH = {"Authorization": f"Bearer {apps.TOKEN}"}


@pytest.fixture(scope="module")
def wiring(pg_url: str) -> Iterator[apps.Wiring]:
    w = apps.wire(pg_url)
    yield w
    w.dashboard.close()
    w.monitor.close()
    w.engine.dispose()


class _AsgiClient:
    """httpx over the ASGI app, one event loop per call (Starlette's TestClient warns)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import asyncio

        import httpx

        async def go() -> Any:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path: str, headers: dict[str, str]) -> Any:
        return self._call("GET", path, headers=headers)

    def post(self, path: str, data: dict[str, Any], headers: dict[str, str]) -> Any:
        return self._call("POST", path, data=data, headers=headers)


class Client:
    """One interface over Flask's, Starlette's and Werkzeug's test clients."""

    def __init__(self, style: str, w: apps.Wiring) -> None:
        self.style = style
        if style == "flask":
            self._c: Any = apps.flask_app(w).test_client()
        elif style == "asgi":
            self._c = _AsgiClient(apps.asgi_app(w))
        else:
            from werkzeug.test import Client as WClient

            self._c = WClient(apps.wsgi_app(w))

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        r = self._c.get(path, headers=headers or {})
        return self._unpack(r)

    def post(
        self, path: str, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        r = self._c.post(path, data=data, headers=headers or {})
        return self._unpack(r)

    def _unpack(self, r: Any) -> tuple[int, dict[str, str], str]:
        status = r.status_code
        headers = {k.lower(): v for k, v in r.headers.items()}
        body = r.text if self.style == "asgi" else r.get_data(as_text=True)
        return status, headers, body


STYLES = ["flask", "asgi", "wsgi"]


@pytest.fixture(params=STYLES)
def client(request: pytest.FixtureRequest, wiring: apps.Wiring) -> Client:
    c = Client(request.param, wiring)
    for _ in range(2):
        assert c.get("/users")[0] == 200
        assert c.get("/posts/2")[0] == 200
    return c


def _csrf(body: str) -> str:
    match = re.search(r'name="dbopt-csrf" content="([^"]+)"', body)
    assert match is not None
    return match.group(1)


def test_every_page_loads_with_a_strict_csp(client: Client) -> None:
    for page in PAGES:
        status, headers, body = client.get(apps.MOUNT + page, AUTH)
        assert status == 200, (page, body[:300])
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "<script>" not in body  # only <script src=...> from the dashboard itself
        assert " style=" not in body
        assert not re.search(r'(?:src|href|action)="(?:https?:)?//', body)  # nothing remote
        assert f'href="{apps.MOUNT}/static/app.css"' in body
    status, headers, _ = client.get(apps.MOUNT + "/static/app.js")
    assert status == 200
    assert headers["content-type"].startswith("text/javascript")


def test_unauthorized_requests_are_refused(client: Client) -> None:
    assert client.get(apps.MOUNT + "/requests")[0] == 401
    assert client.get(apps.MOUNT + "/requests", {"Authorization": "Bearer wrong"})[0] == 403
    assert client.get(apps.MOUNT + "/requests?token=wrong")[0] == 403
    assert client.get(apps.MOUNT + "/api/summary")[0] == 401
    status, headers, _ = client.get(apps.MOUNT + f"/queries?token={apps.TOKEN}")
    assert status == 303
    assert headers["location"] == apps.MOUNT + "/queries"
    assert "HttpOnly" in headers["set-cookie"]
    assert apps.TOKEN not in headers["set-cookie"]  # an HMAC of it, not the token


def test_the_request_page_shows_the_n_plus_one_with_its_line_and_fix(
    client: Client, wiring: apps.Wiring
) -> None:
    record = next(r for r in wiring.recorder.requests() if "users" in (r.name or ""))
    found = record.findings()
    n1 = next(f for f in found if f.kind == "n_plus_one")
    assert n1.relationship == "User.posts"
    assert n1.loader_option == "selectinload(User.posts)"
    assert n1.callsite is not None
    assert n1.callsite.file.endswith("dashboard_apps.py")
    assert any(f.kind == "repeated_query" for f in found)
    status, _, body = client.get(f"{apps.MOUNT}/requests/{record.id}", AUTH)
    assert status == 200
    assert "selectinload(User.posts)" in body
    assert "dashboard_apps.py:" in body
    assert "post 1.%" not in body  # the literal is masked: private by default
    status, _, listing = client.get(apps.MOUNT + "/requests", AUTH)
    assert f'/requests/{record.id}"' in listing
    assert "N+1" in listing


def test_explain_is_a_post_with_csrf(client: Client, wiring: apps.Wiring) -> None:
    record = next(r for r in wiring.recorder.requests() if "posts" in (r.name or ""))
    index = next(i for i, s in enumerate(record.statements) if s.kind == "select")
    _, _, body = client.get(f"{apps.MOUNT}/requests/{record.id}", AUTH)
    token = _csrf(body)
    form = {"request": str(record.id), "index": str(index)}
    assert client.post(apps.MOUNT + "/explain", form, AUTH)[0] == 403  # no CSRF value
    cookie = {"Cookie": f"dbopt_csrf={token}"}
    evil = {**AUTH, **cookie, "X-Dbopt-Csrf": token, "Origin": "http://evil.example"}
    assert client.post(apps.MOUNT + "/explain", form, evil)[0] == 403
    status, _, answer = client.post(
        apps.MOUNT + "/explain", form, {**AUTH, **cookie, "X-Dbopt-Csrf": token}
    )
    assert status == 200, answer
    assert '"ok": true' in answer
    assert "dash_" in answer  # the plan names the table


def test_an_advisor_run_completes(wiring: apps.Wiring) -> None:
    c = Client("flask", wiring)
    for _ in range(3):
        c.get("/users")
    _, _, body = c.get(apps.MOUNT + "/indexes", AUTH)
    token = _csrf(body)
    headers = {**AUTH, "Cookie": f"dbopt_csrf={token}", "X-Dbopt-Csrf": token}
    status, _, started = c.post(apps.MOUNT + "/indexes/run", {}, headers)
    assert status == 200, started
    deadline = time.monotonic() + 60
    while wiring.dashboard.advisor.state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wiring.dashboard.advisor.state == "done", wiring.dashboard.advisor.error
    _, _, page = c.get(apps.MOUNT + "/indexes", AUTH)
    assert "Recommendations" in page
    assert "dash_posts" in page  # an index on the N+1's foreign key
    assert "op.create_index" in page or "CREATE INDEX" in page


def test_queries_page_joins_pg_stat_statements(client: Client) -> None:
    status, _, body = client.get(apps.MOUNT + "/queries?refresh=1", AUTH)
    assert status == 200
    assert "dash_posts" in body
    assert "dashboard_apps.py:" in body  # the app's call sites beside the server's numbers


def test_the_dashboard_needs_authorization() -> None:
    with pytest.raises(ConfigurationError, match="authorize"):
        Dashboard()


def test_an_authorize_callable_decides() -> None:
    dash = Dashboard(authorize=lambda r: r.headers.get("x-staff") == "1")
    from dbopt.dashboard import DashboardRequest

    assert dash.handle(DashboardRequest("GET", "/requests")).status == 403
    ok = dash.handle(DashboardRequest("GET", "/requests", headers={"x-staff": "1"}))
    assert ok.status == 200
    crashing = Dashboard(authorize=lambda r: 1 / 0 > 0)
    assert crashing.handle(DashboardRequest("GET", "/requests")).status == 403


def test_recorder_memory_stays_within_its_bound() -> None:
    recorder = RequestRecorder(max_bytes=40_000, max_statements=5, max_text=100)
    stats_events: list[int] = []

    conn = __import__("sqlite3").connect(":memory:")
    proxy = dbopt.wrap_dbapi(conn, recorder)
    cur = proxy.cursor()
    for i in range(300):
        with dbopt.scope(f"job {i % 3}"):
            for j in range(8):
                cur.execute("SELECT ? || '" + "x" * 300 + "'", (j,))
        stats_events.append(recorder.nbytes)
    assert max(stats_events) <= 40_000
    assert recorder.evicted > 0
    newest = recorder.requests()[0]
    assert len(newest.statements) == 5
    assert newest.dropped == 3
    assert all(len(s.sql) <= 100 for s in newest.statements)
    assert newest.statements[0].parameters is None  # values are not kept by default


def test_scopes_without_statements_are_not_recorded() -> None:
    recorder = RequestRecorder()
    with dbopt.scope("nothing"):
        pass
    assert len(recorder) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_a_public_address_without_a_token(pg_url: str) -> None:
    from dbopt.dashboard.server import is_loopback, make_dashboard_server

    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - the address refused here
    dash = Dashboard(authorize=lambda r: True)
    with pytest.raises(ConfigurationError, match="without a token"):
        make_dashboard_server(dash, "0.0.0.0", _free_port())  # noqa: S104
    result = subprocess.run(  # noqa: S603 - this interpreter, dbopt's CLI
        [sys.executable, "-m", "dbopt", "serve", "--dsn", pg_url, "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "without a token" in result.stderr


def test_serve_standalone_on_loopback(pg_url: str) -> None:
    from dbopt.dashboard.server import make_dashboard_server

    dash = Dashboard(dsn=pg_url, stats=dbopt.QueryStats(), token="s3cret-token")
    httpd = make_dashboard_server(dash, "127.0.0.1", 0)
    port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/requests", timeout=10)  # noqa: S310 - loopback
        assert refused.value.code == 401
        refused.value.close()
        request = urllib.request.Request(  # noqa: S310 - loopback
            base + "/health", headers={"Authorization": "Bearer s3cret-token"}
        )
        with urllib.request.urlopen(request, timeout=30) as page:  # noqa: S310
            assert page.status == 200
            assert b"Health checks" in page.read()
    finally:
        httpd.shutdown()
        httpd.server_close()
        dash.close()


def _wait_ready(proc: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return
        if proc.poll() is not None:
            break
    raise AssertionError(f"the app did not start: {log.read_text()[-3000:]}")


@contextmanager
def served(style: str, url: str, mount: bool = True) -> Iterator[str]:
    """The app of ``style`` served on loopback by a process of its own; yields its base URL."""
    import tempfile

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.txt"
        with (
            log.open("w") as err,
            subprocess.Popen(  # noqa: S603 - this interpreter, the test's own app
                [
                    sys.executable,
                    str(Path(apps.__file__)),
                    style,
                    str(port),
                    url,
                    *([] if mount else ["nomount"]),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            ) as proc,
        ):
            try:
                _wait_ready(proc, log)
                yield f"http://127.0.0.1:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_the_django_mount_serves_and_refuses(pg_url: str) -> None:
    """Django's settings are per process: its app runs in one of its own."""
    with served("django", pg_url) as base:
        with urllib.request.urlopen(base + "/users", timeout=30) as users:  # noqa: S310
            users.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + apps.MOUNT + "/requests", timeout=10)  # noqa: S310
        assert refused.value.code == 401
        refused.value.close()
        for page in PAGES:
            request = urllib.request.Request(base + apps.MOUNT + page, headers=AUTH)  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                assert answer.status == 200
                assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
                if page == "/requests":
                    assert b"GET users/" in answer.read()
