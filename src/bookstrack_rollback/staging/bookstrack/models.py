"""The BooksTrack worker's state and rules, no HTTP (contract/bookstrack-api.md).

:class:`BooksTrack` owns the catalogue (drawn lazily with Faker from the staging's seed), the edge
cache, the batch rate limiter, the enrichment jobs, the fault resolver and the telemetry writer.
The routes (``routes.py``, ``progress.py``) parse requests and shape answers; everything they
decide with is here. Two hooks are called by the rest of the staging: :meth:`on_deployment` (the
workers model's ``on_deployment`` callback, after every deploy or rollback) and
:meth:`on_runtime_fault` (the admin routes, after the runtime flag was set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...faults import FaultProfile, Latency
from ..base import Clock, SeededRandom, StagingConfig
from ..cloudflare.workers import Deployment
from .cache import EVENT_MISS, CachedAnswer, EdgeCache
from .catalogue import Book, Catalogue
from .faults import ActiveFaults, FaultResolver, InjectedError, draw_latency_ms
from .jobs import JobBoard, Sleep
from .ratelimit import BatchRateLimiter
from .telemetry import Exchange, Telemetry

# What the emulation does not sleep through but reports as processing time (realistic, in ms).
UPSTREAM_LATENCY = Latency(p50_ms=180.0, p95_ms=600.0)  # a provider call on a cache miss
CACHE_HIT_LATENCY = Latency(p50_ms=4.0, p95_ms=15.0)
LOCAL_LATENCY = Latency(p50_ms=1.0, p95_ms=4.0)  # /health, 404, validation errors
BATCH_LATENCY = Latency(p50_ms=12.0, p95_ms=40.0)
HANDSHAKE_LATENCY = Latency(p50_ms=5.0, p95_ms=20.0)
EDGE_TTL_S = 300.0
EDGE_STALE_S = 300.0

HEALTH_ENDPOINTS = (
    "GET /health - Health check",
    "GET /v1/search/title?q={query} - Search books by title",
    "GET /v1/search/isbn?isbn={isbn} - Search books by ISBN",
    "GET /v1/search/advanced?title={title}&author={author} - Advanced search",
    "POST /v1/enrichment/batch - Batch enrichment with WebSocket progress",
    "GET /ws/progress?jobId={id}&token={token} - WebSocket progress updates",
)


@dataclass(frozen=True)
class SearchAnswer:
    """A search's ``data`` and ``metadata`` fields (without the timestamp and processing time)."""

    data: dict[str, Any]
    provider: str
    cached: bool
    cache_source: str | None = None

    def metadata(self, timestamp: str, processing_ms: float) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "timestamp": timestamp,
            "processingTime": int(round(processing_ms)),
            "provider": self.provider,
            "cached": self.cached,
        }
        if self.cache_source is not None:
            metadata["cacheSource"] = self.cache_source
        return metadata


def answer_data(books: list[Book]) -> dict[str, Any]:
    authors: dict[str, dict[str, Any]] = {}
    for book in books:
        authors.setdefault(book.author, book.author_record())
    return {
        "works": [book.work() for book in books],
        "editions": [book.edition() for book in books],
        "authors": list(authors.values()),
    }


EMPTY: dict[str, list[Any]] = {"works": [], "editions": [], "authors": []}


