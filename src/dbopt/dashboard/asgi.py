"""The dashboard as an ASGI application, to mount in FastAPI or Starlette.

``app.mount("/_dbopt", dashboard.asgi())``: the mount sets ``root_path``,
which becomes the pages' links. Pages are rendered in a worker thread
(``asyncio.to_thread``), so a page that reads the database never blocks the
application's event loop. Needs no framework.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from dbopt.dashboard.http import MAX_BODY, DashboardRequest, DashboardResponse

if TYPE_CHECKING:
    from dbopt.dashboard.app import Dashboard

__all__ = ["asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            break
        chunk = message.get("body", b"")
        if size < MAX_BODY:
            chunks.append(chunk[: MAX_BODY - size])
            size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def asgi_app(dashboard: Dashboard) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI (3.0) callable serving ``dashboard`` under the mount's ``root_path``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message.get("type")
                if kind == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif kind == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        root = str(scope.get("root_path", "")).rstrip("/")
        path = str(scope.get("path", "/"))
        if root and path.startswith(root):  # Starlette >= 0.33 keeps the mount in path
            path = path[len(root) :] or "/"
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = (
                f"{headers[name]}; {value}" if name == "cookie" and name in headers else value
            )
        method = str(scope.get("method", "GET")).upper()
        body = await _body(receive) if method == "POST" else b""
        client = scope.get("client")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        request = DashboardRequest(
            method=method,
            path=path,
            base=root,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=headers,
            body=body,
            client=client[0] if client else None,
            native=scope,
        )
        response: DashboardResponse = await asyncio.to_thread(dashboard.handle, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.header_list()
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": response.body if method != "HEAD" else b""}
        )

    return app
