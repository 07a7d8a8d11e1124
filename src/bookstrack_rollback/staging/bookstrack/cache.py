"""The worker's edge cache of search answers (contract/bookstrack-api.md: ``cached``, ``cacheSource``;
"Telemetry": ``books_api_cache_metrics``).

Keyed by the normalised query. An entry is fresh for ``ttl_s`` seconds on the staging clock
(``EDGE_FRESH``); after that, for ``stale_s`` more seconds, it is served stale (``EDGE_STALE``) and
refreshed, as stale-while-revalidate does; past both it is gone and the next search misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EDGE_FRESH = "EDGE_FRESH"
EDGE_STALE = "EDGE_STALE"
# cache tier events of books_api_cache_metrics (index1 and blob1)
EVENT_FRESH = "edge_hit_fresh"
EVENT_STALE = "edge_hit_stale"
EVENT_MISS = "api_miss"


@dataclass(frozen=True)
class CachedAnswer:
    """A search answer's ``data`` and the provider that gave it."""

    data: dict[str, Any]
    provider: str


@dataclass
class _Entry:
    answer: CachedAnswer
    stored_at: float


@dataclass(frozen=True)
class CacheLookup:
    """What one lookup found: the answer (None on a miss), its ``cacheSource`` and tier event."""

    answer: CachedAnswer | None
    source: str | None
    event: str


class EdgeCache:
    def __init__(self, ttl_s: float = 300.0, stale_s: float = 300.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    def lookup(self, key: str, now: float) -> CacheLookup:
        entry = self._entries.get(key)
        if entry is None:
            return CacheLookup(None, None, EVENT_MISS)
        age = now - entry.stored_at
        if age < self.ttl_s:
            return CacheLookup(entry.answer, EDGE_FRESH, EVENT_FRESH)
        if age < self.ttl_s + self.stale_s:
            entry.stored_at = now  # served stale, revalidated in the background: fresh again
            return CacheLookup(entry.answer, EDGE_STALE, EVENT_STALE)
        del self._entries[key]
        return CacheLookup(None, None, EVENT_MISS)

    def store(self, key: str, answer: CachedAnswer, now: float) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            oldest = min(self._entries, key=lambda k: self._entries[k].stored_at)
            del self._entries[oldest]
        self._entries[key] = _Entry(answer, now)

    def __len__(self) -> int:
        return len(self._entries)
