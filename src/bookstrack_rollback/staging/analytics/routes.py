"""``POST /client/v4/accounts/{account_id}/analytics_engine/sql`` (contract/cloudflare-api.md,
"Workers Analytics Engine SQL").

The body is the SQL text itself, whatever the Content-Type (the ``cloudflare`` SDK sends raw SQL as
``application/json``). Authentication is the middleware's; the account is checked here. The answer is
not enveloped: see ``formats.py``.

Refusals follow the real SQL API: HTTP 422 with a ``text/plain`` body ``Input was invalid: <why>`` (as
reported from the real Analytics Engine in cloudflare/skills#87, "Analytics API error (422): Input was
invalid: unsupported expression type: ..."; Cloudflare's SQL API error page lists 422 for "the request
or SQL statement is invalid or unsupported", with text/plain bodies). Authentication failures keep the
standard Cloudflare envelope, as the API gateway answers them. A query cut short by a staging reset
gets 503. No refusal changes any state.

The query runs in a worker thread, so a heavy query does not stall the event loop.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..cloudflare.envelope import check_account
from ..state import Staging
from .formats import render
from .store import AnalyticsUnavailable
from .syntax import AnalyticsSqlError

PATH = "/client/v4/accounts/{account_id}/analytics_engine/sql"


def invalid(reason: str) -> PlainTextResponse:
    return PlainTextResponse(f"Input was invalid: {reason}", status_code=422)


def routes(staging: Staging) -> list[BaseRoute]:
    async def sql(request: Request) -> Response:
        check_account(request.path_params["account_id"], staging.config.account_id)
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return invalid("the request body is not UTF-8 text; send the SQL query itself as the body")
        store = staging.analytics  # looked up per request: reset() replaces it
        try:
            result = await asyncio.to_thread(store.query, text)
        except AnalyticsSqlError as exc:
            return invalid(str(exc))
        except AnalyticsUnavailable as exc:
            return PlainTextResponse(str(exc), status_code=503)
        body, media_type = render(result)
        return Response(body, media_type=media_type)

    return [Route(PATH, sql, methods=["POST"])]
