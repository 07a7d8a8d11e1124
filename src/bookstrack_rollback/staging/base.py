"""The staging's shared small types, below every model: its configuration, its clock, its seeded
random source, the request log and the constants the parts agree on.

Every model imports what it needs from here; nothing here imports a model (``state.py`` builds the
models and imports them, never the reverse).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ..faults import RUNTIME_FLAG_KEY
from .users_traffic import UsersTraffic

DEFAULT_TOKEN = "bookstrack-staging-dev-token"
DEFAULT_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_WORKER = "api-worker-staging"
DEFAULT_KV_NAMESPACE = "6b7f3c2d9e0a4f1b8c5d2e7a3f9b0c14"  # 32 hex, as Cloudflare's namespace ids (kv.py titles it)
RUNTIME_FAULT_KEY = RUNTIME_FLAG_KEY  # the KV flag of a runtime fault profile (faults.py)
# The worker's own data that a rollback must not lose: read back by verification ("canaries").
CANARY_RECORDS = {
    "canary/library/1": '{"isbn":"9780743273565","title":"The Great Gatsby","shelf":"read"}',
    "canary/library/2": '{"isbn":"9780141439518","title":"Pride and Prejudice","shelf":"to-read"}',
}


@dataclass(frozen=True)
class StagingConfig:
    """What the staging is; printed on start so that a client knows how to talk to it."""

    seed: int = 20251115
    token: str = DEFAULT_TOKEN
    account_id: str = DEFAULT_ACCOUNT_ID
    worker_name: str = DEFAULT_WORKER
    kv_namespace_id: str = DEFAULT_KV_NAMESPACE
    # Analytics Engine
    performance_dataset: str = "books_api_performance"
    cache_dataset: str = "books_api_cache_metrics"
    ingestion_lag_s: float = 0.0
    # /health: "version" reports the serving version's workers/tag; "constant" answers like production
    health_shape: str = "version"
    # /health's status in both shapes: "ok" or "degraded"
    health_status: str = "ok"
    catalogue_size: int = 500
    # Analytics Engine data points and tail events per request; off only to measure their cost
    telemetry: bool = True
    # Cloudflare API rate limit: 1200 requests per 5 minutes per user (contract/cloudflare-api.md)
    api_rate_limit: int = 1200
    api_rate_window_s: float = 300.0
    # the staging's own users (users.py): off by default
    users: UsersTraffic = UsersTraffic()
    # what answers at the BooksTrack base URL: "python" (the emulation in bookstrack/) or "workerd"
    # (the deployed versions' own code, run in workerd: workerd/)
    runtime: str = "python"

    def with_overrides(self, **changes: object) -> "StagingConfig":
        return replace(self, **changes)


class Clock:
    """Wall time and monotonic time behind one seam, so tests can move time without sleeping."""

    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def iso(self, at: float | None = None) -> str:
        """ISO 8601 with milliseconds and a Z, as the BooksTrack API and Cloudflare write them."""
        moment = self.now() if at is None else at
        stamp = datetime.fromtimestamp(moment, tz=timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class ManualClock(Clock):
    """A clock that only moves when told to (for unit tests)."""

    def __init__(self, start: float = 1_764_410_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


class SeededRandom(random.Random):
    """The staging's one random source: every id, fake book and injected error is drawn here."""

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def hex_id(self, nbytes: int = 16) -> str:
        return f"{self.getrandbits(nbytes * 8):0{nbytes * 2}x}"


@dataclass
class RequestRecord:
    """One request the staging served, as the admin request log shows it (secrets redacted)."""

    at: float
    method: str
    path: str
    query: str
    status: int
    api: str  # "bookstrack" | "cloudflare" | "admin" | "tail"
    client: str
    duration_ms: float

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "api": self.api,
            "client": self.client,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass
class RequestLog:
    """The requests served since the last reset, oldest first; past ``limit`` the oldest are forgotten."""

    records: list[RequestRecord] = field(default_factory=list)
    limit: int = 200_000

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)
        if len(self.records) > self.limit:
            del self.records[: len(self.records) - self.limit]
