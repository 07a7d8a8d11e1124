"""The one endpoint table: what the probes ask, in which proportions, with seeded queries.

verify sends ``VERIFY_ENDPOINTS`` (a P95 per critical endpoint, the runbook's two known records and fresh
faker queries); the drill and triage send ``DRILL_ENDPOINTS`` (the known records also as ever-new
advanced searches, never cached, so provider trouble and cold latency show at once), in equal shares: the
drill's verification judges a P95 per endpoint, and the rarest endpoint sets the probe rate it needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker

KNOWN_TITLE = "hamlet"  # the runbook's title search
KNOWN_ISBN = "9780743273565"  # the runbook's ISBN search: The Great Gatsby
KNOWN_RECORDS = (("hamlet", "william shakespeare"), ("the great gatsby", "f. scott fitzgerald"))


@dataclass(frozen=True)
class Endpoint:
    """One critical endpoint the probes exercise."""

    key: str  # e.g. "title:hamlet", "title:<faker>"
    endpoint: str  # health | title | isbn | advanced
    weight: int  # share of the probe traffic
    query: str | None = None  # fixed query; None with ``fresh``: a new faker value per probe
    fresh: bool = False  # a new query every probe: always a cold cache (an upstream provider call)
    known_good: bool = False  # a query that must find results (a provider outage shows here)

    @property
    def is_search(self) -> bool:
        return self.endpoint != "health"


HEALTH = Endpoint("health", "health", 1)
TITLE_KNOWN = Endpoint(f"title:{KNOWN_TITLE}", "title", 3, KNOWN_TITLE, known_good=True)
ISBN_KNOWN = Endpoint(f"isbn:{KNOWN_ISBN}", "isbn", 3, KNOWN_ISBN, known_good=True)
VERIFY_ENDPOINTS = (
    HEALTH, TITLE_KNOWN, ISBN_KNOWN,
    Endpoint("title:<faker>", "title", 1, fresh=True),
    Endpoint("isbn:<faker>", "isbn", 1, fresh=True),
)
DRILL_ENDPOINTS = (
    HEALTH,
    Endpoint(TITLE_KNOWN.key, "title", 1, KNOWN_TITLE, known_good=True),
    Endpoint(ISBN_KNOWN.key, "isbn", 1, KNOWN_ISBN, known_good=True),
    # known records with ever-new words: never cached, so provider trouble shows at once
    Endpoint("advanced:<known>", "advanced", 1, fresh=True, known_good=True),
)
KNOWN_GOOD_LABELS = (TITLE_KNOWN.key, ISBN_KNOWN.key)  # repeated: they show the cache working
FRESH_KNOWN_LABEL = "advanced:<known>"  # never cached: they show what the providers answer


def schedule(endpoints: tuple[Endpoint, ...], rng: random.Random) -> list[Endpoint]:
    """One cycle of the mix, each endpoint as often as its weight, in a seeded order."""
    cycle = [e for e in endpoints for _ in range(e.weight)]
    rng.shuffle(cycle)
    return cycle


class QueryMaker:
    """Seeded probe queries: fixed ones for the known records, faker ones for fresh (cold) probes."""

    def __init__(self, seed: int) -> None:
        self.faker = Faker()
        self.faker.seed_instance(seed)

    def _part(self, text: str) -> str:
        """A random piece of at least 4 characters of ``text`` (a different cache key each time)."""
        length = self.faker.random_int(min(4, len(text)), len(text))
        start = self.faker.random_int(0, len(text) - length)
        return text[start:start + length].strip() or text

    def params(self, endpoint: Endpoint) -> tuple[str, dict[str, str]]:
        if endpoint.endpoint == "health":
            return "/health", {}
        if endpoint.endpoint == "advanced":  # a known record, searched with ever-new words
            title, author = self.faker.random_element(KNOWN_RECORDS)
            return "/v1/search/advanced", {"title": self._part(title), "author": self._part(author)}
        query = endpoint.query
        if endpoint.fresh or query is None:
            if endpoint.endpoint == "isbn":
                query = self.faker.isbn13(separator="")
            else:
                query = self.faker.sentence(nb_words=3, variable_nb_words=False).rstrip(".")
        if endpoint.endpoint == "isbn":
            return "/v1/search/isbn", {"isbn": query}
        return "/v1/search/title", {"q": query}
