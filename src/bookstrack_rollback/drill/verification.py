"""Verification after the drill's rollback: every check of `pytest -m verify` (``verify.checks.every_check``,
one implementation), on what the drill's live feed has seen since the rollback began serving, judged at
every look with confidence sequences (the plan's ``anytime``). Verified only when every check passes
at one look: the error control of each check holds however many looks it took.

What the drill's feed cannot give is judged from what it can, and says so: the progress socket by the
feed's real-token handshakes (a job of its own per look would break the batch endpoint's limit); a
canary not read back since the rollback is INCONCLUSIVE; Analytics Engine is read from the first whole
second after the rollback served (its timestamps have whole seconds: the second it began in holds the
bad version's requests).
"""

from __future__ import annotations

import math

from ..clients.cloudflare import CloudflareApi, DeploymentInfo, VersionInfo
from ..clients.errors import TargetError
from ..config import SuiteSettings
from ..signals import analytics as queries
from ..signals.endpoints import DRILL_ENDPOINTS
from ..triage.detector import Detector
from ..verdicts import CheckResult, Verdict
from ..verify import checks
from ..verify.evidence import AnalyticsEvidence, Evidence
from ..verify.plan import VerifyPlan

P95_ANSWERS = 100  # a P95 judged sequentially passes on about 93 answers without one slow: with margin
HANDSHAKES = 3  # real-token and made-up-token handshakes each, at least


def drill_probe_rate(settings: SuiteSettings) -> float:
    """The drill's probe rate: every search endpoint gets the answers a sequential P95 needs within 60% of
    the time-to-rollback budget, less the P95 threshold (a request is judged once that old); at least
    10/s, never above the target's max_probe_rate."""
    runbook = settings.runbook
    usable = 0.6 * settings.seconds(runbook.drill.time_to_rollback_budget_min) - runbook.verification.p95_below_s
    total = sum(e.weight for e in DRILL_ENDPOINTS)
    rarest = min(e.weight for e in DRILL_ENDPOINTS if e.is_search)
    wanted = P95_ANSWERS * total / rarest / max(usable, 1.0)
    return min(max(10.0, math.ceil(wanted)), settings.target.max_probe_rate)


def drill_plan(settings: SuiteSettings, expected_version: str, probe_rate: float) -> VerifyPlan:
    """Verify's plan for the drill's looks: its window is the runbook's error-rate window, its endpoints
    the live feed's."""
    runbook, target = settings.runbook, settings.target
    minutes = runbook.verification.error_rate_window_min
    timebase = settings.timebase
    return VerifyPlan(window_s=settings.seconds(minutes), runbook_window_min=minutes, probe_rate=probe_rate,
                      probe_rate_from="the drill's live feed", max_probe_rate=target.max_probe_rate,
                      endpoints=DRILL_ENDPOINTS, latency_samples=P95_ANSWERS, min_samples=runbook.statistics.min_samples,
                      confidence=runbook.statistics.confidence, expected_version=expected_version,
                      expected_from="the drill's rollback", ws_sessions=0, ws_timeout_s=timebase.request_timeout_s,
                      handshakes=HANDSHAKES, request_timeout_s=timebase.request_timeout_s,
                      analytics_lag_s=target.analytics_lag_s, seed=settings.seed, anytime=True)


class RecoveryWatch:
    """The evidence since the rollback serves, gathered again at each look, and every check on it."""

    def __init__(self, plan: VerifyPlan, settings: SuiteSettings, api: CloudflareApi, detector: Detector, *,
                 serving_at: float, serving: DeploymentInfo, serving_version: VersionInfo) -> None:
        self.plan, self.settings, self.api, self.detector = plan, settings, api, detector
        self.serving_at, self.serving, self.serving_version = serving_at, serving, serving_version

    def evidence(self, now: float) -> Evidence:
        """What the feed has seen since the rollback serves, up to ``now`` (no I/O)."""
        since, d = self.serving_at, self.detector
        evidence = Evidence(self.plan, self.settings.target, started_at=since, ended_at=now, judged_at=now,
                            samples=[s for s in d.samples if since <= s.at <= now],
                            pending=[p for p in d.in_flight() if since <= p.at <= now],
                            probe_seconds=now - since, serving=self.serving, serving_version=self.serving_version,
                            handshakes=[w for w in d.bogus if since <= w.at <= now],
                            real_handshakes=[w for w in d.ws if since <= w.at <= now],
                            no_real_token=d.no_real_token_reason)
        for read in d.canaries:
            if since <= read.at <= now:
                if read.intact is None:
                    evidence.canary_error = "the drill's last read of it failed"
                else:
                    evidence.canaries[read.key] = read.value
        return evidence

    async def look(self, now: float) -> list[CheckResult]:
        """Every check of verify at this look; Analytics Engine read from the first whole second after
        the rollback served (its timestamps have whole seconds), the probes' share of it from then too."""
        evidence = self.evidence(now)
        start = math.ceil(self.serving_at)
        if now > start:
            dataset = self.settings.target.datasets.performance
            try:
                evidence.analytics = AnalyticsEvidence(by_path=await queries.traffic(self.api, dataset, from_epoch=start))
                evidence.analytics.runbook_sql = queries.runbook_cache_query(dataset, now - start)
                value = (await self.api.sql(evidence.analytics.runbook_sql)).scalar("hit_rate")
                evidence.analytics.runbook_hit_rate = None if value is None or value != value else float(value)
                evidence.analytics_from = start
            except TargetError as exc:
                evidence.analytics_error = f"{exc} ({exc.what_to_do})"
        else:
            evidence.analytics_error = "its timestamps have whole seconds, and the first since the rollback served has not ended"
        return checks.every_check(evidence, self.settings.runbook)


def all_passed(results: list[CheckResult]) -> bool:
    return bool(results) and all(r.verdict is Verdict.PASS for r in results)
