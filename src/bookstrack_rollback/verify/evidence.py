"""The evidence a verification run gathers; plain data, read by the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..clients.bookstrack import ProbeSample, ProgressRun
from ..clients.cloudflare import DeploymentInfo, VersionInfo
from ..config import Target
from .plan import VerifyPlan
from .traffic import Counts, TrafficSplit, split, total


@dataclass
class AnalyticsEvidence:
    """Analytics Engine's view of the same window (weighted counts: SUM(_sample_interval)), users'
    requests and the probes' together, path by path (``traffic.split`` tells them apart)."""

    by_path: dict[str, Counts] = field(default_factory=dict)
    runbook_hit_rate: float | None = None  # the runbook's query, in percent (all traffic)
    runbook_sql: str = ""
    cache_tiers: dict[str, int] = field(default_factory=dict)  # books_api_cache_metrics index1 -> count
    queries: list[str] = field(default_factory=list)

    @property
    def all(self) -> Counts:
        return total(self.by_path.values())


@dataclass
class Evidence:
    plan: VerifyPlan
    target: Target
    started_at: float = 0.0
    ended_at: float = 0.0
    samples: list[ProbeSample] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # probe slots skipped: too many in flight
    probe_seconds: float = 0.0  # how long probing lasted (the window, plus any top-up)
    loop_lag_ms: list[float] = field(default_factory=list)  # how late the checker's own loop woke up
    serving: DeploymentInfo | None = None
    serving_version: VersionInfo | None = None
    deployments_error: str | None = None
    ws_runs: list[ProgressRun] = field(default_factory=list)
    ws_error: str | None = None  # the checker could not get a token (rate limited)
    ws_token_failures: list[str] = field(default_factory=list)  # token requests the service failed
    ws_token_source: str = ""
    bogus_run: ProgressRun | None = None
    canaries: dict[str, bytes | None] = field(default_factory=dict)
    canary_error: str | None = None
    analytics: AnalyticsEvidence | None = None
    analytics_error: str | None = None

    def samples_for(self, key: str) -> list[ProbeSample]:
        return [s for s in self.samples if s.label == key]

    def traffic(self) -> TrafficSplit | None:
        """The window's requests split into the users' and the probes' (None: analytics unread)."""
        if self.analytics is None:
            return None
        return split(self.analytics.by_path, self.samples)
