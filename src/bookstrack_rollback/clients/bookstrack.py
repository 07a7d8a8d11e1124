"""Probes of the BooksTrack API (contract/bookstrack-api.md): one request, one typed sample.

A probe never raises for what the service does: a 500, a timeout, a refused connection or a body
that is not JSON are all outcomes recorded in the sample. Only misuse raises.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import BadAnswer, RateLimited, TargetError, mapped_errors

OK, DEGRADED, CLIENT_ERROR, SERVER_ERROR, TIMEOUT, UNREACHABLE, BAD_ANSWER = (
    "ok", "degraded", "client_error", "server_error", "timeout", "unreachable", "bad_answer")
PATHS = {"health": "/health", "title": "/v1/search/title", "isbn": "/v1/search/isbn",
         "advanced": "/v1/search/advanced"}


@dataclass(frozen=True)
class ProbeSample:
    """One request the suite made, as the suite saw it."""

    at: float  # epoch seconds when the request started
    endpoint: str  # "health" | "title" | "isbn" | "advanced"
    label: str  # e.g. "title:hamlet"
    # ok | degraded (a 200 /health whose status is not "ok") | client_error | server_error | timeout |
    # unreachable | bad_answer
    outcome: str
    status: int | None
    latency_ms: float
    cached: bool | None = None
    cache_source: str | None = None
    provider: str | None = None
    results: int | None = None
    detail: str = ""

    @property
    def is_error(self) -> bool:
        """The request failed, or its answer cannot be used. A degraded /health answered: the health
        check judges it, the error rates do not count it."""
        return self.outcome not in (OK, DEGRADED)

    @property
    def path(self) -> str:
        """The request's path, as the target's telemetry records it (``blob1``)."""
        return PATHS[self.endpoint]

    @property
    def is_server_error(self) -> bool:
        return self.outcome == SERVER_ERROR

    def as_row(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3), "endpoint": self.endpoint, "label": self.label, "outcome": self.outcome,
            "status": self.status, "latency_ms": round(self.latency_ms, 2), "cached": self.cached,
            "cache_source": self.cache_source, "provider": self.provider, "results": self.results,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class HealthAnswer:
    status: str | None
    version: str | None
    worker: str | None
    shape: str  # "enveloped" (the runbook's) | "flat" (production code's)


def parse_health(body: Any) -> HealthAnswer:
    """Both shapes of the contract's GET /health."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        data = body["data"]
        return HealthAnswer(data.get("status"), data.get("version"), data.get("worker"), "enveloped")
    if isinstance(body, dict) and "status" in body:
        return HealthAnswer(body.get("status"), body.get("version"), body.get("worker"), "flat")
    raise BadAnswer(f"/health answered JSON of neither known shape: {json.dumps(body)[:120]}")


def _classify(endpoint: str, label: str, started: float, latency_ms: float,
              response: httpx.Response) -> ProbeSample:
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        outcome = SERVER_ERROR if status >= 500 else BAD_ANSWER
        return ProbeSample(started, endpoint, label, outcome, status, latency_ms,
                           detail=f"HTTP {status}, body is not JSON")
    if status >= 500:
        code = ((body.get("error") or {}).get("code") if isinstance(body, dict) else None) or ""
        return ProbeSample(started, endpoint, label, SERVER_ERROR, status, latency_ms, detail=f"HTTP {status} {code}".strip())
    if status >= 400:
        code = ((body.get("error") or {}).get("code") if isinstance(body, dict) else None) or ""
        return ProbeSample(started, endpoint, label, CLIENT_ERROR, status, latency_ms, detail=f"HTTP {status} {code}".strip())
    if endpoint == "health":
        try:
            health = parse_health(body)
        except BadAnswer as exc:
            return ProbeSample(started, endpoint, label, BAD_ANSWER, status, latency_ms, detail=str(exc))
        outcome = OK if health.status == "ok" else DEGRADED
        return ProbeSample(started, endpoint, label, outcome, status, latency_ms,
                           detail=f"status {health.status!r}, version {health.version!r}")
    data = body.get("data") if isinstance(body, dict) else None
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not isinstance(metadata, dict):
        return ProbeSample(started, endpoint, label, BAD_ANSWER, status, latency_ms,
                           detail="a 200 without the data/metadata envelope")
    results = sum(len(data.get(k) or []) for k in ("works", "editions"))
    return ProbeSample(started, endpoint, label, OK, status, latency_ms,
                       cached=bool(metadata.get("cached")), cache_source=metadata.get("cacheSource"),
                       provider=metadata.get("provider"), results=results)


async def probe(client: httpx.AsyncClient, endpoint: str, path: str, params: dict[str, str] | None = None,
                *, label: str | None = None) -> ProbeSample:
    """GET one BooksTrack endpoint and classify the answer (the client carries the deadline)."""
    label = label or endpoint
    started = time.time()
    clock = time.perf_counter()
    try:
        response = await client.get(path, params=params)
    except httpx.TimeoutException:
        return ProbeSample(started, endpoint, label, TIMEOUT, None, (time.perf_counter() - clock) * 1000,
                           detail="no answer within the timeout")
    except httpx.HTTPError as exc:
        return ProbeSample(started, endpoint, label, UNREACHABLE, None, (time.perf_counter() - clock) * 1000,
                           detail=f"{type(exc).__name__}: {exc}".rstrip(": "))
    return _classify(endpoint, label, started, (time.perf_counter() - clock) * 1000, response)


