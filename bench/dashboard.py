"""The live dashboard's cost: page renders with 10,000 recorded requests, memory, app latency.

1. Render: a RequestRecorder filled with ``--requests`` (10,000) requests of
   a real workload (SQLite in memory, 6 statements each, an N+1 in half of
   them), then the Requests page, an older page of it, one request's page
   and the Queries page rendered through ``Dashboard.handle``; medians.
2. Memory: the recorder's counted bytes against its bound, and what
   tracemalloc saw the filled ring take.
3. Application latency: the Flask test app of tests/dashboard_apps.py on
   PostgreSQL, served over loopback HTTP, with the recorder and QueryStats
   attached, once without the dashboard and once with it mounted and polled
   (two pages a second); interleaved blocks, per-request medians, ratio.

    python bench/dashboard.py            # ~1 min
    python bench/dashboard.py --quick
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import describe_machine, mark, postgres_url

import dbopt
from dbopt.dashboard import Dashboard, DashboardRequest, RequestRecorder

TOKEN = "bench-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def fill(recorder: RequestRecorder, stats: dbopt.QueryStats, n: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INT, title TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}") for i in range(50)])
    proxy = dbopt.wrap_dbapi(conn, recorder, stats)
    cur = proxy.cursor()
    for i in range(n):
        with dbopt.scope("GET /users" if i % 2 else "GET /users/<id>", path=f"/users/{i}"):
            cur.execute("SELECT id, name FROM users WHERE id > ? LIMIT 5", (i % 40,))
            ids = [row[0] for row in cur.fetchall()]
            if i % 2:
                for uid in ids:
                    cur.execute("SELECT id, title FROM posts WHERE user_id = ?", (uid,))
            else:
                cur.execute(
                    "SELECT id, title FROM posts WHERE user_id IN (?, ?, ?, ?, ?)",
                    (*ids, *[0] * (5 - len(ids))),
                )


def render_bench(n: int, reps: int) -> None:
    fill(RequestRecorder(max_requests=1), dbopt.QueryStats(), n)  # warm the caches
    recorder = RequestRecorder()
    stats = dbopt.QueryStats()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(recorder, stats, n)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    dash = Dashboard(recorder=recorder, stats=stats, token=TOKEN)
    some = recorder.requests()[n // 3].id
    pages = {
        "/requests (newest 50)": "/requests",
        "/requests?page=100": "/requests",
        f"/requests/{some}": f"/requests/{some}",
        "/queries": "/queries",
        "/api/summary": "/api/summary",
    }
    print(f"\n1. Page renders with {len(recorder):,} recorded requests (median of {reps})")
    print(f"   {'page':<28} {'median ms':>10} {'first ms':>10}  target < 200 ms")
    for label, path in pages.items():
        query = {"page": "100"} if "page=100" in label else {}
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            response = dash.handle(DashboardRequest("GET", path, query=query, headers=AUTH))
            times.append((time.perf_counter() - t) * 1000)
            assert response.status == 200, (path, response.status)
        med = statistics.median(times)
        print(f"   {label:<28} {med:>10.1f} {times[0]:>10.1f}  {mark(med, 200)}")
    print("\n2. Memory")
    print(
        f"   recorder counted bytes   {recorder.nbytes / 1e6:8.1f} MB (bound max_bytes "
        f"{recorder.max_bytes / 1e6:.1f} MB, max_requests {recorder.max_requests:,})"
    )
    print(
        f"   tracemalloc, the fill    {traced / 1e6:8.1f} MB (recorder + QueryStats, caches "
        f"warm; {traced / max(1, len(recorder)):.0f} B per request)"
    )
    print(f"   within the bound         {mark(recorder.nbytes, recorder.max_bytes)}")


def latency_bench(requests: int, reps: int) -> None:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    import dashboard_apps as apps

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    with postgres_url() as url:
        servers = {}
        wirings = []
        for name, mount in (("without dashboard", False), ("mounted + polled", True)):
            w = apps.wire(url)
            wirings.append(w)
            httpd = make_server(
                "127.0.0.1", 0, apps.flask_app(w, mount), server_class=Server, handler_class=Quiet
            )
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            servers[name] = (httpd, f"http://127.0.0.1:{httpd.server_address[1]}")
        stop = threading.Event()
        polls = [0]

        def poll() -> None:
            base = servers["mounted + polled"][1] + apps.MOUNT
            while not stop.is_set():
                for page in ("/api/summary", "/requests"):
                    req = urllib.request.Request(  # noqa: S310 - loopback
                        base + page, headers={"Authorization": f"Bearer {apps.TOKEN}"}
                    )
                    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
                        r.read()
                    polls[0] += 1
                stop.wait(1.0)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()

        def block(base: str) -> float:
            times = []
            for i in range(requests):
                path = "/users" if i % 4 == 0 else f"/posts/{1 + i % 30}"
                t = time.perf_counter()
                with urllib.request.urlopen(base + path, timeout=30) as r:  # noqa: S310
                    r.read()
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

        results: dict[str, list[float]] = {name: [] for name in servers}
        for name in servers:  # warm-up
            block(servers[name][1])
        for rep in range(reps):
            order = list(servers) if rep % 2 == 0 else list(reversed(servers))
            for name in order:
                results[name].append(block(servers[name][1]))
        stop.set()
        poller.join(timeout=30)
        base_ms = statistics.median(results["without dashboard"])
        total = requests * reps
        print(
            f"\n3. Application latency over loopback HTTP ({total:,} requests per "
            f"configuration, {reps} interleaved blocks; dashboard polled {polls[0]} times)"
        )
        for name, values in results.items():
            med = statistics.median(values)
            print(f"   {name:<20} median {med:6.2f} ms per request   ratio {med / base_ms:5.2f}")
        rec = wirings[1].recorder
        print(f"   recorded by the mounted app: {len(rec):,} requests, {rec.nbytes / 1e6:.1f} MB")
        for w in wirings:
            w.engine.dispose()
        for httpd, _ in servers.values():
            httpd.shutdown()
            httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    render_bench(2000 if args.quick else 10_000, 5 if args.quick else 21)
    latency_bench(100 if args.quick else 500, 2 if args.quick else 6)


if __name__ == "__main__":
    main()
