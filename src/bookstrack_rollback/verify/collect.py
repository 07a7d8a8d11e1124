"""Gather a verification run's evidence from the target, every window at once.

Probe traffic runs open-loop at the plan's rate for the window; meanwhile the serving version, the
canary records and the progress socket are checked; once the window has ended (plus the ingestion
lag) Analytics Engine is asked about the same window. Nothing here writes to the target except the
opt-in enrichment job that yields a socket token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from ..clients.cloudflare import CloudflareApi
from ..clients.errors import TargetError
from ..config import Target, stream_seed
from ..signals import analytics as queries
from ..signals.feeds import handshakes
from ..signals.probing import ProbeLoop
from ..signals.sessions import real_token_sessions
from ..signals.traffic import probe_counts, total
from .evidence import AnalyticsEvidence, Evidence
from .plan import EXTENSION, VerifyPlan

Progress = Callable[[str], None]


async def probe_traffic(plan: VerifyPlan, target: Target, evidence: Evidence, timeout: httpx.Timeout,
                        progress: Progress) -> None:
    """The plan's probes over the window, at its rate. A starved checker (or a slow target) may have
    skipped slots, errors may have eaten answers: the same mix goes on while a search endpoint lacks the
    answers a P95 needs, for at most ``EXTENSION`` of the window more. Never a reason to pass: only to
    decide."""
    assert target.base_url is not None
    loop = ProbeLoop(target.base_url, plan.endpoints, rate=plan.probe_rate, seed=stream_seed(plan.seed, "verify/probes"),
                     sink=evidence, timeout=timeout)
    searches = [e for e in plan.endpoints if e.is_search]
    next_report = 1.0

    def lacking() -> bool:
        usable = {e.key: sum(1 for s in evidence.samples_for(e.key) if not s.is_error or s.outcome == "timeout")
                  + loop.pending(e.key) for e in searches}
        return any(count < plan.latency_needed for count in usable.values())

    def keep_going(offset: float) -> bool:
        return offset < plan.window_s or (offset < plan.window_s * (1 + EXTENSION) and lacking())

    def tick(elapsed: float) -> None:
        nonlocal next_report
        if elapsed >= next_report:
            next_report += 1.0
            errors = sum(s.is_error for s in evidence.samples)
            left = (f"{plan.window_s - elapsed:.1f} s of the {plan.window_s:.1f} s window left" if elapsed < plan.window_s
                    else f"{plan.window_s * (1 + EXTENSION) - elapsed:.1f} s of extra time to reach enough answers "
                    "per endpoint")
            progress(f"probing: {left}, {len(evidence.samples)} answers, {errors} errors")

    evidence.probe_seconds = await loop.run(keep_going, tick=tick)
    evidence.skipped = dict(loop.skipped)


async def loop_lag(evidence: Evidence, done: asyncio.Event, every_s: float = 0.02) -> None:
    """How late the checker's own event loop wakes up: when it is starved (a loaded machine), its
    latency figures are the checker's, not the target's."""
    loop = asyncio.get_running_loop()
    while not done.is_set():
        before = loop.time()
        await asyncio.sleep(every_s)
        evidence.loop_lag_ms.append(max(0.0, (loop.time() - before - every_s) * 1000))


async def serving_version(api: CloudflareApi, evidence: Evidence) -> None:
    try:
        evidence.serving = await api.serving()
        evidence.serving_version = await api.version(evidence.serving.main_version_id)
    except TargetError as exc:
        evidence.deployments_error = f"{exc} ({type(exc).__name__}; {exc.what_to_do})"


async def canaries(api: CloudflareApi, target: Target, evidence: Evidence) -> None:
    if not target.kv_namespace_id:
        evidence.canary_error = f"{target.source} names no kv_namespace_id to read the canaries from"
        return
    try:
        for key, _expected in target.canaries:
            evidence.canaries[key] = await api.kv_get(target.kv_namespace_id, key)
    except TargetError as exc:
        evidence.canary_error = f"{exc} ({exc.what_to_do})"


async def bogus_handshakes(plan: VerifyPlan, target: Target, evidence: Evidence, done: asyncio.Event) -> None:
    """Made-up-token handshakes spread over the window (a healthy worker refuses each with 401)."""
    assert target.base_url is not None
    await handshakes(target.base_url, evidence, done, every_s=plan.window_s / plan.handshakes,
                     seed=stream_seed(plan.seed, "verify/handshakes"), timeout=plan.ws_timeout_s)


async def analytics(plan: VerifyPlan, target: Target, api: CloudflareApi, evidence: Evidence,
                    progress: Progress) -> None:
    """Ask Analytics Engine about the window, waiting out the ingestion lag until it holds at least the
    probes' own requests (never reading an empty window as healthy)."""
    perf, cache = target.datasets.performance, target.datasets.cache
    found = AnalyticsEvidence()
    sent = total(probe_counts(evidence.samples).values()).requests  # the probes never call the excluded paths
    deadline = time.monotonic() + plan.analytics_lag_s + 2.0
    try:
        while True:
            span = time.time() - evidence.started_at + 1
            found.by_path = await queries.traffic(api, perf, span)
            recorded = found.all.requests
            if recorded >= sent or time.monotonic() >= deadline:
                break
            progress(f"analytics: {recorded} data points ingested so far, the probes alone sent {sent}; "
                     "waiting for the ingestion lag")
            await asyncio.sleep(min(1.0, max(0.1, plan.analytics_lag_s / 10)))
        found.queries.append(queries.traffic_sql(perf, span))
        found.runbook_sql = queries.runbook_cache_query(perf, plan.window_s)
        value = (await api.sql(found.runbook_sql)).scalar("hit_rate")
        found.runbook_hit_rate = None if value is None or value != value else float(value)
        tiers_sql = queries.cache_tiers_sql(cache, span)
        for r in (await api.sql(tiers_sql)).rows:
            found.cache_tiers[str(r["tier"])] = queries.as_count(r["n"])
        found.queries += [found.runbook_sql, tiers_sql]
        evidence.analytics = found
    except TargetError as exc:
        evidence.analytics_error = f"{exc} ({exc.what_to_do})"


