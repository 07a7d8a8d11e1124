"""The verification checks: evidence in, one verdict with one sentence out (no I/O here).

Each check follows a runbook step (ROLLBACK_PROCEDURE.md, "Verification Steps") and corrects it where
REALITY.md shows the step would pass a broken service or fail a healthy one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..clients.bookstrack import OK
from ..config import Runbook
from ..signals.endpoints import Endpoint
from ..signals.latency import slow_share
from ..signals.observations import WsSession
from ..signals.sessions import SocketSessions
from ..signals.traffic import Counts, TrafficSplit
from ..stats import (
    Judgement,
    Rate,
    judge_above,
    judge_below,
    percent,
    quantile,
    threshold_percent,
)
from ..verdicts import CheckResult, checker_error, failed, inconclusive, passed
from .evidence import Evidence

STARVED_SHARE = 0.1  # a checker whose loop lags more than this share of a latency threshold cannot judge it
QUIRK_DOUBLE1 = "double1_500"
QUIRK_BLOB3 = "blob3_always_miss"
QUIRK_TEXT = {
    QUIRK_DOUBLE1: "books_api_performance.double1 reads 500 for requests the probes saw succeed "
                   "(REALITY.md: production's try/finally bug)",
    QUIRK_BLOB3: "books_api_performance.blob3 reads MISS for answers the probes saw cached "
                 "(REALITY.md: production never writes HIT)",
}


def _window(evidence: Evidence) -> str:
    # one look judges the whole window; the drill's looks judge the time since the rollback served
    seconds = evidence.probe_seconds if evidence.plan.anytime else max(evidence.plan.window_s, evidence.probe_seconds)
    minutes = f"{seconds / 60 / evidence.target.time_scale:.1f}".removesuffix(".0")
    if evidence.target.time_scale != 1:
        return f"the last {seconds:.0f}s ({minutes} runbook minutes)"
    return f"the last {minutes}m"


# --- signal sanity (decides whether analytics may be trusted) --------------------------------------

def _quirks(traffic: TrafficSplit) -> tuple[str, ...]:
    """The production quirks (REALITY.md) that the telemetry's shortfalls match."""
    found = []
    seen = traffic.all
    if traffic.status_lies and seen.mislabelled >= 0.9 * seen.answered:
        found.append(QUIRK_DOUBLE1)
    if any(s.measure == "hits" for s in traffic.shortfalls) and seen.hits == 0:
        found.append(QUIRK_BLOB3)
    return tuple(found)


def _lagging(name: str, traffic: TrafficSplit, evidence: Evidence, **measurements: object) -> CheckResult:
    return inconclusive(name, f"Analytics Engine shows {traffic.all.requests} data points for the "
                        f"{traffic.probes.requests} requests the probes alone made in {_window(evidence)}: it has not "
                        "ingested them yet, and an empty window is not a healthy one.",
                        "raise analytics_lag_s for this target and run again", **measurements)


def check_signal_sanity(evidence: Evidence) -> CheckResult:
    """Like with like: the window's recorded error codes, statuses and cache flags hold at least what the
    probes alone got (the users' requests can only add to them), and no answer without an error code
    carries an error status."""
    name = "signal sanity"
    traffic = evidence.traffic()
    if traffic is None:
        return checker_error(name, f"Analytics Engine could not be read: {evidence.analytics_error}.",
                             "fix the Cloudflare API access, then run again")
    if traffic.lagging:
        return _lagging(name, traffic, evidence)
    problems = traffic.problems()
    if problems:
        quirks = _quirks(traffic)
        named = "; ".join(QUIRK_TEXT[q] for q in quirks) or "no known quirk matches"
        return inconclusive(name, "telemetry does not record what the probes saw: "
                            + "; ".join(problems[:3]) + f". Known quirk: {named}.",
                            "judge this service by the probe-based checks; fix the telemetry writer", quirks)
    return passed(name, f"Analytics Engine records at least what the probes saw on every path, error by error and "
                  f"hit by hit, over {_window(evidence)} ({traffic.all.requests} data points: "
                  f"{traffic.probes.requests} the suite's probes, {traffic.users.requests} the users').")


# --- 1. health and version identity ----------------------------------------------------------------

