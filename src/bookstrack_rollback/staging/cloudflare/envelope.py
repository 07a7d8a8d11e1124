"""The Cloudflare API envelope, its errors, authentication and rate limit (contract/cloudflare-api.md,
"Envelope and errors").

Every emulated Cloudflare route raises :class:`CloudflareError` for a failure; one exception handler
turns it into ``{"success": false, "errors": [...], ...}`` with a non-2xx status, which is what both
real clients need (wrangler reads only ``success``, the SDK only the HTTP status: notes/real-clients.md).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..base import Clock

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.]{8,200}$")


class CloudflareError(Exception):
    """An error answer of the Cloudflare API: HTTP status, Cloudflare code and message."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} [{code}] {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def ok(result: Any, *, result_info: dict[str, Any] | None = None, status: int = 200,
       messages: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": list(messages or []), "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)


def error_response(exc: CloudflareError) -> JSONResponse:
    body = {
        "success": False,
        "errors": [{"code": exc.code, "message": exc.message}],
        "messages": [],
        "result": None,
    }
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def handle_cloudflare_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CloudflareError)
    return error_response(exc)


def authenticate(request: Request, token: str) -> None:
    """Refuse the request as Cloudflare does unless it carries ``token`` (the staging's).

    missing / unknown token: 403 code 10000; malformed token or header: 400 code 9106.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise CloudflareError(403, 10000, "Authentication error")
    scheme, _, sent = header.partition(" ")
    if scheme.lower() != "bearer" or not _TOKEN_SHAPE.match(sent.strip()):
        raise CloudflareError(400, 9106, "Authentication failed")
    if sent.strip() != token:
        raise CloudflareError(403, 10000, "Authentication error")


def check_account(account_id: str, own_account_id: str) -> None:
    """A token is valid for the staging's one account (``own_account_id``) only."""
    if account_id != own_account_id:
        raise CloudflareError(403, 10000, "Authentication error")


class ApiRateLimiter:
    """1200 requests per 5 minutes per user; past it, every call is refused until the window ends
    (contract/cloudflare-api.md): ``limit`` calls per ``window_s`` seconds. Counts are per token, on
    the staging's clock."""

    def __init__(self, clock: Clock, limit: int, window_s: float) -> None:
        self._clock = clock
        self._limit = limit
        self._window_s = window_s
        self._calls: dict[str, list[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def check(self, token: str) -> None:
        now = self._clock.monotonic()
        blocked_until = self._blocked_until.get(token)
        if blocked_until is not None and now < blocked_until:
            raise self._refusal(blocked_until - now)
        calls = [t for t in self._calls.get(token, []) if now - t < self._window_s]
        if len(calls) >= self._limit:
            self._blocked_until[token] = now + self._window_s
            self._calls[token] = []
            raise self._refusal(self._window_s)
        calls.append(now)
        self._calls[token] = calls

    @staticmethod
    def _refusal(retry_after: float) -> CloudflareError:
        seconds = max(1, int(retry_after + 0.999))
        return CloudflareError(
            429,
            971,
            "Please wait and consider throttling your request speed",
            headers={"Retry-After": str(seconds)},
        )
