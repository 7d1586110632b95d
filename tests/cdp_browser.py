"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Drives Debian's headless ``chromium`` for the dashboard's browser tests: no
chromedriver, no websocket library. Collects console messages, uncaught
exceptions and browser log entries (CSP violations, failed loads) so a
test can assert there were none.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class CDPError(Exception):
    pass


class Browser:
    """One headless Chromium with one page; ``errors`` lists what its console reported."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        assert CHROMIUM is not None
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # above 4, so the child's dup2 onto 3 and 4 cannot clobber one with the other
        child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(  # noqa: S603 - the system's chromium
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            preexec_fn=wire,  # noqa: PLW1509 - dup2 only, before exec
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self._out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._in = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._next = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.statuses: dict[str, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._in.read(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    box = self._replies.get(message["id"])
                    if box is not None:
                        box.put(message)
                else:
                    self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method = message.get("method", "")
        params = message.get("params", {})
        self.events.append(message)
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            entry = params["entry"]
            self.errors.append(
                f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
            )
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            self.statuses[response.get("url", "")] = int(response.get("status", 0))

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = False,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            ident = self._next
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = box
            message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = self.session
            self._out.write(json.dumps(message).encode() + b"\0")
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty as exc:
            raise CDPError(f"{method}: no reply in {timeout} s") from exc
        finally:
            self._replies.pop(ident, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except CDPError:  # the page is being replaced (a reload): ask again
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise CDPError(f"timed out waiting for {expression}")

    def _loads(self) -> int:
        return sum(1 for e in self.events if e.get("method") == "Page.loadEventFired")

    def goto(self, url: str, *, ready: bool = True) -> None:
        """Navigate and wait for the load event (and the dashboard's script, if ``ready``)."""
        before = self._loads()
        self.send("Page.navigate", {"url": url}, session=True)
        self._wait_load(before)
        if ready:
            self.wait_for("document.documentElement.getAttribute('data-dashboard-ready') === '1'")

    def click_and_load(self, selector: str) -> None:
        """Click ``selector`` (a link) and wait for the next page's script."""
        before = self._loads()
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self._wait_load(before)
        self.wait_for("document.documentElement.getAttribute('data-dashboard-ready') === '1'")

    def _wait_load(self, before: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self._loads() <= before:
            if time.monotonic() > deadline:
                raise CDPError("page did not load")
            time.sleep(0.05)

    def screenshot(self, path: Path, quality: int | None = None) -> Path:
        """A PNG of the viewport, or a JPEG at ``quality`` (0..100)."""
        params: dict[str, Any] = {"format": "png"}
        if quality is not None:
            params = {"format": "jpeg", "quality": quality}
        data = self.send("Page.captureScreenshot", params, session=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(CDPError, OSError, ValueError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self._out, self._in):
            with contextlib.suppress(OSError):
                stream.close()
