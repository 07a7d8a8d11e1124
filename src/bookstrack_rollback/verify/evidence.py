"""The evidence a verification run gathers; plain data, read by the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..clients.bookstrack import ProbeSample
from ..clients.cloudflare import DeploymentInfo, VersionInfo
from ..config import Target
from ..signals.observations import PendingProbe, WsSession
from ..signals.sessions import SocketSessions
from ..signals.traffic import Counts, TrafficSplit, split, total
from .plan import VerifyPlan


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
    pending: list[PendingProbe] = field(default_factory=list)  # probes unanswered when judged (the drill's looks)
    judged_at: float = 0.0  # epoch seconds of the look (the drill's); a verify run judges once, all answered
    skipped: dict[str, int] = field(default_factory=dict)  # probe slots skipped: too many in flight
    probe_seconds: float = 0.0  # how long probing lasted (the window, plus any top-up)
    loop_lag_ms: list[float] = field(default_factory=list)  # how late the checker's own loop woke up
    serving: DeploymentInfo | None = None
    serving_version: VersionInfo | None = None
    deployments_error: str | None = None
    sockets: SocketSessions = field(default_factory=SocketSessions)  # real-token progress sessions
    handshakes: list[WsSession] = field(default_factory=list)  # made-up-token handshakes (401 expected)
    real_handshakes: list[WsSession] = field(default_factory=list)  # real-token handshakes (the drill's feed)
    no_real_token: str | None = None  # why the drill's feed has no real-token handshakes
    canaries: dict[str, bytes | None] = field(default_factory=dict)
    canary_error: str | None = None
    analytics: AnalyticsEvidence | None = None
    analytics_error: str | None = None
    analytics_from: float | None = None  # epoch seconds where the analytics window starts, if after the probes'

    # where the probes and the handshakes write (signals.observations.ProbeSink, HandshakeSink)
    def probe(self, sample: ProbeSample) -> None:
        self.samples.append(sample)

    def handshake(self, session: WsSession) -> None:
        self.handshakes.append(session)

    def samples_for(self, key: str) -> list[ProbeSample]:
        return [s for s in self.samples if s.label == key]

    def traffic(self) -> TrafficSplit | None:
        """The window's requests split into the users' and the probes' (None: analytics unread)."""
        if self.analytics is None:
            return None
        mine = self.samples if self.analytics_from is None else [s for s in self.samples if s.at >= self.analytics_from]
        return split(self.analytics.by_path, mine)