def check_health(evidence: Evidence) -> CheckResult:
    name = "health check"
    samples = evidence.samples_for("health")
    if not samples:
        return inconclusive(name, "no /health probe was made.", "raise the probe rate or the window")
    bad = [s for s in samples if s.outcome != OK]
    if bad:
        kinds = sorted({s.detail or s.outcome for s in bad})
        return failed(name, f"{len(bad)} of {len(samples)} /health probes failed in {_window(evidence)} "
                      f"({'; '.join(kinds[:3])}); the runbook expects 200 with status \"ok\".",
                      "the rollback did not restore service: escalate (Recovery Plan)",
                      failures=len(bad), probes=len(samples))
    if len(samples) < evidence.plan.min_samples:
        return inconclusive(name, f"all {len(samples)} /health probes so far answered 200 with status \"ok\", fewer "
                            f"than the {evidence.plan.min_samples} needed to call the service healthy.",
                            "raise the probe rate or the window", probes=len(samples))
    shapes = sorted({s.detail for s in samples})[:1]
    return passed(name, f"all {len(samples)} /health probes answered 200 with status \"ok\" ({shapes[0]}).",
                  probes=len(samples))


def _matches(expected: str, version_id: str, tag: str | None) -> bool:
    return expected == version_id or (tag is not None and expected == tag)


def check_version_identity(evidence: Evidence) -> CheckResult:
    name = "version identity"
    plan = evidence.plan
    if evidence.serving is None or evidence.serving_version is None:
        return checker_error(name, f"the serving version could not be read from the deployments API: "
                             f"{evidence.deployments_error}.", "fix the Cloudflare API access, then run again")
    version = evidence.serving_version
    split = len(evidence.serving.versions) > 1
    note = ""
    health = [s.detail for s in evidence.samples_for("health") if not s.is_error]
    if health and "'1.0.0'" in health[0]:
        note = " (/health reports production's constant 1.0.0, which identifies nothing)"
    if plan.expected_version is None:
        return inconclusive(name, f"version {version.label} is serving{note}, but no rollback target is known.",
                            "pass --expect-version ID|TAG, or set known_stable for this target",
                            serving=version.label)
    if split:
        shares = ", ".join(f"{v} at {p}%" for v, p in evidence.serving.versions)
        return failed(name, f"traffic is split ({shares}); a rollback puts one version at 100%.",
                      "deploy the rollback target at 100%", serving=shares)
    if not _matches(plan.expected_version, version.id, version.tag):
        return failed(name, f"version {version.label} is serving, not the expected rollback target "
                      f"{plan.expected_version} (from {plan.expected_from}){note}.",
                      "the rollback did not take: check `wrangler deployments list` and roll back again",
                      serving=version.label, expected=plan.expected_version)
    return passed(name, f"version {version.label} is serving at 100%, the expected rollback target "
                  f"(from {plan.expected_from}){note}.", serving=version.label, expected=plan.expected_version)


# --- 2. error rate -----------------------------------------------------------------------------------

def _judge_rate(name: str, rate: Rate, what: str, threshold: float, evidence: Evidence, unit: str = "requests",
                next_fail: str = "") -> CheckResult:
    plan = evidence.plan
    text = rate.describe(what, unit, plan.confidence, plan.anytime)
    where = f"in {_window(evidence)}"
    measurements = {"measured": rate.value, "samples": rate.total, "threshold": threshold,
                    "window_s": plan.window_s}
    low, high = rate.bounds(plan.confidence, plan.anytime)
    verdict = judge_below(low, high, threshold)
    if rate.total < plan.min_samples and verdict is not Judgement.BREACH:
        # too few samples never PASS; a breach certain even on few samples still FAILs
        return inconclusive(name, f"{text} {where}: fewer than the {plan.min_samples} samples needed to judge "
                            f"against the {threshold_percent(threshold)} threshold.",
                            "raise the probe rate or the time scale, then run again", **measurements)
    if verdict is Judgement.WITHIN:
        return passed(name, f"{text} {where} is below the {threshold_percent(threshold)} threshold.", **measurements)
    if verdict is Judgement.BREACH:
        return failed(name, f"{text} {where} exceeds the {threshold_percent(threshold)} threshold.",
                      next_fail or "the issue persists after the rollback: it may not be deployment-related",
                      **measurements)
    return inconclusive(name, f"{text} {where} cannot be told apart from the {threshold_percent(threshold)} threshold.",
                        "run again with a longer window (--time-scale) for more samples", **measurements)