class ProbeClients:
    """Single-connection HTTP clients leased one per probe.

    One httpx client with many connections spends most of its CPU searching its own pool when many
    requests are in flight (quadratic in connections x waiting requests); many one-connection clients
    cost about a fifth, so the checker does not starve the process it measures from.
    """

    def __init__(self, base_url: str, *, size: int, timeout: httpx.Timeout) -> None:
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._base_url, self._size, self._timeout = base_url, size, timeout
        self._tls = ssl.create_default_context()  # made once: each client would make its own, at a cost

    @property
    def busy(self) -> int:
        return len(self._all) - len(self._idle)

    def available(self) -> bool:
        return bool(self._idle) or len(self._all) < self._size

    def lease(self) -> httpx.AsyncClient:
        """An idle client (the caller checked ``available()``); give it back with ``release``."""
        if self._idle:
            return self._idle.pop()
        client = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout, trust_env=False, verify=self._tls,
                                   limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self._all.append(client)
        return client

    def release(self, client: httpx.AsyncClient) -> None:
        self._idle.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        self._idle.clear()


# --- the progress WebSocket ---------------------------------------------------------------------

@dataclass(frozen=True)
class TokenGrant:
    job_id: str
    token: str  # a credential: never print it

    def __repr__(self) -> str:
        return f"TokenGrant(job_id={self.job_id!r}, token='***')"


async def request_progress_token(client: httpx.AsyncClient, job_id: str, books: list[dict[str, str]]) -> TokenGrant:
    """POST /v1/enrichment/batch: the only way to a real socket token (10 per minute per IP)."""
    with mapped_errors("POST /v1/enrichment/batch"):
        response = await client.post("/v1/enrichment/batch", json={"jobId": job_id, "books": books})
    if response.status_code == 429:
        retry = response.headers.get("retry-after")
        raise RateLimited(f"POST /v1/enrichment/batch: rate limited, retry after {retry or '?'} s",
                          status=429, retry_after=float(retry) if retry and retry.isdigit() else None)
    try:
        body = response.json()
        token = body["data"]["token"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise BadAnswer(f"POST /v1/enrichment/batch: HTTP {response.status_code} without a token "
                        f"({response.text[:100]!r})") from None
    if response.status_code != 202 or not isinstance(token, str):
        raise BadAnswer(f"POST /v1/enrichment/batch answered HTTP {response.status_code}; the contract says 202")
    return TokenGrant(job_id, token)


def progress_url(base_url: str, job_id: str, token: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/ws/progress", urlencode({"jobId": job_id, "token": token}), ""))


@dataclass(frozen=True)
class ProgressRun:
    """What one progress-socket session showed."""

    handshake_status: int | None  # 101, or the refusal's status; None when there was no answer
    message_types: tuple[str, ...] = ()
    close_code: int | None = None
    close_reason: str = ""
    seconds: float = 0.0
    detail: str = ""

    @property
    def completed(self) -> bool:
        """The job ran to its end on the socket: job_complete then 1000."""
        return self.connected and "job_complete" in self.message_types and self.close_code == 1000

    @property
    def job_failed(self) -> bool:
        """The socket worked, the job did not: ``error`` then 1011 "Job failed" (contract)."""
        return self.connected and "error" in self.message_types and self.close_code == 1011

    @property
    def connected(self) -> bool:
        """101, then ``ready_ack`` as the first answer to ``ready``."""
        return self.handshake_status == 101 and bool(self.message_types) and self.message_types[0] == "ready_ack"


async def run_progress_socket(base_url: str, job_id: str, token: str, *, timeout: float,
                              until: str | None = None) -> ProgressRun:
    """Connect, send ``ready``, read until the server closes (or until a message of type ``until``, then
    close); the whole session within ``timeout``."""
    started = time.perf_counter()
    types: list[str] = []
    opened = False
    url = progress_url(base_url, job_id, token)
    try:
        async with asyncio.timeout(timeout):
            async with connect(url, proxy=None, open_timeout=timeout, close_timeout=2,
                               ping_interval=None, max_size=2**20) as ws:
                opened = True
                await ws.send(json.dumps({"type": "ready"}))
                try:
                    async for raw in ws:
                        try:
                            message = json.loads(raw)
                        except json.JSONDecodeError:
                            types.append("<not json>")
                            continue
                        types.append(str(message.get("type")) if isinstance(message, dict) else "<not an object>")
                        if until is not None and types[-1] == until:
                            break
                except ConnectionClosed:
                    pass
                close = ws.close_code, ws.close_reason or ""
    except InvalidStatus as exc:
        return ProgressRun(exc.response.status_code, seconds=time.perf_counter() - started,
                           detail=f"handshake refused with HTTP {exc.response.status_code}")
    except TimeoutError:
        what = f"no end of the job within {timeout:.1f}s" if opened else f"no handshake answer within {timeout:.1f}s"
        return ProgressRun(101 if opened else None, tuple(types), seconds=time.perf_counter() - started, detail=what)
    except (OSError, InvalidHandshake, websockets.exceptions.WebSocketException) as exc:
        return ProgressRun(None, tuple(types), seconds=time.perf_counter() - started,
                           detail=f"{type(exc).__name__}: {exc}")
    return ProgressRun(101, tuple(types), close[0], close[1], time.perf_counter() - started)


__all__ = [
    "HealthAnswer", "ProbeClients", "ProbeSample", "ProgressRun", "TargetError", "TokenGrant", "parse_health", "probe",
    "progress_url", "request_progress_token", "run_progress_socket",
]
