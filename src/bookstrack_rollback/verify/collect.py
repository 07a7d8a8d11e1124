"""Gather a verification run's evidence from the target, every window at once.

Probe traffic runs open-loop at the plan's rate for the window; meanwhile the serving version, the
canary records and the progress socket are checked; once the window has ended (plus the ingestion
lag) Analytics Engine is asked about the same window. Nothing here writes to the target except the
opt-in enrichment job that yields a socket token.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from faker import Faker

from ..clients import bookstrack
from ..clients.cloudflare import CloudflareApi
from ..clients.errors import RateLimited, TargetError, TimedOut, Unreachable
from ..config import Target
from .evidence import AnalyticsEvidence, Evidence
from .plan import EXTENSION, Endpoint, VerifyPlan
from .traffic import EXCLUDED_PATHS, Counts, total, probe_counts

Progress = Callable[[str], None]
# At most this many probes in flight: a slot that finds them all busy is skipped (and counted), so a
# slow target or a starved checker never builds a queue inside the checker that would inflate latency.
MAX_IN_FLIGHT = 160
RUNBOOK_CACHE_QUERY = ("SELECT (SUM(CASE WHEN blob3 = 'HIT' THEN 1 ELSE 0 END) / COUNT(*)) * 100 as hit_rate "
                       "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL 10 MINUTE")
KNOWN_RECORDS = (("hamlet", "william shakespeare"), ("the great gatsby", "f. scott fitzgerald"))
ENV_WS_JOB, ENV_WS_TOKEN = "BOOKSTRACK_WS_JOB", "BOOKSTRACK_WS_TOKEN"


def runbook_cache_query(dataset: str, window_s: float) -> str:
    """The runbook's query as written; only the dataset and, at a time scale, the interval change."""
    sql = RUNBOOK_CACHE_QUERY.replace("FROM books_api_performance", f"FROM {dataset}")
    if abs(window_s - 600) > 0.5:
        sql = sql.replace("INTERVAL 10 MINUTE", f"INTERVAL {max(1, math.ceil(window_s))} SECOND")
    return sql


class QueryMaker:
    """Seeded probe queries: fixed ones for the known records, faker ones for fresh (cold) probes."""

    def __init__(self, seed: int) -> None:
        self.faker = Faker()
        self.faker.seed_instance(seed)

    def _part(self, text: str) -> str:
        """A random piece of at least 4 characters of ``text`` (a different cache key each time)."""
        length = self.faker.random_int(min(4, len(text)), len(text))
        start = self.faker.random_int(0, len(text) - length)
        return text[start:start + length].strip() or text

    def params(self, endpoint: Endpoint) -> tuple[str, dict[str, str]]:
        if endpoint.endpoint == "health":
            return "/health", {}
        if endpoint.endpoint == "advanced":  # a known record, searched with ever-new words
            title, author = self.faker.random_element(KNOWN_RECORDS)
            return "/v1/search/advanced", {"title": self._part(title), "author": self._part(author)}
        query = endpoint.query
        if endpoint.fresh or query is None:
            if endpoint.endpoint == "isbn":
                query = self.faker.isbn13(separator="")
            else:
                query = self.faker.sentence(nb_words=3, variable_nb_words=False).rstrip(".")
        if endpoint.endpoint == "isbn":
            return "/v1/search/isbn", {"isbn": query}
        return "/v1/search/title", {"q": query}


def _schedule(plan: VerifyPlan) -> list[Endpoint]:
    cycle = [e for e in plan.endpoints for _ in range(e.weight)]
    random.Random(plan.seed).shuffle(cycle)
    return cycle