def _users_too_few(name: str, users: int, traffic: TrafficSplit, evidence: Evidence, probes_figure: str,
                   **measurements: object) -> CheckResult:
    return inconclusive(name, f"users sent only {users} requests in {_window(evidence)} (the other "
                        f"{traffic.probes.requests} of the window's {traffic.all.requests} are the suite's own probes): "
                        f"too few to judge what users see, and a verdict on the probes' traffic would measure the "
                        f"suite ({probes_figure}).", "judge by the probe-based checks, or run again when users are "
                        "active", **measurements)


def check_error_rate(evidence: Evidence, source: str, server_only: bool, runbook: Runbook) -> CheckResult:
    """From the probes: the share of the suite's requests that failed. From analytics: the users' share,
    the window's recorded statuses less the probes' own."""
    kind = "5xx rate" if server_only else "error rate"
    name = f"{kind} ({source})"
    threshold = runbook.verification.error_rate_below
    if source == "probes":
        samples = evidence.samples
        events = sum(s.is_server_error if server_only else s.is_error for s in samples)
        return _judge_rate(name, Rate(events, len(samples)), kind, threshold, evidence)
    traffic = evidence.traffic()
    if traffic is None:
        return checker_error(name, f"Analytics Engine could not be read: {evidence.analytics_error}.",
                             "fix the Cloudflare API access, or rely on the probe-based check")

    def rate(counts: Counts) -> Rate:
        return Rate(min(counts.server_errors if server_only else counts.errors, counts.requests), counts.requests)

    everyone, users = rate(traffic.all), rate(traffic.users)
    with_probes = f"all traffic, with the suite's {traffic.probes.requests} probes: {percent(everyone.value)}"
    if traffic.lagging:
        return _lagging(name, traffic, evidence)
    trustworthy = traffic.server_errors_trustworthy if server_only else traffic.errors_trustworthy
    if not trustworthy:
        quirks = tuple(q for q in _quirks(traffic) if q == QUIRK_DOUBLE1)
        named = "; ".join(QUIRK_TEXT[q] for q in quirks) or "; ".join(traffic.problems("status"))
        return inconclusive(name, f"Analytics Engine reads {everyone.describe(kind)}, which is not trustworthy: "
                            f"{named}.", "judge the error rate by the probes; fix the telemetry writer", quirks,
                            measured=everyone.value, samples=everyone.total)
    if users.total < evidence.plan.min_samples:
        return _users_too_few(name, users.total, traffic, evidence, f"{with_probes} over {everyone.total}",
                              users_requests=users.total, probe_requests=traffic.probes.requests)
    result = _judge_rate(name, users, f"users' {kind}", threshold, evidence)
    return replace(result, sentence=result.sentence.removesuffix(".") + f" ({with_probes} over {everyone.total}).",
                   measurements={**result.measurements, "all_traffic": everyone.value,
                                 "probe_requests": traffic.probes.requests})


# --- 3. response time ----------------------------------------------------------------------------

def _response_time_sequential(evidence: Evidence, endpoint: Endpoint, threshold_ms: float) -> CheckResult:
    """The drill's look: the share of this endpoint's requests slower than the threshold, unanswered ones
    included (``signals.latency``), against the 5% a P95 allows."""
    name = f"response time P95 [{endpoint.key}]"
    plan = evidence.plan
    share = slow_share(evidence.samples_for(endpoint.key), [p for p in evidence.pending if p.label == endpoint.key],
                       threshold_ms, evidence.judged_at)
    text = f"{share.describe(f'P95 of {endpoint.key}', plan.confidence, True)} in {_window(evidence)}"
    measurements = {"endpoint": endpoint.key, "slow_share": share.value, "samples": share.total,
                    "threshold_ms": threshold_ms}
    verdict = share.judge_p95_below(plan.confidence, True)
    if share.total < plan.min_samples and verdict is not Judgement.BREACH:
        return inconclusive(name, f"{text}: too few to judge a P95 against {threshold_ms:.0f} ms.",
                            "wait for more answers", **measurements)
    if verdict is Judgement.WITHIN:
        return passed(name, f"{text}: fewer than the 5% of a P95 over the threshold, so the P95 is under "
                      f"{threshold_ms:.0f} ms.", **measurements)
    if verdict is Judgement.BREACH:
        return failed(name, f"{text}: more than 5%, so the P95 exceeds the {threshold_ms:.0f} ms threshold.",
                      "still slow after the rollback: may be an external API issue (runbook step 3)", **measurements)
    return inconclusive(name, f"{text} cannot yet be told apart from the 5% of a P95 of {threshold_ms:.0f} ms.",
                        "wait for more answers", **measurements)