async def collect(plan: VerifyPlan, target: Target, progress: Progress = lambda _text: None) -> Evidence:
    """Run every measurement of a verification run concurrently and return the evidence."""
    assert target.base_url is not None, "the target has no base URL"
    evidence = Evidence(plan, target, started_at=time.time())
    timeout = httpx.Timeout(plan.request_timeout_s, connect=min(3.0, plan.request_timeout_s))
    api = None
    if target.has_cloudflare:
        assert target.cloudflare_api_url and target.account_id and target.worker
        api = CloudflareApi(target.cloudflare_api_url, account_id=target.account_id, token=target.token,
                            worker=target.worker, timeout=timeout)
    async with httpx.AsyncClient(base_url=target.base_url, timeout=timeout, trust_env=False) as client:
        try:
            probing_done = asyncio.Event()

            async def probing() -> None:
                try:
                    await probe_traffic(plan, target, evidence, timeout, progress)
                finally:
                    probing_done.set()

            jobs = [probing(), loop_lag(evidence, probing_done),
                    real_token_sessions(client, target.base_url, evidence.sockets, request_token=target.request_ws_token,
                                        sessions=plan.ws_sessions, attempts=plan.ws_token_attempts,
                                        timeout=plan.ws_timeout_s, seed=stream_seed(plan.seed, "verify/sessions")),
                    bogus_handshakes(plan, target, evidence, probing_done)]
            if api is not None:
                jobs += [serving_version(api, evidence), canaries(api, target, evidence)]
            else:
                reason = f"{target.describe()}: set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID"
                evidence.deployments_error = evidence.canary_error = evidence.analytics_error = reason
            await asyncio.gather(*jobs)
            evidence.ended_at = time.time()
            if api is not None:
                await analytics(plan, target, api, evidence, progress)
        finally:
            if api is not None:
                await api.aclose()
    return evidence
