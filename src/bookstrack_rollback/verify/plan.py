"""What a verification run measures: windows, probe traffic, endpoints, expectations.

Durations come from runbook.toml at the run's time scale. The probe rate is chosen so that every
critical endpoint gets enough samples for a P95 with a finite confidence bound within the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import SuiteSettings
from ..signals.endpoints import VERIFY_ENDPOINTS, Endpoint

EXTENSION = 0.5  # at most this share of the window is added when endpoints lack samples (a loaded machine)
SLACK_S = 30.0  # added to every deadline: process start, the last queries, a loaded machine


@dataclass(frozen=True)
class VerifyPlan:
    """What one verification run sends, for how long, and how long it may take.

    Every runbook window runs at once over the longest of them (the runbook's cache query reads 10
    minutes, so the run watches 10 minutes after the rollback: the error rate and the P95 get that
    much evidence too). The probes are spread over the whole window at the lowest rate that gives
    every search endpoint the answers a P95 needs, never above the target's ``max_probe_rate``.
    """

    window_s: float  # the run's window: the longest runbook window (the cache query's 10 minutes), scaled
    runbook_window_min: float  # the same in runbook minutes
    probe_rate: float  # probes per second, all endpoints together
    probe_rate_from: str  # where the rate came from, for the plan's sentence
    max_probe_rate: float  # the target's limit
    endpoints: tuple[Endpoint, ...]
    latency_samples: int  # wanted per search endpoint within the window
    min_samples: int  # a rate judged on fewer is INCONCLUSIVE
    confidence: float
    expected_version: str | None  # a tag or a version id
    expected_from: str  # where the expectation came from, for the sentence
    ws_sessions: int
    ws_timeout_s: float
    handshakes: int  # bogus-token handshakes spread over the window
    request_timeout_s: float
    analytics_lag_s: float
    seed: int
    ws_token_attempts: int = 8  # the batch endpoint allows 10 per minute per IP
    # judged again and again as the evidence grows (the drill's verification): confidence sequences,
    # which hold at every look; one look (`pytest -m verify`): fixed-sample intervals
    anytime: bool = False

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
    def capped(self) -> bool:
        """The target's max_probe_rate keeps some endpoint below the answers a P95 needs."""
        return any(self.expected_probes(e) < self.latency_needed for e in self.endpoints if e.is_search)

    @property
    def duration_s(self) -> float:
        """The longest a run can watch: the window, the top-up for missing answers, the ingestion lag."""
        return self.window_s * (1 + EXTENSION) + self.analytics_lag_s

    @property
    def deadline_s(self) -> float:
        """The longest a whole run may take (its tests' deadline): the windows, the last answers, the
        socket sessions (which run beside the probes), the Analytics Engine queries, and slack."""
        probing = self.window_s * (1 + EXTENSION) + self.request_timeout_s + 1
        sockets = self.ws_token_attempts * self.request_timeout_s + (self.ws_sessions + 1) * self.ws_timeout_s
        analytics = self.analytics_lag_s + 2 + 4 * self.request_timeout_s
        return max(probing, sockets) + analytics + SLACK_S

    def traffic(self) -> str:
        """What the run will send, as a sentence printed before it starts."""
        total = int(self.probe_rate * self.window_s)
        per = ", ".join(f"{e.key} {self.expected_probes(e)}" for e in self.endpoints)
        upstream = sum(self.expected_probes(e) for e in self.endpoints if e.fresh)
        text = (f"about {total} probe requests over {_duration(self.window_s)} at {self.probe_rate:g}/s "
                f"({self.probe_rate_from}; this target allows at most {self.max_probe_rate:g}/s): {per}; "
                f"{upstream} of them are fresh searches that reach the upstream providers (never cached)")
        if self.capped:
            short = [e.key for e in self.endpoints if e.is_search and self.expected_probes(e) < self.latency_needed]
            text += (f". At this rate {', '.join(short)} will get fewer than the {self.latency_needed} answers a P95 "
                     "needs: their response-time checks will say INCONCLUSIVE")
        return text


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def auto_probe_rate(window_s: float, endpoints: tuple[Endpoint, ...], latency_samples: int,
                    minimum: float = 1.0) -> float:
    """The smallest rate (in steps of 0.1/s) that gives every search endpoint ``latency_samples``
    within the window."""
    total = sum(e.weight for e in endpoints)
    needed = max(latency_samples * total / e.weight for e in endpoints if e.is_search)
    return max(minimum, math.ceil(needed / window_s * 10) / 10)


class PlanError(ValueError):
    """A plan the target does not allow; the message says why and where the limit is set."""


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
    verification = runbook.verification
    window_min = max(verification.error_rate_window_min, verification.response_time_window_min,
                     verification.cache_query_window_min)
    window = settings.seconds(window_min)
    if expect_version:
        expected, source = expect_version, "--expect-version"
    elif recorded_target:
        expected, source = recorded_target, "the last drill's recorded rollback target"
    elif target.known_stable:
        expected, source = target.known_stable, f"the known stable version of {target.source}"
    else:
        expected, source = None, "nothing"
    endpoints = VERIFY_ENDPOINTS
    limit = target.max_probe_rate
    if probe_rate is not None:
        if probe_rate > limit:
            raise PlanError(f"--probe-rate {probe_rate:g}/s exceeds the max_probe_rate of {limit:g}/s of "
                            f"{target.source}: the suite never sends more than a target allows; raise "
                            "max_probe_rate there if the target can take it")
        rate, rate_from = probe_rate, "--probe-rate"
    else:
        wanted = auto_probe_rate(window, endpoints, latency_samples)
        rate = min(wanted, limit)
        rate_from = ("enough for a P95 per endpoint" if wanted <= limit
                     else f"capped by max_probe_rate; {wanted:g}/s would give every endpoint a P95")
    return VerifyPlan(
        window_s=window,
        runbook_window_min=window_min,
        probe_rate=rate,
        probe_rate_from=rate_from,
        max_probe_rate=limit,
        endpoints=endpoints,
        latency_samples=latency_samples,
        min_samples=runbook.statistics.min_samples,
        confidence=runbook.statistics.confidence,
        expected_version=expected,
        expected_from=source,
        ws_sessions=ws_sessions,
        ws_timeout_s=max(5.0, settings.seconds(0.5)),
        handshakes=3,
        request_timeout_s=request_timeout_s,
        analytics_lag_s=target.analytics_lag_s,
        seed=settings.seed,
    )