async def probe_traffic(plan: VerifyPlan, clients: bookstrack.ProbeClients, evidence: Evidence,
                        progress: Progress) -> None:
    cycle = _schedule(plan)
    queries = QueryMaker(plan.seed)
    interval = 1.0 / plan.probe_rate
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + plan.window_s
    next_report = start + 1.0

    async def one(endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        path, params = queries.params(endpoint)
        try:
            evidence.samples.append(await bookstrack.probe(client, endpoint.endpoint, path, params,
                                                           label=endpoint.key))
        finally:
            clients.release(client)

    def launch(endpoint: Endpoint) -> None:
        if not clients.available():
            evidence.skipped[endpoint.key] = evidence.skipped.get(endpoint.key, 0) + 1
            return
        task = asyncio.create_task(one(endpoint, clients.lease()), name=endpoint.key)
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    def report(left: float, what: str) -> None:
        nonlocal next_report
        if loop.time() >= next_report:
            next_report += 1.0
            errors = sum(s.is_error for s in evidence.samples)
            progress(f"probing: {left:.1f} s {what}, {len(evidence.samples)} answers, {errors} errors")

    k = 0
    while (due := start + k * interval) < end:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        launch(cycle[k % len(cycle)])
        k += 1
        report(end - loop.time(), f"of the {plan.window_s:.1f} s window left")
    # A starved checker (or a slow target) may have skipped slots, errors may have eaten answers: go on
    # with the same mix of endpoints (the cache figures depend on it) while an endpoint lacks the answers
    # a P95 needs, for at most one window more. Never a reason to pass: only to decide.
    deadline = end + plan.window_s * EXTENSION
    searches = [e for e in plan.endpoints if e.is_search]
    while (due := start + k * interval) < deadline:
        usable = {e.key: sum(1 for s in evidence.samples_for(e.key) if not s.is_error or s.outcome == "timeout")
                  + sum(1 for t in in_flight if t.get_name() == e.key) for e in searches}
        if all(count >= plan.latency_needed for count in usable.values()):
            break
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        launch(cycle[k % len(cycle)])
        k += 1
        report(deadline - loop.time(), "of extra time to reach enough answers per endpoint")
    evidence.probe_seconds = loop.time() - start
    if in_flight:
        await asyncio.wait(in_flight, timeout=plan.request_timeout_s + 1)


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


async def websocket(plan: VerifyPlan, target: Target, client: httpx.AsyncClient, evidence: Evidence) -> None:
    assert target.base_url is not None
    evidence.bogus_run = await bookstrack.run_progress_socket(
        target.base_url, "verify-bogus-job", str(uuid.UUID(int=random.Random(plan.seed).getrandbits(128))),
        timeout=plan.ws_timeout_s)
    rng = random.Random(plan.seed + 1)
    if target.request_ws_token:
        evidence.ws_token_source = "POST /v1/enrichment/batch (request_ws_token)"
        attempts = silent = 0
        while len(evidence.ws_runs) < plan.ws_sessions and attempts < plan.ws_token_attempts:
            attempts += 1
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            try:
                grant = await bookstrack.request_progress_token(
                    client, job_id, [{"title": "Hamlet", "author": "William Shakespeare"}])
            except RateLimited as exc:
                evidence.ws_error = f"{exc} ({exc.what_to_do})"
                return
            except (TimedOut, Unreachable) as exc:  # nobody answers: asking again only costs time
                evidence.ws_token_failures.append(str(exc))
                silent += 1
                if silent >= 2:
                    return
                continue
            except TargetError as exc:  # the service failed to issue a token: try again, within the limit
                evidence.ws_token_failures.append(str(exc))
                continue
            evidence.ws_runs.append(await bookstrack.run_progress_socket(
                target.base_url, grant.job_id, grant.token, timeout=plan.ws_timeout_s))
    elif os.environ.get(ENV_WS_JOB) and os.environ.get(ENV_WS_TOKEN):
        evidence.ws_token_source = f"{ENV_WS_JOB}/{ENV_WS_TOKEN}"
        evidence.ws_runs.append(await bookstrack.run_progress_socket(
            target.base_url, os.environ[ENV_WS_JOB], os.environ[ENV_WS_TOKEN], timeout=plan.ws_timeout_s))
    else:
        evidence.ws_error = None
        evidence.ws_token_source = ""


def as_count(value: Any) -> int:
    """Analytics Engine sends 64-bit integers as strings; sums of nothing as null."""
    if value is None:
        return 0
    return int(float(value))


def traffic_sql(dataset: str, span_s: int) -> str:
    """The window's requests path by path, as the worker recorded them: by status (double1), and the
    answered ones (blob2 'N/A') by cache status (blob3)."""
    excluded = " AND ".join(f"blob1 != '{path}'" for path in EXCLUDED_PATHS)
    return (f"SELECT blob1 AS path, SUM(_sample_interval) AS requests, "
            f"sumIf(_sample_interval, double1 < 400) AS ok, "
            f"sumIf(_sample_interval, double1 >= 400 AND double1 < 500) AS client_errors, "
            f"sumIf(_sample_interval, double1 >= 500) AS server_errors, "
            f"sumIf(_sample_interval, blob2 = 'N/A' AND blob3 = 'HIT') AS hits, "
            f"sumIf(_sample_interval, blob2 = 'N/A' AND blob3 != 'HIT') AS misses "
            f"FROM {dataset} WHERE timestamp > NOW() - INTERVAL '{span_s}' SECOND AND {excluded} GROUP BY blob1")


def counts_by_path(rows: tuple[dict[str, Any], ...]) -> dict[str, Counts]:
    return {str(r["path"]): Counts(*(as_count(r.get(c)) for c in ("requests", "ok", "client_errors",
                                                                  "server_errors", "hits", "misses")))
            for r in rows}


async def analytics(plan: VerifyPlan, target: Target, api: CloudflareApi, evidence: Evidence,
                    progress: Progress) -> None:
    """Ask Analytics Engine about the window, waiting out the ingestion lag until it holds at least the
    probes' own requests (never reading an empty window as healthy)."""
    perf, cache = target.datasets.performance, target.datasets.cache
    found = AnalyticsEvidence()
    sent = total(p for path, p in probe_counts(evidence.samples).items() if path not in EXCLUDED_PATHS).requests
    deadline = time.monotonic() + plan.analytics_lag_s + 2.0
    try:
        while True:
            span = max(1, math.ceil(time.time() - evidence.started_at + 1))
            sql = traffic_sql(perf, span)
            found.by_path = counts_by_path((await api.sql(sql)).rows)
            recorded = found.all.requests
            if recorded >= sent or time.monotonic() >= deadline:
                break
            progress(f"analytics: {recorded} data points ingested so far, the probes alone sent {sent}; "
                     "waiting for the ingestion lag")
            await asyncio.sleep(min(1.0, max(0.1, plan.analytics_lag_s / 10)))
        found.queries.append(sql)
        found.runbook_sql = runbook_cache_query(perf, plan.window_s)
        hit = await api.sql(found.runbook_sql)
        value = hit.scalar("hit_rate")
        found.runbook_hit_rate = None if value is None or value != value else float(value)
        tiers_sql = (f"SELECT index1 AS tier, SUM(_sample_interval) AS n FROM {cache} "
                     f"WHERE timestamp > NOW() - INTERVAL '{span}' SECOND GROUP BY index1")
        for r in (await api.sql(tiers_sql)).rows:
            found.cache_tiers[str(r["tier"])] = as_count(r["n"])
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
    probes = bookstrack.ProbeClients(target.base_url, size=MAX_IN_FLIGHT, timeout=timeout)
    async with httpx.AsyncClient(base_url=target.base_url, timeout=timeout, trust_env=False) as client:
        try:
            probing_done = asyncio.Event()

            async def probing() -> None:
                try:
                    await probe_traffic(plan, probes, evidence, progress)
                finally:
                    probing_done.set()

            jobs = [probing(), loop_lag(evidence, probing_done), websocket(plan, target, client, evidence)]
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
            await probes.aclose()
            if api is not None:
                await api.aclose()
    return evidence