def check_response_time(evidence: Evidence, endpoint: Endpoint, runbook: Runbook) -> CheckResult:
    name = f"response time P95 [{endpoint.key}]"
    plan = evidence.plan
    threshold_ms = runbook.verification.p95_below_s * 1000
    if plan.anytime:
        return _response_time_sequential(evidence, endpoint, threshold_ms)
    samples = evidence.samples_for(endpoint.key)
    answered = [s for s in samples if not s.is_error]
    # a probe that timed out was at least that slow: it counts in the P95, as its timeout
    latencies = [s.latency_ms for s in samples if not s.is_error or s.outcome == "timeout"]
    estimate = quantile(latencies, 0.95, plan.confidence)
    cold = quantile([s.latency_ms for s in answered if s.cached is False] or [0.0], 0.95)
    warm = quantile([s.latency_ms for s in answered if s.cached], 0.95) if any(s.cached for s in answered) else None
    measurements = {"endpoint": endpoint.key, "measured_ms": estimate.value, "samples": estimate.count,
                    "threshold_ms": threshold_ms, "window_s": plan.window_s,
                    "cold_p95_ms": cold.value if any(s.cached is False for s in answered) else None,
                    "warm_p95_ms": warm.value if warm else None}
    split = ""
    if measurements["cold_p95_ms"] is not None or warm:
        parts = []
        if measurements["cold_p95_ms"] is not None:
            parts.append(f"cold {cold.value:.0f} ms")
        if warm:
            parts.append(f"warm {warm.value:.0f} ms")
        split = f" ({', '.join(parts)})"
    text = estimate.describe(f"P95 of {endpoint.key}", "answers", plan.confidence) + split
    skipped = evidence.skipped.get(endpoint.key, 0)
    if skipped:
        split += f"; {skipped} probe slots were skipped, too many probes already waiting for answers"
        text = estimate.describe(f"P95 of {endpoint.key}", "answers", plan.confidence) + split
        measurements["skipped_probes"] = skipped
    verdict = judge_below(estimate.low, estimate.high, threshold_ms)
    if len(latencies) < plan.min_samples and verdict is not Judgement.BREACH:
        return inconclusive(name, f"only {len(latencies)} of {len(samples)} probes of {endpoint.key} were answered "
                            f"or timed out in {_window(evidence)}: too few to judge a P95 against "
                            f"{threshold_ms:.0f} ms.", "fix the errors first (see the error-rate checks)",
                            **measurements)
    lag = quantile(evidence.loop_lag_ms, 0.95).value if len(evidence.loop_lag_ms) >= 20 else 0.0
    if verdict is not Judgement.WITHIN and lag > threshold_ms * STARVED_SHARE:
        return inconclusive(name, f"{text} in {_window(evidence)} is not the target's alone: the checker was starved "
                            f"(its event loop woke up {lag:.0f} ms late at P95), so these latencies cannot be judged "
                            f"against {threshold_ms:.0f} ms.", "run again on a less loaded machine, or with a "
                            "lower --probe-rate", checker_lag_p95_ms=lag, **measurements)
    if verdict is Judgement.WITHIN:
        return passed(name, f"{text} in {_window(evidence)} is under the {threshold_ms:.0f} ms threshold.",
                      **measurements)
    if verdict is Judgement.BREACH:
        return failed(name, f"{text} in {_window(evidence)} exceeds the {threshold_ms:.0f} ms threshold.",
                      "still slow after the rollback: may be an external API issue (runbook step 3)",
                      **measurements)
    if plan.capped and len(latencies) < plan.latency_needed:
        return inconclusive(name, f"{text} in {_window(evidence)} cannot be told apart from the {threshold_ms:.0f} ms "
                            f"threshold: this target's max_probe_rate of {plan.max_probe_rate:g}/s allowed only "
                            f"{len(latencies)} answers of {endpoint.key}, and a P95 needs {plan.latency_needed}.",
                            "raise max_probe_rate for this target if it can take more, or accept the other checks",
                            **measurements)
    return inconclusive(name, f"{text} in {_window(evidence)} cannot be told apart from the "
                        f"{threshold_ms:.0f} ms threshold.", "run again with a longer window for more samples",
                        **measurements)


