"""`pytest -m triage`: watch the target, read-only, for the persistence rule's length, then walk the
checklist and the decision tree on what was seen.

The probes, the handshakes (real-token where a token can be had) and the canary reads are the live
feed of the signals layer; the rate triggers are judged on the users' traffic of the same window from
Analytics Engine, the probes beside it (``users.py``); the time before the deployment comes from
Analytics Engine too (the runbook's "Check error rate (last 10 minutes)"), when it can be read.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..clients.cloudflare import CloudflareApi, DeploymentInfo, VersionInfo
from ..clients.errors import TargetError
from ..config import SuiteSettings, runbook_minutes
from ..signals import analytics as queries
from ..signals.endpoints import DRILL_ENDPOINTS, HEALTH
from ..signals.feeds import LiveFeed
from ..signals.observations import MIGRATION_KEY
from ..signals.traffic import split, total
from ..stats import Rate
from .decision import Action, Decision
from .detector import Assessment, Detector
from .triggers import Reading, TriggerEvaluator
from .users import UsersView, judge_users


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
    ago_end = time.time() - deployed_at
    by_path = await queries.traffic(api, settings.target.datasets.performance, ago_end + span, ago_end)
    # what users call: /health (monitoring) is left out
    before = total(counts for path, counts in by_path.items() if path != "/health")
    requests, errors, server = before.requests, before.errors, before.server_errors
    if requests < settings.runbook.statistics.min_samples:
        return None
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


async def _users_view(api: CloudflareApi, settings: SuiteSettings, detector: Detector, started: float,
                      now: float) -> UsersView:
    """The rate triggers on the users' traffic of the window watched, and of its recent part: Analytics
    Engine from their first whole second (its timestamps have whole seconds), less the probes sent from
    then on."""
    evaluator = TriggerEvaluator(settings.runbook, anytime=detector.anytime)
    end = math.nextafter(now, math.inf)
    views = []
    for since in (started, max(started, now - detector.recent_s)):
        start = math.ceil(since)
        probes = evaluator.evaluate(detector.window(max(detector.deployed_at, start), end))
        try:
            by_path = await queries.traffic(api, settings.target.datasets.performance, from_epoch=start)
        except TargetError as exc:
            return judge_users(evaluator, None, probes, f"Analytics Engine could not be read ({exc}; {exc.what_to_do})")
        views.append(judge_users(evaluator, split(by_path, [s for s in detector.samples if s.at >= start]), probes))
    whole, recent = views
    whole.recent = recent.readings
    return whole


def probe_rate_for(settings: SuiteSettings) -> float:
    """The rate at which every trigger gets half again its minimum of samples within the persistence
    window, /health (the rarest endpoint of the mix) included; never above the target's limit."""
    persistence = settings.seconds(settings.runbook.checklist.not_transient_min)
    total = sum(e.weight for e in DRILL_ENDPOINTS)
    wanted = 1.5 * settings.runbook.statistics.min_samples * total / (HEALTH.weight * persistence)
    return min(math.ceil(wanted * 10) / 10, settings.target.max_probe_rate)


async def observe(settings: SuiteSettings, *, probe_rate: float | None = None, until_decided_s: float = 0.0,
                  progress: Callable[[str], None] = lambda _t: None) -> Triage:
    """Watch for the persistence rule's length, then decide. With ``until_decided_s``, while the decision
    is KEEP WATCHING, go on watching (and looking again: confidence sequences then, since the looks
    repeat) for at most that many more seconds."""
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
        # one look at the end of the window: fixed-sample intervals; watching until decided looks again and
        # again: confidence sequences (as the drill)
        detector = Detector(settings.runbook, settings.time_scale, deployed_at=deployed_at, baseline=baseline,
                            anytime=until_decided_s > 0)
        stop = asyncio.Event()
        rate = probe_rate or probe_rate_for(settings)
        feed = LiveFeed(target, api, detector, rate=rate, timebase=settings.timebase, stream="triage")
        detector.in_flight = feed.in_flight
        task = asyncio.create_task(feed.run(stop))
        started = time.time()
        window = detector.persistence_s
        try:
            while time.time() - started < window:
                await asyncio.sleep(settings.timebase.tick_s)
                progress(f"watching: {window - (time.time() - started):.1f} s of {window:.1f} s left, "
                         f"{len(detector.samples)} probes")
            migration = None
            if target.kv_namespace_id:
                try:
                    flag = await api.kv_get(target.kv_namespace_id, MIGRATION_KEY)
                    migration = flag not in (None, b"", b"false")
                except TargetError as exc:
                    notes.append(f"the migration flag could not be read ({exc})")
            wanted = target.known_stable
            stable = await api.clean_version(wanted) if wanted else None
            limit = started + window + until_decided_s
            while True:
                now = time.time()
                users = await _users_view(api, settings, detector, started, now)
                assessment = detector.assess(now, migration=migration, serving=serving_version, rollback_target=stable,
                                             rollback_target_from=f"the known stable version of {target.source}",
                                             judged=users.readings, judged_recent=users.recent, judged_since=started)
                decision = assessment.decision()
                if decision.action is not Action.KEEP_WATCHING or now >= limit:
                    break
                progress(f"in doubt, watching on ({limit - now:.1f} s of the limit left): {decision.sentence}")
                await asyncio.sleep(max(settings.timebase.tick_s, 1.0))
        finally:
            stop.set()
            await task
        if decision.action is Action.KEEP_WATCHING and until_decided_s > 0:
            notes.append(f"still undecided at the limit of {until_decided_s:.0f}s of watching on "
                         f"({runbook_minutes(until_decided_s, settings.time_scale):.0f} runbook minutes)")
        return Triage(assessment, decision, serving, serving_version, now - started, notes + users.notes)
