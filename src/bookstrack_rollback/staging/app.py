"""The embedded staging as one ASGI application.

Routes, in the order they are matched:
- ``/__staging/...``: admin (reset, seed, runtime faults, request log): never emulated;
- ``/client/v4/...``: the Cloudflare API subset (Analytics Engine SQL first, then the rest, whose
  last route answers 7003 "No route for the URI"); every request authenticated and rate limited;
- ``/tail/{id}``: the tail WebSocket URLs handed out by ``POST .../tails``;
- everything else: the BooksTrack API, whose last route answers its 404 shape; in workerd mode the
  running versions' own code answers it (workerd/proxy.py), and their bindings' internal routes under
  ``/__staging/runtime`` and the fake book provider (``/__staging/provider``) are neither logged nor
  authenticated.

The middleware here logs every request (tokens redacted) and adds the BooksTrack API's CORS header.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import admin, provider
from .analytics import routes as analytics_routes
from .base import RequestRecord
from .bookstrack import routes as bookstrack_routes
from .cloudflare import routes as cloudflare_routes
from .cloudflare.envelope import CloudflareError, authenticate, error_response, handle_cloudflare_error
from .state import Staging
from .workerd import proxy as workerd_proxy

CLOUDFLARE_PREFIX = "/client/v4"
ADMIN_PREFIX = admin.PREFIX
TAIL_PREFIX = "/tail/"
_SECRET_PARAMS = {"token", "secret", "access_token"}
_INTERNAL = (workerd_proxy.RUNTIME_PREFIX, provider.PREFIX)


def api_of(path: str) -> str:
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    if path.startswith(CLOUDFLARE_PREFIX):
        return "cloudflare"
    if path.startswith(TAIL_PREFIX):
        return "tail"
    return "bookstrack"


def redact_query(raw: str) -> str:
    if not raw:
        return ""
    pairs = parse_qsl(raw, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs])


class StagingMiddleware:
    """Request log, Cloudflare authentication and rate limit, BooksTrack CORS."""

    def __init__(self, app: ASGIApp, staging: Staging) -> None:
        self.app = app
        self.staging = staging

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        staging = self.staging
        path: str = scope["path"]
        if path.startswith(_INTERNAL):  # the Workers' own bindings calling back: not the users' requests
            await self.app(scope, receive, send)
            return
        api = api_of(path)
        emulated = staging.runtime is None  # in workerd mode the Worker itself answers CORS and OPTIONS
        started = staging.clock.monotonic()
        status = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status["code"] = message["status"]
                if api == "bookstrack" and emulated and kind == "http.response.start":
                    headers = list(message.get("headers", []))
                    if not any(k.lower() == b"access-control-allow-origin" for k, _ in headers):
                        headers.append((b"access-control-allow-origin", b"*"))
                    message = {**message, "headers": headers}
            elif kind == "websocket.accept":
                status["code"] = 101
            elif kind == "websocket.close" and status["code"] == 0:
                status["code"] = 403
            await send(message)

        try:
            if scope["type"] == "http" and api == "cloudflare":
                from starlette.requests import Request

                request = Request(scope)
                try:
                    authenticate(request, staging.config.token)
                    token = request.headers["authorization"].partition(" ")[2].strip()
                    staging.api_limiter.check(token)
                except CloudflareError as exc:
                    await error_response(exc)(scope, receive, send_wrapper)
                    return
            if scope["type"] == "http" and api == "bookstrack" and emulated and scope["method"] == "OPTIONS":
                await send_wrapper({"type": "http.response.start", "status": 204, "headers": [
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", b"Content-Type, Authorization"),
                    (b"access-control-max-age", b"86400"),
                ]})
                await send_wrapper({"type": "http.response.body", "body": b""})
                return
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client") or ("", 0)
            # as Cloudflare logs it: the connecting client's address (the staging's users send their own)
            forwarded = dict(scope.get("headers") or ()).get(b"cf-connecting-ip")
            staging.request_log.add(
                RequestRecord(
                    at=staging.clock.now(),
                    method=scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET",
                    path=path,
                    query=redact_query(scope.get("query_string", b"").decode("latin-1")),
                    status=status["code"],
                    api=api,
                    client=forwarded.decode("latin-1") if forwarded else str(client[0]),
                    duration_ms=(staging.clock.monotonic() - started) * 1000.0,
                )
            )


def create_app(staging: Staging | None = None) -> Starlette:
    """The staging's ASGI app over ``staging`` (a new one from defaults when not given)."""
    staging = staging or Staging()
    routes = [
        *admin.routes(staging),
        *provider.routes(staging),
        *analytics_routes.routes(staging),
        *cloudflare_routes.routes(staging),
        *(bookstrack_routes.routes(staging) if staging.runtime is None else workerd_proxy.routes(staging)),
    ]
    app = Starlette(routes=routes, exception_handlers={CloudflareError: handle_cloudflare_error})
    app.state.staging = staging
    app.add_middleware(StagingMiddleware, staging=staging)
    return app


_TOKENISH = re.compile(r"(token=)[^&\s]+", re.I)


def redact_text(text: str) -> str:
    """Remove token query values from a text (URLs in logs)."""
    return _TOKENISH.sub(r"\1[redacted]", text)
