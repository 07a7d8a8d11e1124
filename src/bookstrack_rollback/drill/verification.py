"""Verification after the drill's rollback: the verify suite's checks, judged sequentially on the
signals since the rollback began serving, so recovery is declared as soon as the data allows (and
never before each check has its samples)."""

from __future__ import annotations

import dataclasses

from ..clients.bookstrack import ProbeSample
from ..clients.cloudflare import DeploymentInfo, VersionInfo
from ..config import Runbook, Target
from ..signals.endpoints import Endpoint
from ..signals.observations import CanaryRead, WsSession
from ..verdicts import CheckResult, Verdict
from ..verify import checks
from ..verify.evidence import Evidence
from ..verify.plan import VerifyPlan

SEARCHES = Endpoint("all searches", "title", 1)


def _plan(runbook: Runbook, window_s: float, expected: str, seed: int) -> VerifyPlan:
    return VerifyPlan(window_s=window_s, runbook_window_min=0.0, probe_rate=1.0, probe_rate_from="the drill's feed",
                      max_probe_rate=1.0, endpoints=(SEARCHES,), latency_samples=0,
                      min_samples=runbook.statistics.min_samples, confidence=runbook.statistics.confidence,
                      expected_version=expected, expected_from="the drill's rollback", ws_sessions=0,
                      ws_timeout_s=5.0, handshakes=0, request_timeout_s=5.0, analytics_lag_s=0.0, seed=seed)


def judge_recovery(*, runbook: Runbook, target: Target, samples: list[ProbeSample], ws: list[WsSession],
                   canaries: list[CanaryRead], serving: DeploymentInfo, serving_version: VersionInfo,
                   expected_version: str, window_s: float, seed: int) -> list[CheckResult]:
    """Every check of the recovery; all PASS means verified."""
    evidence = Evidence(_plan(runbook, window_s, expected_version, seed), target, samples=list(samples),
                        serving=serving, serving_version=serving_version, probe_seconds=window_s)
    searches = Evidence(evidence.plan, target, probe_seconds=window_s,
                        samples=[dataclasses.replace(s, label=SEARCHES.key) for s in samples if s.endpoint != "health"])
    latest: dict[str, bool | None] = {}
    for read in canaries:
        latest[read.key] = read.intact
    evidence.canaries = {key: (expected.encode() if latest.get(key) else None) for key, expected in target.canaries}
    results = [
        checks.check_health(evidence),
        checks.check_version_identity(evidence),
        checks.check_error_rate(evidence, "probes", False, runbook),
        checks.check_error_rate(evidence, "probes", True, runbook),
        checks.check_response_time(searches, SEARCHES, runbook),
        checks.check_websocket_refuses_bogus_token(ws, minimum=3),
    ]
    for key, expected in target.canaries:
        if key in latest:
            results.append(checks.check_canary(evidence, key, expected))
    return results


def all_passed(results: list[CheckResult]) -> bool:
    return bool(results) and all(r.verdict is Verdict.PASS for r in results)
