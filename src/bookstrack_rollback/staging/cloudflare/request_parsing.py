"""Reading Cloudflare API requests: capped bodies, JSON whatever the Content-Type, paging, flags.

Every failure here is a :class:`CloudflareError` from :mod:`.errors`, raised before any state changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Callable, Sequence, TypeVar

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from . import errors
from .envelope import CloudflareError

MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000

T = TypeVar("T")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.body_too_large(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.body_too_large(limit, None)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, what: str) -> Any:
    """JSON from ``raw`` whatever the Content-Type said (wrangler posts tails as text/plain)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise errors.invalid_request(f"the {what} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise errors.invalid_request(f"the {what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc


async def json_object(request: Request, what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` when ``empty_ok`` (the SDK's tail.create)."""
    raw = await read_body(request)
    if not raw.strip():
        if empty_ok:
            return {}
        raise errors.invalid_request(f"the {what} is empty; expected a JSON object")
    data = parse_json(raw, what)
    if not isinstance(data, dict):
        raise errors.invalid_request(f"the {what} must be a JSON object, got {type(data).__name__}")
    return data


async def parse_multipart(
    content_type: str, body: bytes, error: Callable[[str], CloudflareError] = errors.invalid_request
) -> dict[str, bytes]:
    """The parts of a multipart/form-data ``body`` already read (and capped): name -> bytes."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type.lower():
        raise error(f"expected a multipart/form-data body with a boundary, got Content-Type {content_type or 'none'!r}")

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    headers = Headers(raw=[(b"content-type", content_type.encode("latin-1"))])
    parser = MultiPartParser(headers, stream(), max_part_size=len(body) + 1)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise error(f"the multipart body cannot be parsed: {exc.message}") from exc
    except ValueError as exc:  # python-multipart's own parse errors
        raise error(f"the multipart body cannot be parsed: {exc}") from exc
    parts: dict[str, bytes] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            parts[name] = await value.read()
            await value.close()
        else:
            parts[name] = value.encode("utf-8")
    return parts


def _positive_int(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise errors.invalid_request(f"query parameter {name} must be an integer from 1 to {maximum}, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Page:
    """``?page=&per_page=`` as the v4 API pages lists (the SDK asks for page 2, 3, ... until one is empty)."""

    page: int
    per_page: int

    @classmethod
    def of(cls, request: Request, default_per_page: int = DEFAULT_PER_PAGE) -> "Page":
        return cls(
            page=_positive_int(request, "page", 1, 1_000_000),
            per_page=_positive_int(request, "per_page", default_per_page, MAX_PER_PAGE),
        )

    def slice(self, items: Sequence[T]) -> tuple[list[T], dict[str, int]]:
        """The items of this page (empty past the end) and the ``result_info`` describing it."""
        start = (self.page - 1) * self.per_page
        chosen = list(items[start : start + self.per_page])
        total = len(items)
        info = {
            "page": self.page,
            "per_page": self.per_page,
            "count": len(chosen),
            "total_count": total,
            "total_pages": max(1, -(-total // self.per_page)),
        }
        return chosen, info


def shown(value: Any) -> str:
    """What a refusal says it was sent, never echoing a secret: objects and lists as written but with
    every ``text`` (a binding's, maybe a secret's) hidden, and a bare value by its type only (a secret
    sent where a binding object belongs)."""

    def hide(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: "<hidden>" if k == "text" else hide(v) for k, v in item.items()}
        if isinstance(item, list):
            return [hide(v) if isinstance(v, (dict, list)) else f"<{type(v).__name__}>" for v in item]
        return item

    if isinstance(value, (dict, list)):
        return repr(hide(value))
    return f"a {type(value).__name__}"


def flag(request: Request, name: str) -> bool:
    """A boolean query flag: ``?force=true`` (case-insensitive); anything else is false."""
    return request.query_params.get(name, "").strip().lower() == "true"


def client_source(request: Request) -> str:
    """Where a change came from, as the API records it: ``wrangler`` for wrangler, ``api`` otherwise."""
    agent = request.headers.get("user-agent", "").lower()
    return "wrangler" if agent.startswith("wrangler") else "api"
