"""What the worker reports about each request it served (contract/bookstrack-api.md, "Telemetry";
contract/cloudflare-api.md, "Tail").

For every BooksTrack request: one ``books_api_performance`` data point (index1 = blob1 = path,
blob2 = error code or ``N/A``, blob3 = ``HIT``/``MISS``, double1 = status, double2 = processing
ms), one ``books_api_cache_metrics`` point per cache tier event of a search, and one trace-v1 tail
event. The quirks ``blob3_always_miss`` and ``double1_500`` change the performance point only.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from ..analytics.store import AnalyticsStore
from ..base import Clock
from ..cloudflare.tail import TailHub
from .faults import ActiveFaults, PerformanceRow

_SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "proxy-authorization", "cf-access-client-secret"}
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey")
_TOKEN_IN_URL = re.compile(r"((?:token|secret|access_token)=)[^&\s#]+", re.I)


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Request headers as the tail shows them, without credentials."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _SECRET_HEADERS and not any(word in name.lower() for word in _SECRET_WORDS)
    }


def client_ip(conn: HTTPConnection) -> str:
    """Cloudflare's ``CF-Connecting-IP`` when present, else the socket's peer."""
    header = conn.headers.get("cf-connecting-ip")
    if header:
        return header.strip()
    return conn.client.host if conn.client else "unknown"


def safe_url(url: str) -> str:
    return _TOKEN_IN_URL.sub(r"\1[redacted]", url)


@dataclass
class Exchange:
    """One request as the worker saw it; telemetry and the tail event are written from it."""

    path: str
    endpoint: str  # health | title | isbn | advanced | batch | ws | unknown
    method: str
    url: str
    headers: dict[str, str]
    client_ip: str
    faults: ActiveFaults
    started: float = field(default_factory=time.perf_counter)
    simulated_ms: float = 0.0  # the upstream time the emulation does not sleep through
    cache_status: str = "MISS"
    error_code: str = "N/A"
    cache_events: list[tuple[str, str, float]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def processing_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000.0 + self.simulated_ms, 3)

    def log(self, level: str, message: str, at_ms: int) -> None:
        self.logs.append({"message": [message], "level": level, "timestamp": at_ms})

    def exception(self, message: str, at_ms: int, name: str = "Error") -> None:
        self.exceptions.append({"name": name, "message": message, "timestamp": at_ms})


class Telemetry:
    """Writes each request's data points to ``analytics`` (the two datasets named) and publishes its
    tail event to ``tails``, as the worker ``worker_name``; nothing at all when not ``enabled`` (only to
    measure what telemetry costs: ``--no-telemetry``)."""

    def __init__(self, clock: Clock, analytics: AnalyticsStore, tails: TailHub, *, performance_dataset: str,
                 cache_dataset: str, worker_name: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self._clock = clock
        self._analytics = analytics
        self._tails = tails
        self._performance_dataset = performance_dataset
        self._cache_dataset = cache_dataset
        self._worker_name = worker_name

    def now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def finish(self, exchange: Exchange, status: int) -> None:
        """Write the request's data points and publish its tail event."""
        if not self.enabled:
            return
        processing_ms = exchange.processing_ms()
        row = exchange.faults.performance_row(
            PerformanceRow(exchange.path, exchange.error_code, exchange.cache_status, float(status), processing_ms)
        )
        self._analytics.write(
            self._performance_dataset,
            index1=row.path,
            blobs=[row.path, row.error_code, row.cache_status],
            doubles=[row.status, row.processing_ms],
        )
        for event, key, ms in exchange.cache_events:
            self._analytics.write(self._cache_dataset, index1=event, blobs=[event, key], doubles=[ms])
        self._tails.publish(self.tail_event(exchange, status))

    def tail_event(self, exchange: Exchange, status: int) -> dict[str, Any]:
        """The trace-v1 event of contract/cloudflare-api.md "Tail"."""
        outcome = "exception" if status >= 500 else "ok"
        request = {
            "url": safe_url(exchange.url),
            "method": exchange.method,
            "headers": safe_headers(exchange.headers),
            "cf": {"colo": "SJC", "country": "US", "httpProtocol": "HTTP/1.1"},
        }
        return {
            "outcome": outcome,
            "scriptName": self._worker_name,
            "eventTimestamp": self.now_ms(),
            "scriptVersion": {"id": exchange.faults.version.id},
            "event": {"request": request, "response": {"status": status}},
            "logs": list(exchange.logs),
            "exceptions": list(exchange.exceptions),
            "diagnosticsChannelEvents": [],
            "truncated": False,
        }
