"""The HTML report: self-contained, escaped, and loading in a real browser without errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dbopt.demo import DemoOptions, run_demo
from dbopt.report.html import render_html, write_html
from dbopt.testing import postgres_server_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a small demo run: every section, filled from real results."""
    target = tmp_path_factory.mktemp("report") / "demo.html"
    with postgres_server_url() as server:
        run_demo(
            DemoOptions(dsn=server, small=True, output=str(target), pool_seconds=1.0),
            io.StringIO(),
        )
    return target


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(  # noqa: S603 - the system's chromium on a local file
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _console_messages(stderr: str) -> list[str]:
    """Chromium logs every console message (and CSP violation, and uncaught error) here."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_every_section_is_rendered(demo_report: Path) -> None:
    page = demo_report.read_text()
    for anchor in ("statements", "nplusone", "slow", "advisor", "partitions", "pool"):
        assert f'<section id="{anchor}">' in page
    assert '<section id="f-schema-lint">' in page
    assert page.count("<svg") >= 5  # statements, N+1, advisor, timeline, pool
    assert "Content-Security-Policy" in page


def test_the_page_needs_no_network(demo_report: Path) -> None:
    page = demo_report.read_text()
    assert "src=" not in page
    assert "<link" not in page
    assert "@import" not in page
    assert 'href="http' not in page
    assert "url(" not in page


def test_text_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    page = render_html(
        {
            "title": evil,
            "statements": [
                {
                    "normalized": f"select {evil} from t",
                    "calls": 1,
                    "total_time": 0.1,
                    "callsites": {evil: 1},
                }
            ],
            "findings": {
                "Lint": [
                    {
                        "code": "X1",
                        "severity": "warning",
                        "object": evil,
                        "message": evil,
                        "fix": evil,
                    }
                ]
            },
            "notes": [evil],
        }
    )
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the report's own sorting script only


def test_sections_without_data_are_left_out(tmp_path: Path) -> None:
    page = write_html({"title": "empty"}, tmp_path / "empty.html").read_text()
    assert "<section" not in page
    assert "<title>empty</title>" in page


@needs_chromium
def test_the_browser_sees_a_console_error_when_there_is_one(tmp_path: Path) -> None:
    """The check below can fail: a page with an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>missingFunction();</script></body></html>")
    result = _chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert any("missingFunction" in m for m in _console_messages(result.stderr))


@needs_chromium
def test_report_loads_in_chromium_without_console_errors(demo_report: Path, tmp_path: Path) -> None:
    result = _chromium(tmp_path, "--dump-dom", demo_report.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_messages(result.stderr) == []
    assert 'data-report-ready="1"' in result.stdout  # the inline script ran to its end
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        tmp_path,
        "--hide-scrollbars",
        "--window-size=1280,3000",
        f"--screenshot={screenshot}",
        demo_report.as_uri(),
    )
    assert _console_messages(shot.stderr) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000
    keep = os.environ.get("DBOPT_ARTIFACTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "report.png")
        shutil.copy(demo_report, Path(keep) / "report.html")
