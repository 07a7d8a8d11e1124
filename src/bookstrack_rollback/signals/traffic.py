"""Users' traffic told apart from the suite's own, in Analytics Engine's counts.

The worker records every request it serves (``books_api_performance``: blob1 path, blob2 error code,
blob3 cache status, double1 status) but not who sent it. The suite knows every probe it sent: its
path, the status it got and whether it was cached. Analytics Engine's count of a window, path by path,
is the users' requests plus the probes', so the users' figures are the window's counts minus the
probes' (:func:`split`).

One definition of each measure (``analytics.traffic_sql``): an error is a request the worker gave an
error code (blob2, which production writes truthfully: REALITY.md); a 5xx is such an error with a
status of 500 or more (double1); a hit or a miss is an answer without an error code, by blob3.

The same arithmetic tells whether the telemetry can be trusted, comparing like with like: whatever the
users did, a window cannot hold fewer errors on a path than the probes alone got there, nor fewer 5xx,
cache hits or misses; and an answer without an error code cannot carry an error status. When it does,
the column lies (REALITY.md: production's ``double1 = 500`` and ``blob3 = MISS``), and the figures built
on it are not judged. Failures only the suite can see (a degraded /health answered 200, an empty search
for a known record) are judged by their own checks and never count against the telemetry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from ..clients.bookstrack import ProbeSample

# the progress socket and the job-creating batch endpoint are judged by the WebSocket checks
EXCLUDED_PATHS = ("/ws/progress", "/v1/enrichment/batch")


@dataclass(frozen=True)
class Counts:
    """Requests of one window, as the target's telemetry records them."""

    requests: int = 0
    errors: int = 0  # with an error code (blob2 != 'N/A')
    server_errors: int = 0  # of those, with a status of 500 or more (double1)
    hits: int = 0  # answered without an error code, from the cache (blob3 'HIT')
    misses: int = 0  # answered without an error code, not from the cache
    mislabelled: int = 0  # answered without an error code, yet with an error status (double1 >= 400)

    @property
    def answered(self) -> int:
        return self.hits + self.misses

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def minus(self, other: "Counts") -> "Counts":
        """What is left of this window once ``other``'s requests are taken out (never below zero)."""
        return Counts(*(max(0, getattr(self, f.name) - getattr(other, f.name)) for f in fields(self)))


def total(counts: Iterable[Counts]) -> Counts:
    result = Counts()
    for part in counts:
        result = result + part
    return result


def probe_counts(samples: Iterable[ProbeSample]) -> dict[str, Counts]:
    """The probes' requests by path, as the target records them: by status code and cache flag,
    whatever the suite made of the answer. A probe that got no answer (a timeout, a refused
    connection) is left out: whether the target recorded it is unknown."""
    rows: dict[str, list[int]] = {}
    for sample in samples:
        if sample.status is None:
            continue
        row = rows.setdefault(sample.path, [0] * 6)
        row[0] += 1
        if sample.status >= 400:
            row[1] += 1
            row[2] += sample.status >= 500
        else:
            row[3 if sample.cached else 4] += 1
    return {path: Counts(*row) for path, row in rows.items()}


def tolerance(count: int) -> int:
    """How far a recorded count may fall short of the probes' own without meaning anything (Analytics
    Engine samples busy datasets: its sums are estimates)."""
    return max(2, math.ceil(0.05 * count))


MEASURES = ("errors", "server_errors", "hits", "misses")


@dataclass(frozen=True)
class Shortfall:
    """The telemetry records fewer of something on a path than the probes alone got there."""

    path: str
    measure: str  # one of MEASURES
    recorded: int
    probes: int

    @property
    def column(self) -> str:
        return "status" if self.measure in ("errors", "server_errors") else "cache"

    def sentence(self) -> str:
        what = {"errors": "error answers", "server_errors": "5xx answers", "hits": "cache hits",
                "misses": "cache misses"}[self.measure]
        return (f"Analytics Engine records {self.recorded} {what} on {self.path} where the suite's own probes "
                f"alone got {self.probes}")


@dataclass(frozen=True)
class TrafficSplit:
    """One window's requests: all of them (Analytics Engine), the probes', and so the users'."""

    all: Counts
    probes: Counts
    users: Counts
    shortfalls: tuple[Shortfall, ...]  # like-with-like comparisons the telemetry fails

    @property
    def lagging(self) -> bool:
        """Analytics Engine has not yet ingested the probes' own requests: the window is not complete."""
        return self.all.requests < self.probes.requests - tolerance(self.probes.requests)

    @property
    def status_lies(self) -> bool:
        """Answers without an error code recorded with an error status: the status column (double1)
        cannot be read."""
        return self.all.mislabelled > tolerance(self.all.answered)

    @property
    def errors_trustworthy(self) -> bool:
        """The error code (blob2) records at least the probes' own errors and answers."""
        return not self.lagging and not any(s.column == "status" for s in self.shortfalls)

    @property
    def server_errors_trustworthy(self) -> bool:
        return self.errors_trustworthy and not self.status_lies

    @property
    def cache_trustworthy(self) -> bool:
        return not self.lagging and not any(s.column == "cache" for s in self.shortfalls)

    def problems(self, column: str | None = None) -> list[str]:
        """Each way the telemetry fails like with like (in ``column``: status or cache), as a sentence."""
        found = [s.sentence() for s in self.shortfalls if column in (None, s.column)]
        if self.status_lies and column in (None, "status"):
            found.insert(0, f"Analytics Engine records {self.all.mislabelled} of {self.all.answered} answers "
                            "without an error code with an error status (double1 of 400 or more)")
        return found


def split(recorded: dict[str, Counts], samples: Iterable[ProbeSample]) -> TrafficSplit:
    """The users' figures: what Analytics Engine recorded, path by path, less the suite's probes."""
    probes = {p: c for p, c in probe_counts(samples).items() if p not in EXCLUDED_PATHS}
    shortfalls = []
    for path, mine in sorted(probes.items()):
        seen = recorded.get(path, Counts())
        for measure in MEASURES:
            wanted, got = getattr(mine, measure), getattr(seen, measure)
            if wanted - got > tolerance(wanted):
                shortfalls.append(Shortfall(path, measure, got, wanted))
    users = total(seen.minus(probes.get(path, Counts())) for path, seen in recorded.items())
    return TrafficSplit(total(recorded.values()), total(probes.values()), users, tuple(shortfalls))
