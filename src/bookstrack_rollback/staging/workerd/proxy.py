"""The BooksTrack base URL in workerd mode: every request and WebSocket handshake goes to the running
version the runtime picks, and its answer comes back unchanged (status, headers, body bytes; a refused
handshake keeps its status and body). The Worker sees the staging's own URL (Miniflare's
``MF-Original-URL``).

Also the runtime's own routes, which only the Workers' bindings call (host.mjs): the KV binding reads
and writes the staging's KV through ``/__staging/runtime/kv/{namespace}/...``.

Timeouts: 5 s to connect to a workerd, 100 s for its answer (forward.py; then 524, as Cloudflare's edge
answers an origin that takes longer), 10 s for a WebSocket handshake. A Worker that throws gets
Cloudflare's 1101 page.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import secrets
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .forward import AnswerTimeout, UpstreamError

if TYPE_CHECKING:
    from ..state import Staging
    from .runtime import WorkerdRuntime

RUNTIME_PREFIX = "/__staging/runtime"
HANDSHAKE_TIMEOUT_S = 10.0
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}
_HANDSHAKE = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


# Miniflare's entry Worker answers a Worker's uncaught exception with its own stack: Cloudflare's edge
# answers its 1101 page instead (what a client of a crashed Worker sees)
_THROWN = b"/miniflare/dist/src/workers/core/entry.worker.js"
_HTML = b"text/html; charset=UTF-8"
_TEXT = b"text/plain; charset=UTF-8"
_HOP_BY_HOP_BYTES = {name.encode() for name in _HOP_BY_HOP}


def _crash_page(detail: str) -> bytes:
    ray = secrets.token_hex(8)
    return (f"<!DOCTYPE html><html><head><title>Worker threw exception | staging</title></head><body>"
            f"<h1>Error <span class=\"cf-error-code\">1101</span></h1><h2>Worker threw exception</h2>"
            f"<p>{html.escape(detail)}</p><p>Ray ID: {ray}</p></body></html>").encode()


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class WorkerdProxy:
    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    @property
    def _runtime(self) -> WorkerdRuntime:
        runtime = self._staging.runtime
        assert runtime is not None, "the workerd proxy serves only a staging started with --runtime workerd"
        return runtime

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A raw ASGI endpoint (this hop carries every request: no Request/Response objects)."""
        runtime = self._runtime
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        query: bytes = scope.get("query_string", b"")
        try:
            key, base = await runtime.target()
        except Exception as exc:  # the version cannot run: what Cloudflare's edge says for a broken Worker
            await _answer(send, 500, _crash_page(f"the serving version cannot run: {exc}"), _HTML)
            return
        path: str = scope.get("raw_path") or scope["path"].encode()
        target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP_BYTES]
        host = next((v for k, v in scope["headers"] if k == b"host"), b"staging").decode("latin-1")
        headers.append((b"mf-original-url", f"{scope.get('scheme', 'http')}://{host}{target}".encode("latin-1")))
        address, _, port = base[len("http://"):].rpartition(":")
        try:
            answer = await runtime.upstreams.request(address, int(port), scope["method"], target, headers, body)
        except AnswerTimeout:
            await _answer(send, 524, b"error code: 524 (the Worker did not answer within 100 s)\n", _TEXT)
            return
        except UpstreamError as exc:
            runtime.forget(key)
            await _answer(send, 502, f"error code: 502 (the version's workerd is unreachable: {exc})\n".encode(), _TEXT)
            return
        if answer.status == 500 and _THROWN in answer.body:  # Miniflare's entry caught the Worker's throw
            await _answer(send, 500, _crash_page("Worker threw exception"), _HTML)
            return
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [*answer.headers, (b"content-length", str(len(answer.body)).encode())]})
        await send({"type": "http.response.body", "body": answer.body})

    async def socket(self, websocket: WebSocket) -> None:
        runtime = self._runtime
        try:
            key, base = await runtime.target()
        except Exception as exc:
            await websocket.send_denial_response(Response(_crash_page(f"the serving version cannot run: {exc}"),
                                                          status_code=500, media_type="text/html"))
            return
        url = base.replace("http://", "ws://", 1) + websocket.url.path
        if websocket.url.query:
            url += "?" + websocket.url.query
        headers = [(k, v) for k, v in websocket.headers.items() if k.lower() not in _HOP_BY_HOP | _HANDSHAKE]
        headers.append(("MF-Original-URL", str(websocket.url).replace("ws://", "http://", 1)))
        protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        try:
            upstream = await connect(url, additional_headers=headers, subprotocols=protocols or None,
                                     open_timeout=HANDSHAKE_TIMEOUT_S, max_size=None, ping_interval=None,
                                     compression=None, user_agent_header=None)
        except InvalidStatus as exc:
            answer = exc.response
            body = bytes(answer.body or b"")
            if answer.status_code == 500 and _THROWN in body:  # the Worker threw: Cloudflare's 1101 page
                await websocket.send_denial_response(Response(_crash_page("Worker threw exception"), status_code=500,
                                                              media_type="text/html"))
                return
            kept = {k: v for k, v in answer.headers.raw_items() if k.lower() not in _HOP_BY_HOP}
            await websocket.send_denial_response(Response(body, status_code=answer.status_code, headers=kept))
            return
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            runtime.forget(key)
            await websocket.send_denial_response(_plain(f"error code: 502 (the version's workerd: {exc})", 502))
            return
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _pump(websocket, upstream)

    # --- the runtime's KV routes -------------------------------------------------------------------
    async def kv_value(self, request: Request) -> Response:
        kv = self._staging.kv
        namespace, name = request.path_params["namespace"], request.path_params["key"]
        if not kv.has_namespace(namespace):
            return _plain(f"KV namespace {namespace!r} does not exist", 404)
        if request.method == "GET":
            value = kv.get(namespace, name)
            return Response(value, media_type="application/octet-stream") if value is not None else Response(status_code=404)
        if request.method == "PUT":
            kv.put(namespace, name, await request.body())
        else:
            kv.delete(namespace, name)
        return Response(status_code=204)

    async def kv_keys(self, request: Request) -> Response:
        kv = self._staging.kv
        namespace = request.path_params["namespace"]
        if not kv.has_namespace(namespace):
            return _plain(f"KV namespace {namespace!r} does not exist", 404)
        limit = min(max(int(request.query_params.get("limit", "1000") or 1000), 1), 1000)
        names = kv.keys(namespace, request.query_params.get("prefix", ""))
        cursor = request.query_params.get("cursor", "")
        if cursor:
            names = [n for n in names if n > cursor]
        page = names[:limit]
        done = len(names) <= limit
        body = {"keys": [{"name": n} for n in page], "list_complete": done}
        if not done:
            body["cursor"] = page[-1]
        return JSONResponse(body)


