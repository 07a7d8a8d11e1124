"""The batch endpoint's rate limit (contract/bookstrack-api.md, "POST /v1/enrichment/batch"):
10 requests per 60 s per client IP, a fixed window that opens with the first request, as
production's rate-limiter Durable Object counts; on the staging clock, so tests move time."""

from __future__ import annotations

import math
from dataclasses import dataclass

LIMIT = 10
WINDOW_S = 60.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    reset_at: float  # epoch seconds
    retry_after: int  # whole seconds, at least 1, when refused


@dataclass
class _Window:
    count: int
    reset_at: float


class BatchRateLimiter:
    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}

    def check(self, client_ip: str, now: float) -> RateDecision:
        """Count one request of ``client_ip`` at ``now``, or refuse it."""
        window = self._windows.get(client_ip)
        if window is None or now >= window.reset_at:
            window = self._windows[client_ip] = _Window(0, now + self.window_s)
        if window.count >= self.limit:
            retry_after = max(1, math.ceil(window.reset_at - now))
            return RateDecision(False, 0, window.reset_at, retry_after)
        window.count += 1
        return RateDecision(True, self.limit - window.count, window.reset_at, 0)