def check_known_records(evidence: Evidence) -> CheckResult:
    """The runbook's critical queries must find their records (a provider outage answers 200, empty)."""
    name = "known records found"
    known = [s for s in evidence.samples if s.label in {e.key for e in evidence.plan.endpoints if e.known_good}]
    answered = [s for s in known if not s.is_error]
    if len(answered) < evidence.plan.min_samples:
        return inconclusive(name, f"only {len(answered)} answered searches for the known records.",
                            "fix the errors first (see the error-rate checks)")
    empty = Rate(sum(1 for s in answered if not s.results or s.provider == "none"), len(answered))
    plan = evidence.plan
    text = empty.describe("share of empty answers", "searches for the known records", plan.confidence, plan.anytime)
    verdict = judge_below(*empty.bounds(plan.confidence, plan.anytime), 0.05)
    if verdict is Judgement.BREACH:
        return failed(name, f"{text} in {_window(evidence)}: upstream providers are failing (provider \"none\", "
                      "empty lists, as production answers a provider timeout).",
                      "check the providers (Google Books, OpenLibrary, ISBNdb); a rollback will not fix them",
                      measured=empty.value, samples=empty.total)
    if verdict is Judgement.UNSURE:
        return inconclusive(name, f"{text} in {_window(evidence)} is too close to 5% to tell.",
                            "run again with a longer window")
    return passed(name, f"{text} in {_window(evidence)}: the runbook's critical queries find their records.",
                  measured=empty.value, samples=empty.total)


# --- 4. WebSocket --------------------------------------------------------------------------------

def check_websocket(sockets: SocketSessions) -> CheckResult:
    name = "websocket connectivity"
    if sockets.error:
        return checker_error(name, f"no progress-socket token could be obtained: {sockets.error}.",
                             "wait for the batch rate limit (10 per minute) or set BOOKSTRACK_WS_JOB/BOOKSTRACK_WS_TOKEN")
    if not sockets.runs and sockets.token_failures:
        count = len(sockets.token_failures)
        return inconclusive(name, f"the socket was not tested: all {count} requests for a progress-socket token "
                            f"failed ({sockets.token_failures[-1]}).",
                            "POST /v1/enrichment/batch is failing: see the error-rate checks; set "
                            "BOOKSTRACK_WS_JOB/BOOKSTRACK_WS_TOKEN to test the socket on its own")
    if not sockets.runs:
        return inconclusive(name, "no progress-socket token is configured, and creating an enrichment job is not "
                            "allowed for this target (request_ws_token = false).",
                            "set BOOKSTRACK_WS_JOB and BOOKSTRACK_WS_TOKEN to a real job's token, or opt in")
    runs = sockets.runs
    bad = [r for r in runs if not (r.completed or r.job_failed)]
    if bad:
        first = bad[0]
        seen = f"handshake {first.handshake_status}, messages {list(first.message_types)[:4]}, close {first.close_code}"
        return failed(name, f"{len(bad)} of {len(runs)} progress sessions failed ({first.detail or seen}); a healthy "
                      "socket answers 101, ready_ack, job_progress ... job_complete, then closes 1000.",
                      "Durable Object issue persists (runbook step 4): escalate", failures=len(bad), sessions=len(runs))
    slowest = max(r.seconds for r in runs)
    jobs_failed = sum(r.job_failed for r in runs)
    note = (f"; {jobs_failed} of the jobs themselves failed (error, close 1011 \"Job failed\"): the socket works, "
            "the failures count in the error-rate checks") if jobs_failed else ""
    return passed(name, f"{len(runs)} of {len(runs)} progress sessions (token from {sockets.token_source}) "
                  f"connected: 101, ready_ack, progress to the job's end and a clean close "
                  f"(slowest {slowest:.2f}s){note}.", sessions=len(runs), jobs_failed=jobs_failed)