async def _pump(client: WebSocket, upstream) -> None:
    """Copy messages both ways until either side closes; the other side gets the same close code."""

    async def from_client() -> None:
        try:
            while True:
                message = await client.receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close(message.get("code", 1000) or 1000, message.get("reason") or "")
                    return
                if message.get("text") is not None:
                    await upstream.send(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])
        except (WebSocketDisconnect, ConnectionClosed, RuntimeError):
            with contextlib.suppress(Exception):
                await upstream.close()

    async def from_upstream() -> None:
        try:
            async for message in upstream:
                if isinstance(message, str):
                    await client.send_text(message)
                else:
                    await client.send_bytes(message)
            code = upstream.close_code or 1000
            reason = upstream.close_reason or ""
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "")
        except (RuntimeError, WebSocketDisconnect):
            return
        with contextlib.suppress(Exception):
            await client.close(code if code not in (1005, 1006) else 1011, reason)

    tasks = [asyncio.create_task(from_client()), asyncio.create_task(from_upstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await upstream.close()


class _Raw:
    """An ASGI callable that Starlette's Route passes the scope to as is (not a function: no wrapping)."""

    def __init__(self, app) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def routes(staging: Staging) -> list[BaseRoute]:
    """The runtime's KV routes and the BooksTrack base URL's catch-alls (last: they match every path)."""
    proxy = WorkerdProxy(staging)
    return [
        Route(RUNTIME_PREFIX + "/kv/{namespace}/values/{key:path}", proxy.kv_value, methods=["GET", "PUT", "DELETE"]),
        Route(RUNTIME_PREFIX + "/kv/{namespace}/keys", proxy.kv_keys, methods=["GET"]),
        Route("/{path:path}", _Raw(proxy.http)),  # an ASGI app: every method reaches the Worker
        WebSocketRoute("/{path:path}", proxy.socket),
    ]
