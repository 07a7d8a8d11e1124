"""`pytest -m triage`: watch the target, read-only, for the persistence rule's length, then walk the
checklist and the decision tree on what was seen.

The probes, the bogus-token handshakes and the canary reads are the drill's signals (all reads); the
time before the deployment comes from Analytics Engine (the runbook's "Check error rate (last 10
minutes)"), when it can be read and trusted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..clients.cloudflare import CloudflareApi, DeploymentInfo, VersionInfo
from ..clients.errors import TargetError
from ..config import SuiteSettings
from ..drill.signals import SignalFeed
from ..verify.collect import as_count
from ..stats import Rate
from .decision import Decision
from .detector import Assessment, Detector
from .triggers import Reading, TriggerEvaluator

MIGRATION_KEY = "migration/in-progress"


@dataclass
class Triage:
    assessment: Assessment
    decision: Decision
    serving: DeploymentInfo | None
    serving_version: VersionInfo | None
    observed_s: float
    notes: list[str]


async def _history_before(api: CloudflareApi, settings: SuiteSettings, deployed_at: float,
                          evaluator: TriggerEvaluator) -> dict[str, Reading] | None:
    """Error and 5xx rates in the window before the deployment, from Analytics Engine."""
    span = settings.seconds(settings.runbook.checklist.error_history_window_min)
    ago_end = max(1, math.ceil(time.time() - deployed_at))
    ago_start = ago_end + max(1, math.ceil(span))
    perf = settings.target.datasets.performance
    sql = (f"SELECT SUM(_sample_interval) AS requests, sumIf(_sample_interval, blob2 != 'N/A') AS errors, "
           f"sumIf(_sample_interval, double1 >= 500 AND blob2 != 'N/A') AS server_errors FROM {perf} "
           f"WHERE timestamp > NOW() - INTERVAL '{ago_start}' SECOND AND timestamp <= NOW() - INTERVAL '{ago_end}' SECOND "
           f"AND blob1 != '/health'")
    row = (await api.sql(sql)).rows
    if not row:
        return None
    requests = as_count(row[0].get("requests"))
    if requests < settings.runbook.statistics.min_samples:
        return None
    errors = as_count(row[0].get("errors"))
    server = as_count(row[0].get("server_errors"))
    t = evaluator.triggers
    im = settings.runbook.triggers.immediate
    ap = settings.runbook.triggers.approval
    return {
        "error_rate_spike": evaluator.rate_reading(t["error_rate_spike"], Rate(errors, requests), "error rate before the "
                                            "deployment", "requests", im.error_rate_above),
        "server_error_rate": evaluator.rate_reading(t["server_error_rate"], Rate(server, requests), "5xx rate before the "
                                             "deployment", "requests", im.server_error_rate_above),
        "moderate_error_rate": evaluator.rate_reading(t["moderate_error_rate"], Rate(errors, requests), "error rate before "
                                               "the deployment", "requests", ap.error_rate_from, ap.error_rate_to),
    }


def probe_rate_for(time_scale: float) -> float:
    """60 probes per runbook minute, whatever the time scale (1/s against a real target)."""
    return min(200.0, max(1.0, 1.0 / time_scale))


async def observe(settings: SuiteSettings, *, probe_rate: float | None = None,
                  progress: Callable[[str], None] = lambda _t: None) -> Triage:
    target = settings.target
    assert target.base_url and target.has_cloudflare and target.cloudflare_api_url and target.account_id
    assert target.worker
    notes: list[str] = []
    async with CloudflareApi(target.cloudflare_api_url, account_id=target.account_id, token=target.token,
                             worker=target.worker) as api:
        serving = await api.serving()
        serving_version = await api.version(serving.main_version_id)
        deployed_at = serving.created_at.timestamp()
        evaluator = TriggerEvaluator(settings.runbook)
        baseline = None
        try:
            baseline = await _history_before(api, settings, deployed_at, evaluator)
        except TargetError as exc:
            notes.append(f"the history before the deployment could not be read ({exc})")
        if baseline is None and not notes:
            notes.append("Analytics Engine holds too little traffic from before the deployment to compare")
        detector = Detector(settings.runbook, settings.time_scale, deployed_at=deployed_at, baseline=baseline)
        stop = asyncio.Event()
        rate = probe_rate or min(probe_rate_for(settings.time_scale), target.max_probe_rate)
        feed = SignalFeed(target, api, detector, rate=rate, seed=settings.seed, handshakes_per_s=rate * 0.16,
                          canary_every_s=settings.seconds(0.5))
        task = asyncio.create_task(feed.run(stop))
        started = time.time()
        window = detector.persistence_s
        try:
            while time.time() - started < window:
                await asyncio.sleep(min(1.0, window / 10))
                progress(f"watching: {window - (time.time() - started):.1f} s of {window:.1f} s left, "
                         f"{len(detector.samples)} probes")
        finally:
            stop.set()
            await task
        migration = None
        if target.kv_namespace_id:
            try:
                flag = await api.kv_get(target.kv_namespace_id, MIGRATION_KEY)
                migration = flag not in (None, b"", b"false")
            except TargetError as exc:
                notes.append(f"the migration flag could not be read ({exc})")
        wanted = target.known_stable
        stable = await api.clean_version(wanted) if wanted else None
        now = time.time()
        assessment = detector.assess(now, migration=migration, serving=serving_version, rollback_target=stable,
                                     rollback_target_from=f"the known stable version of {target.source}")
        return Triage(assessment, assessment.decision(), serving, serving_version, now - started, notes)