def check_websocket_handshakes(evidence: Evidence, minimum: int = 3) -> CheckResult:
    """The drill's socket check: its real-token handshakes since the rollback serves, each 101 then
    ``ready_ack`` (REALITY.md's connectivity). A job of its own per session would exceed the batch
    endpoint's 10 a minute over a quarter's drills; the token the feed holds may open the socket again."""
    name = "websocket connectivity"
    sessions = evidence.real_handshakes
    if not sessions and evidence.no_real_token:
        return inconclusive(name, f"the socket was not tested with a real token: {evidence.no_real_token}.",
                            "set BOOKSTRACK_WS_JOB and BOOKSTRACK_WS_TOKEN to a real job's token, or opt in with "
                            "request_ws_token")
    if len(sessions) < minimum:
        return inconclusive(name, f"only {len(sessions)} real-token handshakes so far, of the {minimum} this check "
                            "needs.", "wait for more")
    bad = [w for w in sessions if not w.ok]
    if bad:
        return failed(name, f"{len(bad)} of {len(sessions)} real-token handshakes failed ({bad[-1].detail}); a healthy "
                      "socket answers 101, then ready_ack to ready.",
                      "Durable Object issue persists (runbook step 4): escalate", failures=len(bad), sessions=len(sessions))
    return passed(name, f"all {len(sessions)} real-token handshakes connected: 101, then ready_ack to ready.",
                  sessions=len(sessions))


def check_websocket_refuses_bogus_token(sessions: Sequence[WsSession], minimum: int = 1) -> CheckResult:
    """Handshakes with a made-up token (verify's, or the drill's since its rollback serves) must all get 401."""
    name = "websocket refuses a bogus token"
    if len(sessions) < minimum:
        return inconclusive(name, f"only {len(sessions)} handshakes with a made-up token so far, of the {minimum} "
                            "this check needs.", "run again (or wait for more)")
    accepted = [w for w in sessions if w.status == 101]
    if accepted:
        return failed(name, f"a made-up token was ACCEPTED (101) in {len(accepted)} of {len(sessions)} handshakes: the "
                      "progress socket does not check tokens. This is a security failure.",
                      "roll back and escalate to security")
    bad = [w for w in sessions if not w.ok]
    if bad:
        return failed(name, f"{len(bad)} of {len(sessions)} handshakes with a made-up token got "
                      f"{bad[-1].status or 'no answer'} instead of 401 ({bad[-1].detail}).",
                      "the socket endpoint is failing: Durable Object issue (runbook step 4)")
    return passed(name, f"all {len(sessions)} handshakes with a made-up token were refused with 401, as a healthy "
                  "worker refuses them (the runbook's `token=test` gets 401 too).")


# --- 5. cache --------------------------------------------------------------------------------------