class BooksTrack:
    """The BooksTrack worker, over its enrichment ``jobs``, its ``faults`` resolver and its
    ``telemetry`` writer. ``config()`` is the configuration in force (the users' traffic and the
    /health knobs change at runtime); every draw is from ``rng``, the catalogue's seed first."""

    def __init__(self, config: Callable[[], StagingConfig], clock: Clock, rng: SeededRandom, *, jobs: JobBoard,
                 faults: FaultResolver, telemetry: Telemetry, sleep: Sleep = asyncio.sleep) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._catalogue: Catalogue | None = None
        self._catalogue_seed = rng.getrandbits(32)
        self.sleep = sleep  # the one seam through which injected latency passes
        self.cache = EdgeCache(EDGE_TTL_S, EDGE_STALE_S)
        self.limiter = BatchRateLimiter()
        self.jobs = jobs
        self.faults = faults
        self.telemetry = telemetry

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = Catalogue.generate(self._config().catalogue_size, self._catalogue_seed)
        return self._catalogue

    # --- hooks called by the rest of the staging ----------------------------------------------
    def on_deployment(self, deployment: Deployment) -> None:
        """Called by the workers model after every new deployment (a deploy or a rollback)."""
        self.faults.on_deployment(deployment)

    def on_runtime_fault(self, profile: FaultProfile) -> None:
        """Called by the admin routes after a runtime fault profile was set (the KV flag)."""
        self.faults.on_runtime_fault()

    def close(self) -> None:
        """Stop running jobs (a reset or a shutdown)."""
        self.jobs.close()

    # --- one request ------------------------------------------------------------------------
    def begin(self, *, path: str, endpoint: str, method: str, url: str, headers: dict[str, str], client_ip: str,
              users: bool = False) -> Exchange:
        """Resolve the version and faults serving this request and start its record; ``users``: a
        request of the staging's own users (users.py), who see their own fault profile as well."""
        headers = {"cf-connecting-ip": client_ip, **headers}
        faults = self.faults.for_request(self._config().users if users else None)
        return Exchange(path, endpoint, method, url, headers, client_ip, faults)

    def ray_id(self) -> str:
        return f"{self._rng.hex_id(8)}-SJC"

    def timestamp(self) -> str:
        return self._clock.iso()

    def now_ms(self) -> int:
        return self.telemetry.now_ms()

    def simulate(self, exchange: Exchange, latency: Latency) -> float:
        """Add an upstream or local delay to the reported processing time (not slept)."""
        ms = draw_latency_ms(latency, self._rng)
        exchange.simulated_ms += ms
        return ms

    async def inject_latency(self, exchange: Exchange) -> None:
        ms = exchange.faults.latency_ms(exchange.endpoint, self._rng)
        if ms > 0.0:
            await self.sleep(ms / 1000.0)

    def injected_error(self, exchange: Exchange) -> InjectedError | None:
        injected = exchange.faults.injected_error(exchange.endpoint, self._rng)
        if injected is not None:
            exchange.error_code = injected.code
            if injected.status >= 500:
                exchange.exception(f"Injected failure: {injected.message}", self.now_ms())
            exchange.log("error", f"{exchange.method} {exchange.path} -> {injected.status} {injected.code}", self.now_ms())
        return injected

    def crash(self, exchange: Exchange) -> bool:
        """True when the worker crashes on this request (outage or unusable profile)."""
        message = exchange.faults.crash_message()
        if message is None:
            return False
        exchange.error_code = "INTERNAL_ERROR"
        exchange.exception(message, self.now_ms())
        return True

    def handshake_fails(self, exchange: Exchange) -> bool:
        if not exchange.faults.handshake_fails(self._rng):
            return False
        exchange.error_code = "INTERNAL_ERROR"
        exchange.exception("Durable Object reset because its code was updated.", self.now_ms())
        return True

    def health(self, faults: ActiveFaults) -> dict[str, Any]:
        """Production's constant shape, or the runbook's enveloped one with the serving tag; the status
        is ``config.health_status`` in both."""
        config = self._config()
        status = config.health_status
        if config.health_shape == "constant" or faults.health_constant():
            return {"status": status, "worker": config.worker_name, "version": "1.0.0", "endpoints": list(HEALTH_ENDPOINTS)}
        version = faults.version
        return {"data": {"status": status, "version": version.tag or version.id, "worker": config.worker_name}}

    # --- search -----------------------------------------------------------------------------
    async def search(self, exchange: Exchange, key: str, finder: Callable[[], list[Book]]) -> SearchAnswer:
        """Edge cache, then the providers (which may time out), then the cache again."""
        rng = self._rng
        faults = exchange.faults
        cache_on = faults.cache_enabled()
        if cache_on:
            lookup = self.cache.lookup(key, self._clock.now())
            if lookup.answer is not None:
                ms = self.simulate(exchange, CACHE_HIT_LATENCY)
                exchange.cache_status = "HIT"
                exchange.cache_events.append((lookup.event, key, round(ms, 3)))
                return SearchAnswer(lookup.answer.data, lookup.answer.provider, True, lookup.source)
        timeout_ms = faults.provider_timeout_ms(exchange.endpoint, rng)
        if timeout_ms is not None:
            await self.sleep(timeout_ms / 1000.0)
            exchange.cache_events.append((EVENT_MISS, key, round(timeout_ms, 3)))
            exchange.log("warn", f"All providers failed for {key}: timed out after {timeout_ms:.0f} ms", self.now_ms())
            return SearchAnswer({name: [] for name in EMPTY}, "none", False)
        books = finder()
        ms = self.simulate(exchange, UPSTREAM_LATENCY)
        exchange.cache_events.append((EVENT_MISS, key, round(ms, 3)))
        data = answer_data(books)
        provider = books[0].provider if books else "none"
        if cache_on:
            self.cache.store(key, CachedAnswer(data, provider), self._clock.now())
        return SearchAnswer(data, provider, False)
