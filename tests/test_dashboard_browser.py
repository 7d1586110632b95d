"""The dashboard in real headless Chromium, on each mount style, served over loopback.

Each page loads with no console error (nor CSP violation, nor failed load),
the navigation works, an EXPLAIN and an advisor run complete from the page,
an unauthorized visit is refused, and screenshots are saved (to the test's
tmp dir, and to ``DBOPT_ARTIFACTS_DIR`` when set).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

import dashboard_apps as apps
from cdp_browser import CHROMIUM, Browser
from test_dashboard import PAGES, served

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


def _traffic(base: str) -> None:
    for path in ("/users", "/posts/2", "/users", "/posts/5"):
        with urllib.request.urlopen(base + path, timeout=30) as answer:  # noqa: S310 - loopback
            answer.read()


@pytest.mark.parametrize("style", ["flask", "asgi", "django", "wsgi"])
def test_every_page_in_chromium(style: str, pg_url: str, tmp_path: Path) -> None:
    with served(style, pg_url) as base:
        _traffic(base)
        browser = Browser(tmp_path / "profile")
        try:
            root = base + apps.MOUNT
            # refused without the token
            browser.goto(root + "/requests", ready=False)
            assert browser.statuses.get(root + "/requests") == 401
            assert "authorization required" in browser.evaluate("document.body.innerText")
            browser.errors.clear()  # the 401 itself is logged as a failed load

            # the token once, then the cookie
            browser.goto(root + f"/requests?token={apps.TOKEN}")
            assert browser.evaluate("location.pathname") == apps.MOUNT + "/requests"
            # the app itself serves no /favicon.ico (the refusal page asked for it)
            app_icon = base + "/favicon.ico"
            for page in PAGES:
                browser.goto(root + page)
                assert browser.evaluate("document.querySelector('main h2') !== null")
                errors = [e for e in browser.errors if not e.endswith(app_icon)]
                assert errors == [], (page, errors)

            # navigation by the menu
            browser.goto(root + "/requests")
            browser.click_and_load('nav a[href$="/queries"]')
            assert browser.evaluate("location.pathname") == apps.MOUNT + "/queries"
            assert browser.evaluate("document.querySelector('#queries') !== null")
            browser.click_and_load('nav a[href$="/requests"]')
            browser.click_and_load('#requests tr.flagged a[href*="/requests/"]')
            assert "selectinload(User.posts)" in browser.evaluate("document.body.innerText")
            assert "/requests/" in browser.evaluate("location.pathname")

            # EXPLAIN from the request's page
            detail = browser.evaluate("location.href")
            browser.evaluate("document.querySelector('button[data-explain]').click()")
            done = browser.wait_for(
                "(document.querySelector('pre.plan[data-done]') || {}).textContent"
            )
            assert "Scan" in done, done
            if style == "flask":
                browser.screenshot(tmp_path / "dashboard-request.png")

            # the advisor, from its page, with progress, until the page shows the result
            browser.goto(root + "/indexes")
            browser.evaluate("document.querySelector('button[data-advise]').click()")
            browser.wait_for(
                "!!document.body && document.body.innerText.includes('workload cost before')", 90
            )
            assert browser.evaluate("document.body.innerText").count("Recommendations") == 1
            errors = [e for e in browser.errors if not e.endswith(app_icon)]
            assert errors == [], errors
            if style == "flask":
                browser.screenshot(tmp_path / "dashboard-indexes.png")
                browser.goto(root + "/requests")
                browser.screenshot(tmp_path / "dashboard-requests.png")
            assert detail.startswith(root)
        finally:
            browser.close()
    if style == "flask":
        for name in ("dashboard-requests.png", "dashboard-request.png", "dashboard-indexes.png"):
            shot = tmp_path / name
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 10_000
        keep = os.environ.get("DBOPT_ARTIFACTS_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for name in (
                "dashboard-requests.png",
                "dashboard-request.png",
                "dashboard-indexes.png",
            ):
                shutil.copy(tmp_path / name, Path(keep) / name)


def test_the_browser_sees_a_console_error_when_there_is_one(tmp_path: Path) -> None:
    """The checks above can fail: an error and a CSP violation are both caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"img-src 'none'\"></head><body><img src='x.png'></body></html>"
    )
    browser = Browser(tmp_path / "profile")
    try:
        browser.goto(page.as_uri(), ready=False)
        browser.send(
            "Runtime.evaluate",
            {"expression": "setTimeout(function () { nothere(); }, 0)"},
            session=True,
        )
        browser.wait_for("true")
        import time

        deadline = time.monotonic() + 10
        while len(browser.errors) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("nothere" in e for e in browser.errors), browser.errors
        assert any("x.png" in e for e in browser.errors), browser.errors
    finally:
        browser.close()