def check_cache(evidence: Evidence, runbook: Runbook) -> CheckResult:
    """The users' cache hit rate: the window's recorded hits (blob3) less the probes' own; the runbook's
    query (all traffic) and the probes' ``cached`` flags are shown beside it."""
    name = "cache hit rate"
    threshold = runbook.verification.cache_hit_rate_above
    conf = evidence.plan.confidence
    answered = [s for s in evidence.samples if not s.is_error]
    probe_hits = Rate(sum(bool(s.cached) for s in answered), len(answered))
    anytime = evidence.plan.anytime
    cross = probe_hits.describe("probes' cached share", "answers", conf, anytime)
    traffic = evidence.traffic()
    if traffic is None or evidence.analytics is None:
        return checker_error(name, f"Analytics Engine could not be read: {evidence.analytics_error} "
                             f"(for reference, {cross}).", "fix the Cloudflare API access, then run again")
    analytics = evidence.analytics
    everyone = Rate(traffic.all.hits, traffic.all.answered)
    users = Rate(traffic.users.hits, traffic.users.answered)
    runbook_value = "no rows" if analytics.runbook_hit_rate is None else f"{analytics.runbook_hit_rate:.1f}%"
    with_probes = f"with the suite's {traffic.probes.answered} probes: {percent(everyone.value)}"
    measurements = {"measured": users.value, "samples": users.total, "threshold": threshold,
                    "all_traffic": everyone.value, "runbook_query_hit_rate": analytics.runbook_hit_rate,
                    "probe_cached_share": probe_hits.value}
    if traffic.lagging:
        return _lagging(name, traffic, evidence, **measurements)
    if not traffic.cache_trustworthy:
        quirks = tuple(q for q in _quirks(traffic) if q == QUIRK_BLOB3)
        named = "; ".join(QUIRK_TEXT[q] for q in quirks) or "; ".join(traffic.problems("cache"))
        tiers = ", ".join(f"{k} {v}" for k, v in sorted(analytics.cache_tiers.items())) or "empty"
        return inconclusive(name, f"the runbook's query reads {runbook_value}, but {named}; {cross}, "
                            f"and books_api_cache_metrics shows: {tiers}.",
                            "judge the cache by the probes and books_api_cache_metrics; fix blob3", quirks,
                            **measurements)
    detail = f"({with_probes}; the runbook's query: {runbook_value}; {cross})"
    if users.total < evidence.plan.min_samples:
        return _users_too_few(name, users.total, traffic, evidence, f"{with_probes} hits", **measurements)
    text = f"users {users.total} answered requests: {users.describe('cache hit rate', 'answers', conf, anytime)}"
    verdict = judge_above(*users.bounds(conf, anytime), threshold)
    if verdict is Judgement.WITHIN:
        return passed(name, f"{text} is above the {threshold_percent(threshold)} threshold {detail}.", **measurements)
    if verdict is Judgement.BREACH:
        return failed(name, f"{text} is below the {threshold_percent(threshold)} threshold {detail}.",
                      "cache issue not deployment-related (runbook step 5): check KV and the edge cache",
                      **measurements)
    return inconclusive(name, f"{text} cannot be told apart from the {threshold_percent(threshold)} threshold {detail}.",
                        "run again with a longer window", **measurements)


# --- 6. data integrity ---------------------------------------------------------------------------

def check_canary(evidence: Evidence, key: str, expected: str) -> CheckResult:
    name = f"data integrity [{key}]"
    if evidence.canary_error:
        return checker_error(name, f"the canary record could not be read: {evidence.canary_error}.",
                             "fix the Cloudflare API access (Workers KV Storage Read), then run again")
    if key not in evidence.canaries:
        return inconclusive(name, f"canary record {key!r} has not been read back yet.", "wait for the next read")
    value = evidence.canaries.get(key)
    if value is None:
        return failed(name, f"canary record {key!r} is gone from KV: data was lost.",
                      "restore it from backup (Recovery Plan, \"Data Recovery\") and find what deleted it")
    wanted = expected.encode("utf-8")
    if value != wanted:
        return failed(name, f"canary record {key!r} changed: expected {len(wanted)} bytes as configured, found "
                      f"{len(value)} bytes that differ.", "compare it with the backup; a rollback changes code, not data")
    return passed(name, f"canary record {key!r} reads back unchanged ({len(value)} bytes).")


# --- all of them -----------------------------------------------------------------------------------

def every_check(evidence: Evidence, runbook: Runbook) -> list[CheckResult]:
    """Every check of `pytest -m verify`, in the suite's order: what the drill's verification runs at
    each look. The socket is judged by full job sessions where the plan has them (verify), else by the
    live feed's real-token handshakes (the drill)."""
    plan = evidence.plan
    results = [check_health(evidence), check_version_identity(evidence)]
    results += [check_error_rate(evidence, source, server_only, runbook)
                for source in ("probes", "analytics") for server_only in (False, True)]
    results += [check_response_time(evidence, e, runbook) for e in plan.endpoints if e.is_search]
    results.append(check_known_records(evidence))
    results.append(check_websocket(evidence.sockets) if plan.ws_sessions else check_websocket_handshakes(evidence))
    results.append(check_websocket_refuses_bogus_token(evidence.handshakes, minimum=plan.handshakes))
    results.append(check_cache(evidence, runbook))
    results += [check_canary(evidence, key, expected) for key, expected in evidence.target.canaries]
    results.append(check_signal_sanity(evidence))
    return results
