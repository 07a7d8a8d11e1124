"""The fake book provider behind the reference Worker's ``PROVIDER`` service binding
(drills/reference-worker/src/search.mjs): the upstream that the Worker's searches ask, answered from
the staging's catalogue as the emulation's searches answer (staging/bookstrack/models.py).

Routes, under the admin prefix (never the BooksTrack API's; no faults, no telemetry)::

    GET /__staging/provider/search/title?q=TEXT
    GET /__staging/provider/search/isbn?isbn=ISBN            (normalised by the Worker; normalised again here)
    GET /__staging/provider/search/advanced?title=&author=   (at least one)

Each answers 200 ``{"data": {"works", "editions", "authors"}, "provider": "google-books" |
"openlibrary" | "isbndb" | "none", "latencyMs": n}``: the provider of the first book found
("none" when nothing is), and the upstream time a real provider would have taken, drawn from the
emulation's ``UPSTREAM_LATENCY`` with the staging's seeded random source. Like the emulation, the
fake provider reports that time rather than spending it; the Worker counts it in
``processingTime`` and in its ``api_miss`` cache event. A query the Worker would have refused
answers 400 ``{"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bookstrack.catalogue import Book, is_valid_isbn, normalise_isbn
from .bookstrack.faults import draw_latency_ms
from .bookstrack.models import UPSTREAM_LATENCY, answer_data
from .state import Staging

PREFIX = "/__staging/provider"


def provider_answer(staging: Staging, books: list[Book]) -> dict[str, object]:
    """The provider's body for ``books``, with one upstream latency drawn from the staging's random source."""
    return {
        "data": answer_data(books),
        "provider": books[0].provider if books else "none",
        "latencyMs": round(draw_latency_ms(UPSTREAM_LATENCY, staging.rng), 3),
    }


def _refused(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def routes(staging: Staging) -> list[Route]:
    """The provider's routes over ``staging`` (its catalogue and random source, looked up per request:
    a reset builds new ones)."""

    def answering(find: Callable[[Request], list[Book] | str]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            found = find(request)
            if isinstance(found, str):
                return _refused(found)
            return JSONResponse(provider_answer(staging, found))

        return endpoint

    def title(request: Request) -> list[Book] | str:
        query = request.query_params.get("q", "")
        if not query.strip():
            return "q is required"
        return staging.books.catalogue.find_title(query)

    def isbn(request: Request) -> list[Book] | str:
        normalised = normalise_isbn(request.query_params.get("isbn", ""))
        if not is_valid_isbn(normalised):
            return "isbn must be 13 digits, or 9 digits then a digit or X"
        return staging.books.catalogue.find_isbn(normalised)

    def advanced(request: Request) -> list[Book] | str:
        wanted_title = request.query_params.get("title", "").strip()
        wanted_author = request.query_params.get("author", "").strip()
        if not wanted_title and not wanted_author:
            return "title or author is required"
        return staging.books.catalogue.find(title=wanted_title or None, author=wanted_author or None)

    return [
        Route(f"{PREFIX}/search/title", answering(title), methods=["GET"]),
        Route(f"{PREFIX}/search/isbn", answering(isbn), methods=["GET"]),
        Route(f"{PREFIX}/search/advanced", answering(advanced), methods=["GET"]),
    ]
