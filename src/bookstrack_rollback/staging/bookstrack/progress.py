"""The progress WebSocket ``/ws/progress?jobId=&token=`` (contract/bookstrack-api.md, "WebSocket
/ws/progress").

Handshake checks, in the contract's order: no ``jobId`` -> 400 JSON ``MISSING_PARAM``; not an
upgrade -> 426 (answered by the HTTP route on the same path, ``routes.py``); bad token -> 401
"Unauthorized"; expired -> 401 "Token expired"; else 101. A crashed worker answers its 1101 page
and a ``ws_failure_rate`` fault answers 500, both before the token is looked at (the Durable Object
that checks tokens is what fails). Refusals use the WebSocket Denial Response extension.

After the upgrade the client may send only ``{"type": "ready"}``, answered with ``ready_ack``;
anything else (bad JSON, another type, ``ping``, a binary frame) closes the socket with 1002.
The server sends no heartbeats.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from . import responses
from .jobs import Outgoing, ProgressConnection
from .models import HANDSHAKE_LATENCY, LOCAL_LATENCY
from .telemetry import client_ip

if TYPE_CHECKING:
    from ..state import Staging
    from .models import BooksTrack
    from .telemetry import Exchange

PROTOCOL_ERROR = 1002
GONE = Outgoing()


def _begin(books: "BooksTrack", websocket: WebSocket, endpoint: str) -> "Exchange":
    return books.begin(
        path=websocket.url.path, endpoint=endpoint, method="GET", url=str(websocket.url),
        headers=dict(websocket.headers), client_ip=client_ip(websocket),
    )


async def _deny(books: "BooksTrack", websocket: WebSocket, exchange: "Exchange", response: Response) -> None:
    await websocket.send_denial_response(response)
    books.telemetry.finish(exchange, response.status_code)


async def serve(books: "BooksTrack", websocket: WebSocket) -> None:
    """One handshake, then the session of an accepted socket."""
    exchange = _begin(books, websocket, "ws")
    job_id = websocket.query_params.get("jobId")
    if books.crash(exchange):
        host = websocket.url.hostname or "localhost"
        await _deny(books, websocket, exchange, responses.worker_exception(host, books.ray_id(), books.timestamp()))
        return
    books.simulate(exchange, HANDSHAKE_LATENCY)
    if not job_id:
        exchange.error_code = "MISSING_PARAM"
        await _deny(books, websocket, exchange, responses.missing_param("jobId"))
        return
    if books.handshake_fails(exchange):
        await _deny(books, websocket, exchange,
                    responses.error(500, "INTERNAL_ERROR", "Internal server error", books.timestamp()))
        return
    refusal = books.jobs.check_token(job_id, websocket.query_params.get("token"))
    if refusal is not None:
        exchange.error_code = "UNAUTHORIZED" if refusal == "Unauthorized" else "TOKEN_EXPIRED"
        await _deny(books, websocket, exchange, responses.plain(401, refusal))
        return
    await websocket.accept()
    books.telemetry.finish(exchange, 101)
    await _session(books, websocket, job_id)


async def _session(books: "BooksTrack", websocket: WebSocket, job_id: str) -> None:
    connection = ProgressConnection()
    job = books.jobs.jobs[job_id]
    job.connection = connection
    receiver = asyncio.get_running_loop().create_task(_receive(books, websocket, job_id, connection))
    try:
        while True:
            item = await connection.outbox.get()
            if item is GONE:
                break
            if item.message is not None:
                await websocket.send_json(item.message)
            if item.close is not None:
                code, reason = item.close
                await websocket.close(code, reason)
                break
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away while we were sending
    finally:
        receiver.cancel()
        current = books.jobs.jobs.get(job_id)
        if current is not None and current.connection is connection:
            current.connection = None
        if websocket.client_state == WebSocketState.CONNECTED and websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close(1000)


async def _receive(books: "BooksTrack", websocket: WebSocket, job_id: str, connection: ProgressConnection) -> None:
    """Read client messages: ``ready`` is acknowledged, anything else ends the socket with 1002."""
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            connection.outbox.put_nowait(GONE)
            return
        if message["type"] == "websocket.disconnect":
            connection.outbox.put_nowait(GONE)
            return
        if not _is_ready(message.get("text")):
            connection.outbox.put_nowait(Outgoing(close=(PROTOCOL_ERROR, "Invalid message: only {\"type\": \"ready\"} is accepted")))
            return
        job = books.jobs.jobs[job_id]
        job.ready.set()
        connection.outbox.put_nowait(Outgoing(books.jobs.message(job, "ready_ack", {})))


def _is_ready(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "ready"


def not_found_socket(staging: "Staging") -> Any:
    """A WebSocket to an unknown path is refused with the API's 404."""

    async def refuse(websocket: WebSocket) -> None:
        books = staging.books
        exchange = _begin(books, websocket, "unknown")
        if books.crash(exchange):
            host = websocket.url.hostname or "localhost"
            await _deny(books, websocket, exchange, responses.worker_exception(host, books.ray_id(), books.timestamp()))
            return
        books.simulate(exchange, LOCAL_LATENCY)
        exchange.error_code = "NOT_FOUND"
        await _deny(books, websocket, exchange, responses.not_found(websocket.url.path))

    return refuse
