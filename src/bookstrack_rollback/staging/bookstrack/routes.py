"""HTTP routes of the BooksTrack API (contract/bookstrack-api.md): parse the request, ask the model
(``models.py``), shape the wire answer (``responses.py``).

Every request goes through :func:`_served`: the serving version and its faults are resolved, a
crashed worker answers Cloudflare's 1101 page, injected latency is slept, the handler answers, and
the request's telemetry and tail event are written. The last route is the catch-all 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..state import Staging
from ..users import is_users_request
from . import progress, responses
from .catalogue import is_valid_isbn, normalise_isbn, normalise_query
from .jobs import BatchBook
from .models import BATCH_LATENCY, LOCAL_LATENCY, BooksTrack
from .telemetry import Exchange, client_ip

MAX_BODY_BYTES = 512 * 1024  # 100 books at the field limits fit in ~100 KiB
MAX_JOB_ID = 128
ADMIN_PREFIX = "/__staging"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
Handler = Callable[[Request, Exchange], Awaitable[Response]]


def begin(books: BooksTrack, conn: HTTPConnection, endpoint: str, method: str) -> Exchange:
    return books.begin(
        path=conn.url.path, endpoint=endpoint, method=method, url=str(conn.url),
        headers=dict(conn.headers), client_ip=client_ip(conn), users=is_users_request(conn.scope),
    )


def crashed_answer(books: BooksTrack, conn: HTTPConnection) -> Response:
    return responses.worker_exception(conn.url.hostname or "localhost", books.ray_id(), books.timestamp())


async def _served(books: BooksTrack, request: Request, endpoint: str, handler: Handler) -> Response:
    exchange = begin(books, request, endpoint, request.method)
    if books.crash(exchange):
        response = crashed_answer(books, request)
    else:
        await books.inject_latency(exchange)
        try:
            response = await handler(request, exchange)
        except Exception as exc:  # a handler failure, as the contract's table names it
            exchange.error_code = "INTERNAL_ERROR"
            exchange.exception(f"{type(exc).__name__}: {exc}", books.now_ms())
            response = responses.error(500, "INTERNAL_ERROR", "Internal server error", books.timestamp())
    books.telemetry.finish(exchange, response.status_code)
    return response


def _error(books: BooksTrack, exchange: Exchange, status: int, code: str, message: str,
           details: dict[str, Any] | None = None) -> Response:
    exchange.error_code = code
    books.simulate(exchange, LOCAL_LATENCY)
    return responses.error(status, code, message, books.timestamp(), details)


def routes(staging: Staging) -> list[BaseRoute]:
    def books() -> BooksTrack:
        return staging.books  # looked up per request: a reset builds a new one

    # --- GET /health ------------------------------------------------------------------------
    async def health(request: Request, exchange: Exchange) -> Response:
        books().simulate(exchange, LOCAL_LATENCY)
        return JSONResponse(books().health(exchange.faults))

    # --- searches ---------------------------------------------------------------------------
    async def search(exchange: Exchange, key: str, finder: Callable[[], Any]) -> Response:
        model = books()
        answer = await model.search(exchange, key, finder)
        return responses.success(answer.data, answer.metadata(model.timestamp(), exchange.processing_ms()))

    async def search_title(request: Request, exchange: Exchange) -> Response:
        model = books()
        if (injected := model.injected_error(exchange)) is not None:
            return _error(model, exchange, injected.status, injected.code, injected.message)
        query = request.query_params.get("q", "")
        if not query.strip():
            return _error(model, exchange, 400, "INVALID_QUERY", "Search query is required", {"parameter": "q"})
        return await search(exchange, f"search:title:{normalise_query(query)}", lambda: model.catalogue.find_title(query))

    async def search_isbn(request: Request, exchange: Exchange) -> Response:
        model = books()
        if (injected := model.injected_error(exchange)) is not None:
            return _error(model, exchange, injected.status, injected.code, injected.message)
        raw = request.query_params.get("isbn", "")
        if not raw.strip():
            return _error(model, exchange, 400, "INVALID_ISBN", "ISBN is required", {"parameter": "isbn"})
        isbn = normalise_isbn(raw)
        if not is_valid_isbn(isbn):
            return _error(model, exchange, 400, "INVALID_ISBN",
                          "Invalid ISBN format. Must be valid ISBN-10 or ISBN-13", {"isbn": raw, "normalized": isbn})
        return await search(exchange, f"search:isbn:{isbn}", lambda: model.catalogue.find_isbn(isbn))

    async def search_advanced(request: Request, exchange: Exchange) -> Response:
        model = books()
        if (injected := model.injected_error(exchange)) is not None:
            return _error(model, exchange, injected.status, injected.code, injected.message)
        title = request.query_params.get("title", "").strip()
        author = request.query_params.get("author", "").strip()
        if not title and not author:
            return _error(model, exchange, 400, "INVALID_QUERY",
                          "At least one of title or author is required", {"parameters": ["title", "author"]})
        key = f"search:advanced:title={normalise_query(title)}&author={normalise_query(author)}"
        return await search(exchange, key, lambda: model.catalogue.find(title=title or None, author=author or None))

    # --- POST /v1/enrichment/batch ----------------------------------------------------------
    async def batch(request: Request, exchange: Exchange) -> Response:
        model = books()
        decision = model.limiter.check(exchange.client_ip, staging.clock.now())
        if not decision.allowed:
            exchange.error_code = "RATE_LIMIT_EXCEEDED"
            return responses.rate_limited(decision.retry_after, model.limiter.limit,
                                          int(decision.reset_at * 1000), exchange.client_ip)
        if (injected := model.injected_error(exchange)) is not None:
            return _error(model, exchange, injected.status, injected.code, injected.message)
        body = await _capped_body(request)
        if body is None:
            return _error(model, exchange, 413, "E_PAYLOAD_TOO_LARGE",
                          f"Request body exceeds the limit of {MAX_BODY_BYTES} bytes", {"limitBytes": MAX_BODY_BYTES})
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(model, exchange, 400, "E_INVALID_REQUEST", f"Request body is not valid JSON: {exc}")
        try:
            job_id, batch_books = parse_batch(payload)
        except InvalidBatch as exc:
            return _error(model, exchange, 400, exc.code, exc.message)
        job = model.jobs.start(job_id, batch_books, exchange.faults)
        model.simulate(exchange, BATCH_LATENCY)
        data = {"success": True, "processedCount": 0, "totalCount": len(batch_books), "token": job.token}
        return responses.success(data, {"timestamp": model.timestamp()}, status=202)

    # --- /ws/progress without an upgrade, and everything else -------------------------------
    async def progress_http(request: Request, exchange: Exchange) -> Response:
        books().simulate(exchange, LOCAL_LATENCY)
        if not request.query_params.get("jobId"):
            exchange.error_code = "MISSING_PARAM"
            return responses.missing_param("jobId")
        exchange.error_code = "UPGRADE_REQUIRED"
        return responses.plain(426, "Expected Upgrade: websocket")

    async def not_found(request: Request, exchange: Exchange) -> Response:
        books().simulate(exchange, LOCAL_LATENCY)
        exchange.error_code = "NOT_FOUND"
        return responses.not_found(request.url.path)

    def served(endpoint: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint_app(request: Request) -> Response:
            if request.url.path.startswith(ADMIN_PREFIX):  # not the worker's: no faults, no telemetry
                return responses.not_found(request.url.path)
            return await _served(books(), request, endpoint, handler)

        return endpoint_app

    async def progress_socket(websocket: WebSocket) -> None:
        await progress.serve(books(), websocket)

    return [
        Route("/health", served("health", health), methods=["GET"]),
        Route("/v1/search/title", served("title", search_title), methods=["GET"]),
        Route("/v1/search/isbn", served("isbn", search_isbn), methods=["GET"]),
        Route("/v1/search/advanced", served("advanced", search_advanced), methods=["GET"]),
        Route("/v1/enrichment/batch", served("batch", batch), methods=["POST"]),
        WebSocketRoute("/ws/progress", progress_socket),
        Route("/ws/progress", served("ws", progress_http), methods=ALL_METHODS),
        WebSocketRoute("/{path:path}", progress.not_found_socket(staging)),
        Route("/{path:path}", served("unknown", not_found), methods=ALL_METHODS),
    ]


async def _capped_body(request: Request) -> bytes | None:
    """The body, or None as soon as it grows past ``MAX_BODY_BYTES`` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class InvalidBatch(ValueError):
    """A batch body production refuses with 400: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def parse_batch(payload: Any) -> tuple[str, tuple[BatchBook, ...]]:
    """``(jobId, books)`` of a valid body; raises :class:`InvalidBatch` as production validates."""
    if not isinstance(payload, dict):
        raise InvalidBatch("E_INVALID_REQUEST", "Request body must be a JSON object")
    books = payload.get("books")
    if not isinstance(books, list):
        raise InvalidBatch("E_INVALID_REQUEST", "Invalid books array")
    job_id = payload.get("jobId")
    if not isinstance(job_id, str) or not job_id.strip():
        raise InvalidBatch("E_INVALID_REQUEST", "Missing jobId")
    if len(job_id) > MAX_JOB_ID:
        raise InvalidBatch("E_INVALID_REQUEST", f"jobId exceeds maximum length of {MAX_JOB_ID} characters")
    if not books:
        raise InvalidBatch("E_EMPTY_BATCH", "Empty books array")
    if len(books) > 100:
        raise InvalidBatch("E_BATCH_TOO_LARGE", "Batch size exceeds maximum of 100 books")
    parsed: list[BatchBook] = []
    for i, book in enumerate(books):
        if not isinstance(book, dict) or not isinstance(book.get("title"), str) or not book["title"].strip():
            raise InvalidBatch("E_INVALID_BOOK", f"Invalid title for book at index {i}")
        if len(book["title"]) > 500:
            raise InvalidBatch("E_TITLE_TOO_LONG", f"Title exceeds maximum length of 500 characters at index {i}")
        author, isbn = book.get("author"), book.get("isbn")
        if author is not None and not isinstance(author, str):
            raise InvalidBatch("E_INVALID_BOOK", f"Invalid author for book at index {i}")
        if author and len(author) > 300:
            raise InvalidBatch("E_AUTHOR_TOO_LONG", f"Author exceeds maximum length of 300 characters at index {i}")
        if isbn is not None and not isinstance(isbn, str):
            raise InvalidBatch("E_INVALID_BOOK", f"Invalid ISBN for book at index {i}")
        if isbn and len(isbn) > 17:
            raise InvalidBatch("E_ISBN_TOO_LONG", f"ISBN exceeds maximum length of 17 characters at index {i}")
        parsed.append(BatchBook(book["title"].strip(), author or None, isbn or None))
    return job_id, tuple(parsed)
