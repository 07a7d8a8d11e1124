"""What a verification run measures: windows, probe traffic, endpoints, expectations.

Durations come from runbook.toml at the run's time scale. The probe rate is chosen so that every
critical endpoint gets enough samples for a P95 with a finite confidence bound within the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import SuiteSettings

KNOWN_TITLE = "hamlet"  # the runbook's title search
KNOWN_ISBN = "9780743273565"  # the runbook's ISBN search: The Great Gatsby


@dataclass(frozen=True)
class Endpoint:
    """One critical endpoint the probes exercise."""

    key: str  # e.g. "title:hamlet", "title:<faker>"
    endpoint: str  # health | title | isbn
    weight: int  # share of the probe traffic
    query: str | None = None  # fixed query; None with ``fresh``: a new faker value per probe
    fresh: bool = False  # a new query every probe: always a cold cache
    known_good: bool = False  # a query that must find results (a provider outage shows here)

    @property
    def is_search(self) -> bool:
        return self.endpoint != "health"


DEFAULT_ENDPOINTS = (
    Endpoint("health", "health", 1),
    Endpoint(f"title:{KNOWN_TITLE}", "title", 3, KNOWN_TITLE, known_good=True),
    Endpoint(f"isbn:{KNOWN_ISBN}", "isbn", 3, KNOWN_ISBN, known_good=True),
    Endpoint("title:<faker>", "title", 1, fresh=True),
    Endpoint("isbn:<faker>", "isbn", 1, fresh=True),
)


@dataclass(frozen=True)
class VerifyPlan:
    window_s: float  # the error-rate and response-time windows (5 runbook minutes, scaled)
    cache_window_s: float  # the runbook's cache query window (10 minutes, scaled)
    probe_rate: float  # probes per second, all endpoints together
    endpoints: tuple[Endpoint, ...]
    latency_samples: int  # wanted per search endpoint within the window
    min_samples: int  # a rate judged on fewer is INCONCLUSIVE
    confidence: float
    expected_version: str | None  # a tag or a version id
    expected_from: str  # where the expectation came from, for the sentence
    ws_sessions: int
    ws_timeout_s: float
    request_timeout_s: float
    analytics_lag_s: float
    seed: int

    @property
    def latency_needed(self) -> int:
        """Answers per endpoint below which a P95 cannot get a finite 95% upper bound (with margin)."""
        return 80

    @property
    def total_weight(self) -> int:
        return sum(e.weight for e in self.endpoints)

    def expected_probes(self, endpoint: Endpoint) -> int:
        return int(self.probe_rate * self.window_s * endpoint.weight / self.total_weight)

    @property
    def duration_s(self) -> float:
        """The longest window; the whole run should take about this long."""
        return self.window_s * 2 + self.analytics_lag_s


def auto_probe_rate(window_s: float, endpoints: tuple[Endpoint, ...], latency_samples: int,
                    minimum: float = 2.0) -> float:
    """The smallest rate that gives every search endpoint ``latency_samples`` within the window."""
    total = sum(e.weight for e in endpoints)
    needed = max(latency_samples * total / e.weight for e in endpoints if e.is_search)
    return max(minimum, math.ceil(needed / window_s))


def make_plan(
    settings: SuiteSettings,
    *,
    expect_version: str | None = None,
    recorded_target: str | None = None,
    probe_rate: float | None = None,
    latency_samples: int = 100,
    ws_sessions: int = 3,
    request_timeout_s: float = 5.0,
) -> VerifyPlan:
    runbook, target = settings.runbook, settings.target
    window = settings.seconds(max(runbook.verification.error_rate_window_min,
                                  runbook.verification.response_time_window_min))
    if expect_version:
        expected, source = expect_version, "--expect-version"
    elif recorded_target:
        expected, source = recorded_target, "the last drill's recorded rollback target"
    elif target.known_stable:
        expected, source = target.known_stable, f"the known stable version of {target.source}"
    else:
        expected, source = None, "nothing"
    endpoints = DEFAULT_ENDPOINTS
    return VerifyPlan(
        window_s=window,
        cache_window_s=settings.seconds(runbook.verification.cache_query_window_min),
        probe_rate=probe_rate or auto_probe_rate(window, endpoints, latency_samples),
        endpoints=endpoints,
        latency_samples=latency_samples,
        min_samples=runbook.statistics.min_samples,
        confidence=runbook.statistics.confidence,
        expected_version=expected,
        expected_from=source,
        ws_sessions=ws_sessions,
        ws_timeout_s=max(5.0, settings.seconds(0.5)),
        request_timeout_s=request_timeout_s,
        analytics_lag_s=target.analytics_lag_s,
        seed=settings.seed,
    )
