"""HTTP and WebSocket answers for tails (contract/cloudflare-api.md, "Tail"; the client behaviour in
notes/real-clients.md, "tail").

``POST .../tails`` hands out ``ws://<host>:<port>/tail/<id>?secret=<secret>``. The socket is not
authenticated by the middleware (wrangler sends no Authorization header), so the secret in the URL is
checked here. The socket must offer the subprotocol ``trace-v1``, which is echoed; the client's frames
(the first is ``{"debug": false}``) are read and ignored; every matching event is sent as JSON text;
when the tail ends (DELETE, expiry, reset) the socket is closed with 1000.
"""

from __future__ import annotations

import asyncio
import hmac
from contextlib import suppress

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..state import Staging
from . import errors
from .envelope import check_account, ok
from .request_parsing import json_object
from .tail import CLOSED, Subscriber, Tail, TailHub
from .tail_filters import parse_filters

SUBPROTOCOL = "trace-v1"
TAIL_PATH = "/tail/{tail_id}"
EXPIRY_POLL_S = 1.0  # how often an idle socket checks whether its tail expired


class TailApi:
    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _hub(self, request: Request) -> TailHub:
        check_account(request.path_params["account_id"], self._staging.config.account_id)
        script = request.path_params["script"]
        if script != self._staging.config.worker_name:
            raise errors.script_not_found(script)
        return self._staging.tails

    def _describe(self, request: Request, tail: Tail, *, with_url: bool) -> dict[str, str]:
        body = {"id": tail.id, "expires_at": self._staging.clock.iso(tail.expires_at)}
        if with_url:
            scheme = "wss" if request.url.scheme == "https" else "ws"
            body["url"] = f"{scheme}://{request.url.netloc}{TAIL_PATH.format(tail_id=tail.id)}?secret={tail.secret}"
        return body

    async def create_tail(self, request: Request) -> Response:
        """POST .../tails, body ``{"filters": [...]}`` parsed whatever the Content-Type (wrangler:
        text/plain; the SDK: an empty body) -> ``{id, url, expires_at}`` (contract, "Tail")."""
        hub = self._hub(request)
        body = await json_object(request, "tail body", empty_ok=True)
        client = request.client.host if request.client else ""
        tail = hub.create(parse_filters(body.get("filters"), requester_ip=client))
        return ok(self._describe(request, tail, with_url=True))

    async def list_tails(self, request: Request) -> Response:
        """GET .../tails: the open tails (ids and expiry; the secret URLs are not repeated)."""
        hub = self._hub(request)
        return ok([self._describe(request, t, with_url=False) for t in hub.open_tails()])

    async def delete_tail(self, request: Request) -> Response:
        """DELETE .../tails/{tail_id}: ends the tail and closes its sockets (contract, "Tail")."""
        hub = self._hub(request)
        tail_id = request.path_params["tail_id"]
        if not hub.delete(tail_id):
            raise errors.tail_not_found(tail_id, self._staging.config.worker_name)
        return ok(None)

    async def socket(self, websocket: WebSocket) -> None:
        """The tail WebSocket at ``/tail/{tail_id}?secret=...`` (contract, "Tail")."""
        hub = self._staging.tails
        tail_id = websocket.path_params["tail_id"]
        tail = hub.get(tail_id)
        if tail is None:
            await _deny(websocket, 404, f"there is no open tail {tail_id!r} (deleted, expired, or never created)")
            return
        if not hmac.compare_digest(websocket.query_params.get("secret", "").encode(), tail.secret.encode()):
            await _deny(websocket, 403, "the tail URL's secret is missing or wrong; use the url POST .../tails returned")
            return
        if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
            await _deny(websocket, 400, f"a tail socket must offer the WebSocket subprotocol {SUBPROTOCOL!r}")
            return
        subscriber = hub.subscribe(tail)  # before the 101, so no event published after it is missed
        try:
            await websocket.accept(subprotocol=SUBPROTOCOL)
            await _pump(websocket, subscriber, hub)
        finally:
            hub.unsubscribe(tail, subscriber)


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    await websocket.send_denial_response(JSONResponse({"error": message}, status_code=status))


async def _pump(websocket: WebSocket, subscriber: Subscriber, hub: TailHub) -> None:
    """Send events until the tail ends or the client goes; read (and ignore) what the client sends."""

    async def read_client() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def send_events() -> None:
        # One pending get() survives the polls (wait_for would cancel it and could lose an event).
        getter: asyncio.Future[str | None] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait({getter}, timeout=EXPIRY_POLL_S)
                if not done:
                    hub.prune()
                    continue
                item, getter = getter.result(), None
                if item is CLOSED:
                    await websocket.close(1000, "tail ended")
                    return
                await websocket.send_text(item)
        finally:
            if getter is not None:
                getter.cancel()

    reader = asyncio.ensure_future(read_client())
    sender = asyncio.ensure_future(send_events())
    try:
        await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, sender):
            task.cancel()
        for task in (reader, sender):
            with suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
                await task
