"""verify/checks.py on synthetic evidence: every verdict each check can give, and its one sentence.

No network, no staging, no sleeps: the evidence is built here from typed samples (seeded randomness
only). Each check is driven to PASS, FAIL, INCONCLUSIVE and ERROR where it can reach them, and the
tests read the sentence for what an on-call engineer needs: the measured value, its interval, the
sample count, the threshold and the window. The REALITY.md quirks (double1 = 500, blob3 never HIT,
the constant /health version, a socket that accepts any token) each have a case of their own.
"""

from __future__ import annotations

import random
import re

import pytest

from bookstrack_rollback.clients.bookstrack import (
    BAD_ANSWER,
    CLIENT_ERROR,
    DEGRADED,
    OK,
    SERVER_ERROR,
    TIMEOUT,
    ProbeSample,
    ProgressRun,
)
from bookstrack_rollback.clients.cloudflare import DeploymentInfo, VersionInfo
from bookstrack_rollback.config import SuiteSettings, Target, load_runbook, resolve_target
from bookstrack_rollback.verdicts import CheckerError, CheckResult, InconclusiveError, Verdict
from bookstrack_rollback.verify import checks
from bookstrack_rollback.verify.evidence import AnalyticsEvidence, Evidence
from bookstrack_rollback.signals.endpoints import VERIFY_ENDPOINTS
from bookstrack_rollback.signals.observations import WsSession
from bookstrack_rollback.signals.sessions import SocketSessions
from bookstrack_rollback.signals.traffic import Counts, probe_counts, total
from bookstrack_rollback.verify.plan import PlanError, VerifyPlan, make_plan

SEED = 20251115
RUNBOOK = load_runbook()
CANARY_KEY = "canary/library/1"
CANARY_VALUE = '{"isbn":"9780743273565","title":"The Great Gatsby","shelf":"read"}'
WINDOW = "the last 12s (10 runbook minutes)"  # the cache query's 10 runbook minutes at the embedded scale 0.02
FROM_KNOWN_STABLE = "the known stable version of the embedded staging, started by the suite"

STABLE_ID = "9f1c2a7e-0000-4000-8000-000000000190"
BROKEN_ID = "4b7d9e11-0000-4000-8000-000000000200"
STABLE = VersionInfo(STABLE_ID, 7, "2025-11-14T09:00:00Z", "1.9.0", "Hotfix cache issue", "upload")
BROKEN = VersionInfo(BROKEN_ID, 8, "2025-11-15T09:00:00Z", "2.0.0", "Deploy v2.0 API changes", "upload")

ENDPOINTS = {e.key: e for e in VERIFY_ENDPOINTS}
CYCLE = [e.key for e in VERIFY_ENDPOINTS for _ in range(e.weight)]  # 9 probes: the plan's weights
KNOWN = [e.key for e in VERIFY_ENDPOINTS if e.known_good]
TITLE_HAMLET, TITLE_FRESH = "title:hamlet", "title:<faker>"


# --- builders ------------------------------------------------------------------------------------

def embedded_target(**changes: object) -> Target:
    """The embedded staging's target with every value the checks read pinned here, not in a file."""
    target = resolve_target("embedded", env={})
    return target.bound(**{"time_scale": 0.02, "known_stable": "1.9.0", "analytics_lag_s": 0.0,
                           "canaries": ((CANARY_KEY, CANARY_VALUE),), **changes})


def plan_for(target: Target | None = None, **options: object) -> VerifyPlan:
    return make_plan(SuiteSettings(target or embedded_target(), RUNBOOK, SEED), **options)  # type: ignore[arg-type]


def probe(label: str, outcome: str = OK, latency_ms: float = 100.0, *, cached: bool | None = None,
          provider: str | None = "google_books", results: int | None = 1, detail: str | None = None) -> ProbeSample:
    """One probe as bookstrack._classify would record it."""
    endpoint = ENDPOINTS[label].endpoint
    status = {OK: 200, BAD_ANSWER: 200, DEGRADED: 200, CLIENT_ERROR: 429, SERVER_ERROR: 500}.get(outcome)
    if outcome != OK:
        default = {TIMEOUT: "no answer within the timeout", SERVER_ERROR: "HTTP 500 internal_error",
                   CLIENT_ERROR: "HTTP 429 rate_limited", BAD_ANSWER: "a 200 without the data/metadata envelope",
                   DEGRADED: "status 'degraded', version '1.9.0'"}
        return ProbeSample(0.0, endpoint, label, outcome, status, latency_ms,
                           detail=default.get(outcome, outcome) if detail is None else detail)
    if endpoint == "health":
        return ProbeSample(0.0, endpoint, label, OK, 200, latency_ms,
                           detail="status 'ok', version '1.9.0'" if detail is None else detail)
    return ProbeSample(0.0, endpoint, label, OK, 200, latency_ms, cached=bool(cached), provider=provider,
                       results=results, detail=detail or "")


def traffic(n: int, *, errors: int = 0, error_outcome: str = SERVER_ERROR, cache: bool = True,
            health_version: str = "1.9.0", seed: int = SEED) -> list[ProbeSample]:
    """``n`` probes in the plan's proportions (health 1, hamlet 3, gatsby 3, faker title 1, faker isbn 1);
    ``errors`` of them, at seeded random places, fail with ``error_outcome``. With ``cache`` the
    known-record searches are answered from the cache after their first (cold) answer."""
    rng = random.Random(seed)
    failing = set(rng.sample(range(n), errors))
    seen: set[str] = set()
    samples = []
    for i in range(n):
        label = CYCLE[i % len(CYCLE)]
        if i in failing:
            samples.append(probe(label, error_outcome, rng.uniform(20, 80)))
        elif label == "health":
            samples.append(probe(label, latency_ms=rng.uniform(3, 20),
                                 detail=f"status 'ok', version {health_version!r}"))
        elif label in KNOWN:
            warm = cache and label in seen
            seen.add(label)
            samples.append(probe(label, latency_ms=rng.uniform(5, 40) if warm else rng.uniform(150, 600),
                                 cached=warm))
        else:  # a fresh faker query: always a cold cache, often nothing found
            samples.append(probe(label, latency_ms=rng.uniform(150, 600), cached=False,
                                 results=rng.choice([0, 1])))
    return samples


def users(requests: int, *, errors: int = 0, server: bool = True, hit_share: float = 0.7) -> Counts:
    """The users' requests of a window as the worker records them: ``errors`` failed (5xx, or 4xx),
    the answered ones cached at ``hit_share``."""
    answered = requests - errors
    hits = round(answered * hit_share)
    return Counts(requests, errors, errors if server else 0, hits, answered - hits)


HEALTHY_USERS = users(400, errors=4)


def analytics_for(samples: list[ProbeSample], *, of_users: Counts = HEALTHY_USERS, seen: float = 1.0,
                  double1_500: bool = False, blob3_always_miss: bool = False) -> AnalyticsEvidence:
    """Analytics Engine's view of the window: the probes' requests as the worker records them plus the
    users' (searches by title), scaled by the share ``seen`` already ingested, or written with the
    production quirks of REALITY.md."""
    by_path = probe_counts(samples)
    by_path["/v1/search/title"] = by_path.get("/v1/search/title", Counts()) + of_users
    recorded = {}
    for path, c in by_path.items():
        c = Counts(*(round(v * seen) for v in (c.requests, c.errors, c.server_errors, c.hits, c.misses)))
        if double1_500:  # the try/finally bug: double1 = 500 for every routed request, successes included
            c = Counts(c.requests, c.errors, c.errors, c.hits, c.misses, mislabelled=c.hits + c.misses)
        recorded[path] = c
    everyone = total(recorded.values())
    cache_tiers = {"edge_hit_fresh": everyone.hits, "api_miss": everyone.misses}
    if blob3_always_miss:  # production never writes HIT; the cache tiers still tell the truth
        recorded = {p: Counts(c.requests, c.errors, c.server_errors, 0, c.hits + c.misses, c.mislabelled)
                    for p, c in recorded.items()}
    hits = total(recorded.values()).hits
    return AnalyticsEvidence(by_path=recorded, runbook_hit_rate=100 * hits / everyone.requests if everyone.requests
                             else None, cache_tiers=cache_tiers)


def evidence(samples: list[ProbeSample] | None = None, *, plan: VerifyPlan | None = None,
             target: Target | None = None, **fields: object) -> Evidence:
    """Evidence of a healthy rollback to 1.9.0 unless ``fields`` say otherwise."""
    target = target or embedded_target()
    values: dict[str, object] = {
        "serving": DeploymentInfo("dep-3", "2025-11-15T10:00:00Z", ((STABLE_ID, 100),), "Rollback", "api"),
        "serving_version": STABLE,
        **fields,
    }
    return Evidence(plan=plan or plan_for(target), target=target, samples=list(samples or []),
                    **values)  # type: ignore[arg-type]


def assert_sentence(result: CheckResult, verdict: Verdict, *parts: str) -> None:
    """The verdict is exact; the sentence holds each part, reads as one sentence and leaks no
    placeholder (None, nan, empty parentheses)."""
    assert result.verdict is verdict, result.message
    for part in parts:
        assert part in result.sentence, f"{part!r} not in {result.sentence!r}"
    assert result.sentence.endswith("."), result.sentence
    assert not re.search(r"\bNone\b|\bnan\b|\(\s*\)", result.sentence), result.sentence
    if verdict is not Verdict.PASS:
        assert result.next_step, "a verdict other than PASS says what to do next"


# --- the builders themselves -------------------------------------------------------------------

def test_the_synthetic_plan_is_the_embedded_one():
    plan = plan_for()
    assert plan.window_s == pytest.approx(12.0)  # every window at once: the cache query's 10 runbook minutes
    assert (plan.min_samples, plan.confidence) == (30, 0.95)
    assert (plan.expected_version, plan.expected_from) == ("1.9.0", FROM_KNOWN_STABLE)
    samples = traffic(900, errors=9)
    assert [len([s for s in samples if s.label == e.key]) for e in VERIFY_ENDPOINTS] == [100, 300, 300, 100, 100]
    assert sum(s.is_error for s in samples) == 9
    assert traffic(900, errors=9) == samples  # seeded: the same evidence every run


def test_a_production_plan_is_polite_and_says_what_it_sends():
    """At time scale 1 with production's 2/s: ~900 probes over 10 minutes, under the limit."""
    plan = plan_for(embedded_target(time_scale=1.0, max_probe_rate=2.0))
    assert (plan.window_s, plan.probe_rate, plan.capped) == (600.0, 1.5, False)
    assert plan.traffic() == (
        "about 900 probe requests over 10.0 min at 1.5/s (enough for a P95 per endpoint; this target allows at "
        "most 2/s): health 100, title:hamlet 300, isbn:9780743273565 300, title:<faker> 100, isbn:<faker> 100; "
        "200 of them are fresh searches that reach the upstream providers (never cached)")


def test_a_plan_the_limit_cannot_feed_says_so_and_never_sends_more():
    plan = plan_for(embedded_target(time_scale=1.0, max_probe_rate=0.5))
    assert (plan.probe_rate, plan.capped) == (0.5, True)
    assert plan.probe_rate_from == "capped by max_probe_rate; 1.5/s would give every endpoint a P95"
    assert plan.traffic().endswith("At this rate title:<faker>, isbn:<faker> will get fewer than the 80 answers a "
                                   "P95 needs: their response-time checks will say INCONCLUSIVE")
    with pytest.raises(PlanError, match=r"--probe-rate 3/s exceeds the max_probe_rate of 0\.5/s of the embedded "
                                        r"staging, started by the suite: the suite never sends more"):
        plan_for(embedded_target(time_scale=1.0, max_probe_rate=0.5), probe_rate=3.0)
    # the P95 of an endpoint the limit starved cannot be bounded: INCONCLUSIVE with the reason
    samples = latencies(TITLE_FRESH, [100.0 + i for i in range(50)])
    result = checks.check_response_time(evidence(samples, plan=plan), ENDPOINTS[TITLE_FRESH], RUNBOOK)
    assert_sentence(result, Verdict.INCONCLUSIVE, "this target's max_probe_rate of 0.5/s allowed only 50 answers of "
                    "title:<faker>, and a P95 needs 80")
    assert "raise max_probe_rate" in result.next_step


def test_window_reads_in_minutes_at_real_time():
    target = embedded_target(time_scale=1.0)
    result = checks.check_health(evidence(traffic(270), target=target))
    assert_sentence(result, Verdict.PASS)
    failed = checks.check_health(evidence([probe("health", TIMEOUT, 5000)], target=target))
    assert_sentence(failed, Verdict.FAIL, "1 of 1 /health probes failed in the last 10m (")


# --- raise_unless_pass -------------------------------------------------------------------------

def test_only_pass_is_green_when_raised():
    sentence = "error rate 8.0% (95% CI 5.5-11.6%) over 312 requests."
    assert CheckResult("x", Verdict.PASS, sentence).raise_unless_pass() is None
    with pytest.raises(AssertionError, match=r"^FAIL: error rate 8\.0% .* Next: roll back$"):
        CheckResult("x", Verdict.FAIL, sentence, next_step="roll back").raise_unless_pass()
    with pytest.raises(InconclusiveError, match=r"^INCONCLUSIVE: .* Next: run again$"):
        CheckResult("x", Verdict.INCONCLUSIVE, sentence, next_step="run again").raise_unless_pass()
    with pytest.raises(CheckerError, match=r"^ERROR: .* Next: fix the token$"):
        CheckResult("x", Verdict.ERROR, sentence, next_step="fix the token").raise_unless_pass()


def test_raise_unless_pass_on_real_check_results():
    checks.check_health(evidence(traffic(270))).raise_unless_pass()
    with pytest.raises(AssertionError, match="canary record 'canary/library/1' is gone"):
        checks.check_canary(evidence(canaries={CANARY_KEY: None}), CANARY_KEY, CANARY_VALUE).raise_unless_pass()
    with pytest.raises(InconclusiveError, match="canary record 'canary/library/1' has not been read back yet"):
        checks.check_canary(evidence(canaries={}), CANARY_KEY, CANARY_VALUE).raise_unless_pass()
    with pytest.raises(InconclusiveError, match="no /health probe was made"):
        checks.check_health(evidence([])).raise_unless_pass()
    with pytest.raises(CheckerError, match="HTTP 403"):
        checks.check_canary(evidence(canary_error="HTTP 403 Authentication error"),
                            CANARY_KEY, CANARY_VALUE).raise_unless_pass()


# --- 1. health -----------------------------------------------------------------------------------

def test_health_needs_its_minimum_of_probes_to_pass():
    result = checks.check_health(evidence(traffic(90)))  # 10 health probes, all ok
    assert_sentence(result, Verdict.INCONCLUSIVE, "all 10 /health probes so far answered 200 with status \"ok\", "
                    "fewer than the 30 needed to call the service healthy")
    failed = checks.check_health(evidence(traffic(90) + [probe("health", TIMEOUT, 5000)]))
    assert failed.verdict is Verdict.FAIL  # one failure is enough, however few the probes


def test_health_passes_when_every_probe_answered_ok():
    samples = traffic(270)
    result = checks.check_health(evidence(samples))
    assert_sentence(result, Verdict.PASS, "all 30 /health probes answered 200 with status \"ok\"",
                    "status 'ok', version '1.9.0'")
    assert result.measurements == {"probes": 30}


def test_health_fails_on_any_failed_probe_and_names_what_failed():
    samples = traffic(270) + [probe("health", SERVER_ERROR), probe("health", TIMEOUT, 5000),
                              probe("health", DEGRADED)]
    result = checks.check_health(evidence(samples))
    assert_sentence(result, Verdict.FAIL, f"3 of 33 /health probes failed in {WINDOW}",
                    "HTTP 500 internal_error", "no answer within the timeout", "status 'degraded'",
                    "the runbook expects 200 with status \"ok\"")
    assert result.measurements == {"failures": 3, "probes": 33}
    assert "escalate" in result.next_step


def test_health_without_a_probe_is_inconclusive():
    result = checks.check_health(evidence([probe(TITLE_HAMLET)]))
    assert_sentence(result, Verdict.INCONCLUSIVE, "no /health probe was made")


# --- 1. version identity -------------------------------------------------------------------------

def test_version_matches_by_tag():
    result = checks.check_version_identity(evidence(traffic(90)))
    assert_sentence(result, Verdict.PASS, f"version 1.9.0 ({STABLE_ID}) is serving at 100%",
                    f"the expected rollback target (from {FROM_KNOWN_STABLE})")
    assert result.measurements == {"serving": f"1.9.0 ({STABLE_ID})", "expected": "1.9.0"}
    assert "1.0.0" not in result.sentence  # /health reports 1.9.0 here: nothing to note


def test_version_matches_by_id_without_a_tag():
    untagged = VersionInfo(STABLE_ID, 7, "2025-11-14T09:00:00Z", None, None, None)
    plan = plan_for(expect_version=STABLE_ID)
    result = checks.check_version_identity(evidence(traffic(90), plan=plan, serving_version=untagged))
    assert_sentence(result, Verdict.PASS, f"version {STABLE_ID} is serving at 100%", "(from --expect-version)")


def test_version_expected_from_the_last_drill_record():
    plan = plan_for(recorded_target=STABLE_ID)
    result = checks.check_version_identity(evidence(traffic(90), plan=plan))
    assert_sentence(result, Verdict.PASS, "(from the last drill's recorded rollback target)")


def test_version_mismatch_fails_and_names_both():
    serving = DeploymentInfo("dep-2", "2025-11-15T09:00:00Z", ((BROKEN_ID, 100),), None, "wrangler")
    result = checks.check_version_identity(evidence(traffic(90), serving=serving, serving_version=BROKEN))
    assert_sentence(result, Verdict.FAIL, f"version 2.0.0 ({BROKEN_ID}) is serving, not the expected rollback "
                    f"target 1.9.0 (from {FROM_KNOWN_STABLE})")
    assert "roll back again" in result.next_step


def test_split_deployment_fails_even_when_the_target_has_the_larger_share():
    serving = DeploymentInfo("dep-4", "2025-11-15T10:00:00Z", ((STABLE_ID, 90), (BROKEN_ID, 10)), None, "api")
    result = checks.check_version_identity(evidence(traffic(90), serving=serving))
    assert_sentence(result, Verdict.FAIL, f"traffic is split ({STABLE_ID} at 90%, {BROKEN_ID} at 10%)",
                    "a rollback puts one version at 100%")


def test_no_expected_version_is_inconclusive():
    target = embedded_target(known_stable=None)
    plan = plan_for(target)
    assert (plan.expected_version, plan.expected_from) == (None, "nothing")
    result = checks.check_version_identity(evidence(traffic(90), plan=plan, target=target))
    assert_sentence(result, Verdict.INCONCLUSIVE, f"version 1.9.0 ({STABLE_ID}) is serving",
                    "no rollback target is known")
    assert "--expect-version" in result.next_step


def test_deployments_api_error_is_an_error_not_a_failure():
    result = checks.check_version_identity(evidence(traffic(90), serving=None, serving_version=None,
                                                    deployments_error="HTTP 403 Authentication error (10000)"))
    assert_sentence(result, Verdict.ERROR, "could not be read from the deployments API",
                    "HTTP 403 Authentication error (10000)")


def test_health_constant_never_counts_as_version_identity():
    # production's /health always says 1.0.0: expecting "1.0.0" must not pass when 2.0.0 serves
    samples = traffic(90, health_version="1.0.0")
    serving = DeploymentInfo("dep-2", "2025-11-15T09:00:00Z", ((BROKEN_ID, 100),), None, "wrangler")
    plan = plan_for(expect_version="1.0.0")
    result = checks.check_version_identity(evidence(samples, plan=plan, serving=serving, serving_version=BROKEN))
    assert_sentence(result, Verdict.FAIL, f"version 2.0.0 ({BROKEN_ID}) is serving, not the expected rollback "
                    "target 1.0.0 (from --expect-version)",
                    "(/health reports production's constant 1.0.0, which identifies nothing)")


def test_health_constant_is_noted_when_the_deployments_api_confirms_the_target():
    result = checks.check_version_identity(evidence(traffic(90, health_version="1.0.0")))
    assert_sentence(result, Verdict.PASS, f"version 1.9.0 ({STABLE_ID}) is serving at 100%",
                    "(/health reports production's constant 1.0.0, which identifies nothing)")
    inconclusive = checks.check_version_identity(
        evidence(traffic(90, health_version="1.0.0"), plan=plan_for(embedded_target(known_stable=None))))
    assert_sentence(inconclusive, Verdict.INCONCLUSIVE, "constant 1.0.0, which identifies nothing")


# --- 2. error rate (probes) ----------------------------------------------------------------------

def error_rate(samples: list[ProbeSample], source: str = "probes", server_only: bool = False,
               **fields: object) -> CheckResult:
    return checks.check_error_rate(evidence(samples, **fields), source, server_only, RUNBOOK)


def test_error_rate_above_threshold_fails_with_its_interval():
    result = error_rate(traffic(312, errors=25))
    assert result.check == "error rate (probes)"
    assert result.sentence == (f"error rate 8.0% (95% CI 5.5-11.6%) over 312 requests in {WINDOW} "
                               "exceeds the 5% threshold.")
    assert result.verdict is Verdict.FAIL
    assert result.measurements == {"measured": pytest.approx(25 / 312), "samples": 312, "threshold": 0.05,
                                   "window_s": pytest.approx(12.0)}
    assert "may not be deployment-related" in result.next_step


def test_error_rate_below_threshold_passes():
    result = error_rate(traffic(312, errors=3))
    assert_sentence(result, Verdict.PASS, f"error rate 1.0% (95% CI 0.3-2.8%) over 312 requests in {WINDOW} "
                    "is below the 5% threshold")


def test_error_rate_interval_straddling_the_threshold_is_inconclusive():
    result = error_rate(traffic(312, errors=16))
    assert_sentence(result, Verdict.INCONCLUSIVE, "error rate 5.1% (95% CI 3.2-8.2%) over 312 requests",
                    "cannot be told apart from the 5% threshold")


def test_zero_errors_over_a_few_dozen_requests_is_not_yet_a_pass():
    # 0 of 50: the Wilson interval reaches 7.1%, above the 5% threshold
    result = error_rate(traffic(50))
    assert_sentence(result, Verdict.INCONCLUSIVE, "error rate 0.0% (95% CI 0.0-7.1%) over 50 requests",
                    "cannot be told apart from the 5% threshold")


@pytest.mark.parametrize("errors", [0, 1], ids=["all-ok", "one-failed"])
def test_too_few_requests_are_inconclusive_never_pass(errors):
    result = error_rate(traffic(29, errors=errors))
    assert_sentence(result, Verdict.INCONCLUSIVE, "over 29 requests", f"in {WINDOW}",
                    "fewer than the 30 samples needed to judge against the 5% threshold")
    assert result.measurements["samples"] == 29


def test_too_few_requests_still_fail_when_the_breach_is_certain():
    result = error_rate(traffic(29, errors=29))
    assert_sentence(result, Verdict.FAIL, "error rate 100.0% (95% CI 88.3-100.0%) over 29 requests",
                    "exceeds the 5% threshold")


def test_no_requests_at_all_is_inconclusive():
    result = error_rate([])
    assert_sentence(result, Verdict.INCONCLUSIVE, "error rate unknown (no requests)", "fewer than the 30 samples")


def test_5xx_rate_counts_only_server_errors():
    samples = traffic(312, errors=25, error_outcome=CLIENT_ERROR)
    assert error_rate(samples).verdict is Verdict.FAIL
    result = error_rate(samples, server_only=True)
    assert result.check == "5xx rate (probes)"
    assert_sentence(result, Verdict.PASS, "5xx rate 0.0% (95% CI 0.0-1.2%) over 312 requests",
                    "is below the 5% threshold")
    assert_sentence(error_rate(traffic(312, errors=25), server_only=True), Verdict.FAIL,
                    "5xx rate 8.0% (95% CI 5.5-11.6%) over 312 requests", "exceeds the 5% threshold")


# --- 2. error rate (analytics): the users' share -------------------------------------------------

def test_analytics_error_rate_judges_the_users_and_gives_both_figures():
    probes = traffic(312, errors=3)
    result = error_rate(probes, "analytics", analytics=analytics_for(probes, of_users=users(400, errors=4)))
    assert result.check == "error rate (analytics)"
    assert_sentence(result, Verdict.PASS, f"users' error rate 1.0% (95% CI 0.4-2.5%) over 400 requests in {WINDOW} "
                    "is below the 5% threshold", "(all traffic, with the suite's 312 probes: 1.0% over 712)")
    result = error_rate(probes, "analytics", server_only=True, analytics=analytics_for(probes, of_users=users(400, errors=32)))
    assert_sentence(result, Verdict.FAIL, "users' 5xx rate 8.0% (95% CI 5.7-11.1%) over 400 requests",
                    "exceeds the 5% threshold", "with the suite's 312 probes: 4.9% over 712")
    result = error_rate(probes, "analytics", analytics=analytics_for(probes, of_users=users(400, errors=20)))
    assert_sentence(result, Verdict.INCONCLUSIVE, "users' error rate 5.0%", "cannot be told apart from the 5% threshold")


def test_users_and_probes_pointing_opposite_ways_the_users_decide():
    """The probes alone (or the whole window, which they dominate) would say the opposite."""
    broken_probes = traffic(900, errors=270)  # the suite's own requests fail at 30%
    fine_users = error_rate(broken_probes, "analytics", analytics=analytics_for(broken_probes, of_users=users(400, errors=4)))
    assert_sentence(fine_users, Verdict.PASS, "users' error rate 1.0%", "with the suite's 900 probes: 21.1% over 1300")
    assert error_rate(broken_probes).verdict is Verdict.FAIL  # the probes' own check says what the probes saw
    fine_probes = traffic(900)
    sick_users = error_rate(fine_probes, "analytics", server_only=True,
                            analytics=analytics_for(fine_probes, of_users=users(400, errors=36)))
    assert_sentence(sick_users, Verdict.FAIL, "users' 5xx rate 9.0%", "with the suite's 900 probes: 2.8% over 1300")


def test_too_few_users_is_inconclusive_never_a_verdict_on_the_probes():
    probes = traffic(900, errors=270)
    result = error_rate(probes, "analytics", analytics=analytics_for(probes, of_users=users(12)))
    assert_sentence(result, Verdict.INCONCLUSIVE, f"users sent only 12 requests in {WINDOW} (the other 900 of the "
                    "window's 912 are the suite's own probes): too few to judge what users see")
    assert result.measurements == {"users_requests": 12, "probe_requests": 900}


def test_lagging_analytics_is_inconclusive():
    samples = traffic(312)
    result = error_rate(samples, "analytics", analytics=analytics_for(samples, seen=0.4))
    assert_sentence(result, Verdict.INCONCLUSIVE, "Analytics Engine shows 285 data points for the 312 requests the "
                    "probes alone made", "an empty window is not a healthy one")
    assert "analytics_lag_s" in result.next_step


def test_double1_500_spoils_the_5xx_rate_not_the_error_rate():
    """The error rate reads the worker's error code (blob2, truthful in production); the 5xx rate needs the
    status (double1), which production writes as 500 for every request."""
    samples = traffic(312)  # the probes saw no error at all
    analytics = analytics_for(samples, double1_500=True)
    result = error_rate(samples, "analytics", True, analytics=analytics)
    assert_sentence(result, Verdict.INCONCLUSIVE, "Analytics Engine reads 5xx rate 0.6% (95% CI 0.2-1.4%) over 712 "
                    "requests, which is not trustworthy",
                    "books_api_performance.double1 reads 500 for requests the probes saw succeed", "try/finally")
    assert result.quirks == (checks.QUIRK_DOUBLE1,) == ("double1_500",)
    assert "judge the error rate by the probes" in result.next_step
    assert_sentence(error_rate(samples, "analytics", False, analytics=analytics), Verdict.PASS,
                    "users' error rate 1.0%")
    # and the probes, which are right, pass
    assert [error_rate(samples, server_only=s).verdict for s in (False, True)] == [Verdict.PASS] * 2


def test_analytics_short_of_the_probes_own_errors_without_a_known_quirk_is_inconclusive():
    samples = traffic(312, errors=25, error_outcome=CLIENT_ERROR)  # 25 answers of 429
    wrong = analytics_for(samples)
    title = wrong.by_path["/v1/search/title"]  # the worker wrote the title searches' 429s down as answers
    probes_errors = probe_counts(samples)["/v1/search/title"].errors
    wrong.by_path["/v1/search/title"] = Counts(title.requests, title.errors - probes_errors, title.server_errors,
                                               title.hits, title.misses + probes_errors)
    result = error_rate(samples, "analytics", analytics=wrong)
    assert_sentence(result, Verdict.INCONCLUSIVE, "which is not trustworthy: Analytics Engine records 4 error answers "
                    f"on /v1/search/title where the suite's own probes alone got {probes_errors}")
    assert result.quirks == ()


def test_analytics_unreadable_is_an_error():
    result = error_rate(traffic(312), "analytics", analytics=None, analytics_error="HTTP 429 rate limited")
    assert_sentence(result, Verdict.ERROR, "Analytics Engine could not be read: HTTP 429 rate limited")
    assert "probe-based check" in result.next_step


# --- 3. response time --------------------------------------------------------------------------

def latencies(label: str, values: list[float], *, cached: bool = False) -> list[ProbeSample]:
    rng = random.Random(SEED)
    shuffled = list(values)
    rng.shuffle(shuffled)
    return [probe(label, latency_ms=v, cached=cached) for v in shuffled]


def response_time(samples: list[ProbeSample], key: str = TITLE_FRESH) -> CheckResult:
    return checks.check_response_time(evidence(samples), ENDPOINTS[key], RUNBOOK)


def test_p95_under_one_second_passes_with_its_interval():
    result = response_time(latencies(TITLE_FRESH, [100.0 + i for i in range(100)]))
    assert result.check == "response time P95 [title:<faker>]"
    assert result.sentence == (f"P95 of title:<faker> 194 ms (95% CI 189-199 ms) over 100 answers (cold 194 ms) "
                               f"in {WINDOW} is under the 1000 ms threshold.")
    assert result.verdict is Verdict.PASS
    assert result.measurements["samples"] == 100
    assert result.measurements["threshold_ms"] == 1000
    assert (result.measurements["cold_p95_ms"], result.measurements["warm_p95_ms"]) == (194, None)


def test_p95_over_one_second_fails():
    result = response_time(latencies(TITLE_FRESH, [1500.0 + i for i in range(100)]))
    assert_sentence(result, Verdict.FAIL, "P95 of title:<faker> 1594 ms (95% CI 1589-1599 ms) over 100 answers",
                    f"in {WINDOW} exceeds the 1000 ms threshold")
    assert "external API" in result.next_step


def test_p95_interval_straddling_the_threshold_is_inconclusive():
    values = [100.0] * 88 + [900.0 + 20 * i for i in range(12)]  # the top ranks run from 900 to 1120 ms
    result = response_time(latencies(TITLE_FRESH, values))
    assert_sentence(result, Verdict.INCONCLUSIVE,
                    "P95 of title:<faker> 1020 ms (95% CI 920-1120 ms) over 100 answers",
                    "cannot be told apart from the 1000 ms threshold")
    low, high = re.search(r"CI (\d+)-(\d+) ms", result.sentence).groups()  # type: ignore[union-attr]
    assert int(low) < 1000 < int(high)


def test_thirty_fast_answers_cannot_bound_a_p95():
    # the minimum sample count is met, but 30 samples have no order statistic above the P95 at 95%
    result = response_time(latencies(TITLE_FRESH, [50.0 + i for i in range(30)]))
    assert_sentence(result, Verdict.INCONCLUSIVE, "P95 of title:<faker> 78 ms", "unbounded ms) over 30 answers",
                    "cannot be told apart from the 1000 ms threshold")


def test_too_few_answers_for_a_p95_is_inconclusive():
    samples = latencies(TITLE_FRESH, [80.0] * 20) + [probe(TITLE_FRESH, SERVER_ERROR) for _ in range(80)]
    result = response_time(samples)
    assert_sentence(result, Verdict.INCONCLUSIVE, "only 20 of 100 probes of title:<faker> were answered "
                    f"or timed out in {WINDOW}: too few to judge a P95 against 1000 ms")
    assert "error-rate" in result.next_step


def test_a_target_that_never_answers_fails_on_latency_not_inconclusive():
    samples = [probe(TITLE_FRESH, TIMEOUT, 5000.0 + i) for i in range(60)]
    result = response_time(samples)
    assert_sentence(result, Verdict.FAIL, "over 60 answers", "exceeds the 1000 ms threshold")


def test_p95_reports_the_cold_and_warm_split():
    cold = latencies(TITLE_HAMLET, [400.0 + 2 * i for i in range(40)])
    warm = latencies(TITLE_HAMLET, [10.0 + i / 4 for i in range(200)], cached=True)
    result = response_time(cold + warm, TITLE_HAMLET)
    assert_sentence(result, Verdict.PASS, "over 240 answers (cold 474 ms, warm 57 ms)",
                    "is under the 1000 ms threshold")
    assert (result.measurements["cold_p95_ms"], result.measurements["warm_p95_ms"]) == (474, 57.25)
    only_warm = response_time(warm, TITLE_HAMLET)
    assert_sentence(only_warm, Verdict.PASS, "over 200 answers (warm 57 ms) in")
    assert only_warm.measurements["cold_p95_ms"] is None


def test_response_time_reads_only_its_endpoint():
    samples = traffic(900)  # 300 hamlet probes: 1 cold, 299 warm; other endpoints' latencies ignored
    result = response_time(samples, TITLE_HAMLET)
    assert_sentence(result, Verdict.PASS, "over 300 answers (cold", ", warm ")
    assert result.measurements["samples"] == 300


# --- 3b. known records ------------------------------------------------------------------------

def with_known_empty(samples: list[ProbeSample], count: int) -> list[ProbeSample]:
    """The first ``count`` known-record answers come back as production answers a provider timeout."""
    out, left = [], count
    for s in samples:
        if left and s.label in KNOWN and not s.is_error:
            s = probe(s.label, latency_ms=s.latency_ms, cached=False, provider="none", results=0)
            left -= 1
        out.append(s)
    return out


def test_known_records_found_passes():
    samples = traffic(312)  # 209 known-record searches; the faker queries find nothing half the time
    result = checks.check_known_records(evidence(samples))
    assert_sentence(result, Verdict.PASS, "share of empty answers 0.0% (95% CI 0.0-1.8%) over 209 searches for "
                    f"the known records in {WINDOW}: the runbook's critical queries find their records")
    assert result.measurements == {"measured": 0.0, "samples": 209}


def test_provider_none_fails_known_records():
    samples = with_known_empty(traffic(312), 60)
    result = checks.check_known_records(evidence(samples))
    assert_sentence(result, Verdict.FAIL, "share of empty answers 28.7% (95% CI 23.0-35.2%) over 209 searches",
                    "upstream providers are failing (provider \"none\", empty lists")
    assert "a rollback will not fix them" in result.next_step
    # provider "none" counts even when results were somehow listed
    odd = [probe(k, provider="none", results=3) for k in KNOWN for _ in range(50)]
    assert checks.check_known_records(evidence(odd)).verdict is Verdict.FAIL


def test_known_records_near_five_percent_is_inconclusive():
    samples = with_known_empty(traffic(312), 10)  # 10 of 209: 4.8%
    result = checks.check_known_records(evidence(samples))
    assert_sentence(result, Verdict.INCONCLUSIVE, "share of empty answers 4.8% (95% CI 2.6-8.6%) over 209 searches",
                    "is too close to 5% to tell")


def test_known_records_with_too_few_answers_is_inconclusive():
    samples = traffic(312, errors=280)
    answered = sum(1 for s in samples if s.label in KNOWN and not s.is_error)
    assert answered < 30
    result = checks.check_known_records(evidence(samples))
    assert_sentence(result, Verdict.INCONCLUSIVE, f"only {answered} answered searches for the known records")


# --- 4. WebSocket ------------------------------------------------------------------------------

HEALTHY_RUN = ("ready_ack", "job_progress", "job_progress", "job_complete")


def test_websocket_sessions_completing_pass():
    runs = [ProgressRun(101, HEALTHY_RUN, 1000, "", s) for s in (0.4, 1.25, 0.8)]
    result = checks.check_websocket(SocketSessions(runs, token_source="POST /v1/enrichment/batch"))
    assert result.sentence == ("3 of 3 progress sessions (token from POST /v1/enrichment/batch) connected: 101, "
                               "ready_ack, progress to the job's end and a clean close (slowest 1.25s).")
    assert result.verdict is Verdict.PASS


def test_a_failed_job_on_a_working_socket_is_connectivity():
    failed_job = ProgressRun(101, ("ready_ack", "job_progress", "error"), 1011, "Job failed", 0.3)
    runs = [ProgressRun(101, HEALTHY_RUN, 1000, "", 0.4), failed_job]
    result = checks.check_websocket(SocketSessions(runs, token_source="POST /v1/enrichment/batch"))
    assert result.verdict is Verdict.PASS
    assert "1 of the jobs themselves failed (error, close 1011 \"Job failed\")" in result.sentence
    no_ack = ProgressRun(101, ("error",), 1011, "Job failed", 0.3)
    assert checks.check_websocket(SocketSessions([no_ack], token_source="x")).verdict is Verdict.FAIL


def test_websocket_failed_session_fails_and_says_what_it_saw():
    runs = [ProgressRun(101, HEALTHY_RUN, 1000, "", 0.5),
            ProgressRun(101, ("ready_ack", "job_progress"), 1006, "", 0.5),
            ProgressRun(500, (), None, "", 0.1, "handshake refused with HTTP 500")]
    result = checks.check_websocket(SocketSessions(runs))
    assert_sentence(result, Verdict.FAIL, "2 of 3 progress sessions failed (handshake 101, messages "
                    "['ready_ack', 'job_progress'], close 1006)", "closes 1000")
    assert result.measurements == {"failures": 2, "sessions": 3}
    refused = checks.check_websocket(SocketSessions(runs[2:]))
    assert_sentence(refused, Verdict.FAIL, "1 of 1 progress sessions failed (handshake refused with HTTP 500)")
    assert "Durable Object" in refused.next_step


def test_websocket_without_a_token_is_inconclusive():
    result = checks.check_websocket(SocketSessions())
    assert_sentence(result, Verdict.INCONCLUSIVE, "no progress-socket token is configured")


def test_websocket_token_request_failing_is_an_error():
    result = checks.check_websocket(SocketSessions(error="POST /v1/enrichment/batch: rate limited, retry after 60 s"))
    assert_sentence(result, Verdict.ERROR, "no progress-socket token could be obtained: POST /v1/enrichment/batch: "
                    "rate limited, retry after 60 s")


def handshake(status: int | None, detail: str = "") -> WsSession:
    return WsSession(0.0, status == 401, detail, status)


def test_bogus_token_refused_with_401_passes():
    result = checks.check_websocket_refuses_bogus_token([handshake(401)] * 3)
    assert_sentence(result, Verdict.PASS, "all 3 handshakes with a made-up token were refused with 401")


def test_bogus_token_accepted_is_a_security_failure():
    result = checks.check_websocket_refuses_bogus_token([handshake(401), handshake(101)])
    assert_sentence(result, Verdict.FAIL, "a made-up token was ACCEPTED (101) in 1 of 2 handshakes", "security failure")
    assert "security" in result.next_step


@pytest.mark.parametrize("session, seen", [
    (handshake(500, "handshake refused with HTTP 500"),
     "1 of 2 handshakes with a made-up token got 500 instead of 401 (handshake refused with HTTP 500)"),
    (handshake(None, "ConnectionRefusedError: [Errno 111] Connection refused"),
     "got no answer instead of 401 (ConnectionRefusedError: [Errno 111] Connection refused)"),
], ids=["500", "no-answer"])
def test_bogus_token_neither_refused_nor_accepted_fails(session, seen):
    result = checks.check_websocket_refuses_bogus_token([handshake(401), session])
    assert_sentence(result, Verdict.FAIL, seen)
    assert "Durable Object" in result.next_step


def test_too_few_bogus_handshakes_are_inconclusive():
    assert_sentence(checks.check_websocket_refuses_bogus_token([]), Verdict.INCONCLUSIVE,
                    "only 0 handshakes with a made-up token so far, of the 1 this check needs")
    assert checks.check_websocket_refuses_bogus_token([handshake(401)] * 2, minimum=3).verdict is Verdict.INCONCLUSIVE


# --- 5. cache ----------------------------------------------------------------------------------

def cache(samples: list[ProbeSample], analytics: AnalyticsEvidence | None, **fields: object) -> CheckResult:
    return checks.check_cache(evidence(samples, analytics=analytics, **fields), RUNBOOK)


def test_cache_hit_rate_of_the_users_above_half_passes_with_every_figure_beside_it():
    samples = traffic(312)  # 207 of 312 probe answers cached: the known-record searches after their first
    result = cache(samples, analytics_for(samples, of_users=users(400, hit_share=0.7)))
    assert_sentence(result, Verdict.PASS, "users 400 answered requests: cache hit rate 70.0% (95% CI",
                    "is above the 50% threshold", "(with the suite's 312 probes: 68.4%; the runbook's query: 68.4%; "
                    "probes' cached share 66.3% (95% CI 60.9-71.4%) over 312 answers)")
    assert result.measurements["threshold"] == 0.5


@pytest.mark.parametrize("probes_cached, users_hits, verdict", [
    (False, 0.65, Verdict.PASS),  # the probes alone read 0%: the users, at 65%, pass
    (True, 0.40, Verdict.FAIL),  # the probes alone read 66%: the users, at 40%, fail
], ids=["users-65-probes-0", "users-40-probes-66"])
def test_cache_judges_the_users_where_the_probes_point_the_other_way(probes_cached, users_hits, verdict):
    samples = traffic(900, cache=probes_cached)
    result = cache(samples, analytics_for(samples, of_users=users(300, hit_share=users_hits)))
    assert_sentence(result, verdict, f"users 300 answered requests: cache hit rate {users_hits * 100:.1f}%")
    everyone = result.measurements["all_traffic"]
    assert (everyone > 0.5) is (verdict is Verdict.FAIL), "the whole window alone would have said the opposite"


def test_cache_off_fails():
    samples = traffic(312, cache=False)
    result = cache(samples, analytics_for(samples, of_users=users(400, hit_share=0.0)))
    assert_sentence(result, Verdict.FAIL, "users 400 answered requests: cache hit rate 0.0% (95% CI 0.0-1.0%) over "
                    "400 answers is below the 50% threshold")
    assert "not deployment-related" in result.next_step


def test_cache_hit_rate_near_half_is_inconclusive():
    samples = traffic(312)
    result = cache(samples, analytics_for(samples, of_users=users(100, hit_share=0.5)))
    assert_sentence(result, Verdict.INCONCLUSIVE, "cache hit rate 50.0% (95% CI 40.4-59.6%) over 100 answers",
                    "cannot be told apart from the 50% threshold")


def test_cache_with_too_few_users_is_inconclusive():
    samples = traffic(312)
    result = cache(samples, analytics_for(samples, of_users=users(20, hit_share=1.0)))
    assert_sentence(result, Verdict.INCONCLUSIVE, "users sent only 20 requests", "the suite's own probes")


def test_blob3_never_hit_makes_the_runbook_query_untrustworthy():
    samples = traffic(312)
    result = cache(samples, analytics_for(samples, blob3_always_miss=True))
    assert_sentence(result, Verdict.INCONCLUSIVE, "the runbook's query reads 0.0%, but books_api_performance.blob3 "
                    "reads MISS for answers the probes saw cached",
                    "probes' cached share 66.3% (95% CI 60.9-71.4%) over 312 answers",
                    "books_api_cache_metrics shows: api_miss 224, edge_hit_fresh 484")
    assert result.quirks == (checks.QUIRK_BLOB3,) == ("blob3_always_miss",)
    assert "fix blob3" in result.next_step


def test_lagging_analytics_leaves_the_cache_inconclusive():
    samples = traffic(312)
    result = cache(samples, analytics_for(samples, of_users=Counts(), seen=0.2))
    assert_sentence(result, Verdict.INCONCLUSIVE, "Analytics Engine shows 63 data points for the 312 requests the "
                    "probes alone made")


def test_cache_unreadable_analytics_is_an_error_with_the_probes_for_reference():
    result = cache(traffic(312), None, analytics_error="HTTP 403 Authentication error")
    assert_sentence(result, Verdict.ERROR, "Analytics Engine could not be read: HTTP 403 Authentication error "
                    "(for reference, probes' cached share 66.3%")


def test_runbook_query_without_rows_says_so():
    samples = traffic(312)
    analytics = analytics_for(samples)
    analytics.runbook_hit_rate = None
    assert_sentence(cache(samples, analytics), Verdict.PASS, "the runbook's query: no rows;")


# --- 6. data integrity -------------------------------------------------------------------------

def canary(stored: bytes | None, *, expected: str = CANARY_VALUE, **fields: object) -> CheckResult:
    return checks.check_canary(evidence(canaries={CANARY_KEY: stored}, **fields), CANARY_KEY, expected)


def test_canary_unchanged_passes():
    result = canary(CANARY_VALUE.encode())
    assert_sentence(result, Verdict.PASS, f"canary record 'canary/library/1' reads back unchanged "
                    f"({len(CANARY_VALUE)} bytes)")


def test_canary_gone_fails():
    result = canary(None)
    assert_sentence(result, Verdict.FAIL, "canary record 'canary/library/1' is gone from KV: data was lost")
    assert "restore it from backup" in result.next_step


def test_canary_changed_fails_with_both_sizes():
    result = canary(CANARY_VALUE.replace('"read"', '"to-read"').encode())
    assert_sentence(result, Verdict.FAIL, f"canary record 'canary/library/1' changed: expected {len(CANARY_VALUE)} "
                    f"bytes as configured, found {len(CANARY_VALUE) + 3} bytes that differ")


def test_canary_sizes_are_counted_in_bytes():
    # "Café" is 4 characters but 5 bytes in UTF-8; a stored "Cafe" (4 bytes) differs in size
    result = canary(b'{"title":"Cafe"}', expected='{"title":"Café"}')
    assert_sentence(result, Verdict.FAIL, "expected 17 bytes as configured, found 16 bytes that differ")
    assert canary('{"title":"Café"}'.encode(), expected='{"title":"Café"}').verdict is Verdict.PASS


def test_canary_unreadable_is_an_error():
    result = canary(None, canary_error="HTTP 403 Authentication error")
    assert_sentence(result, Verdict.ERROR, "the canary record could not be read: HTTP 403 Authentication error")


# --- signal sanity -----------------------------------------------------------------------------

def sanity(samples: list[ProbeSample], analytics: AnalyticsEvidence | None, **fields: object) -> CheckResult:
    return checks.check_signal_sanity(evidence(samples, analytics=analytics, **fields))


def test_agreeing_telemetry_passes():
    samples = traffic(312, errors=3)
    result = sanity(samples, analytics_for(samples))
    assert_sentence(result, Verdict.PASS, "Analytics Engine records at least what the probes saw on every path, "
                    f"error by error and hit by hit, over {WINDOW} (712 data points: 312 the suite's probes, 400 "
                    "the users')")


def test_lagging_telemetry_is_inconclusive():
    samples = traffic(312)
    result = sanity(samples, analytics_for(samples, of_users=Counts(), seen=0.4))
    assert_sentence(result, Verdict.INCONCLUSIVE, "Analytics Engine shows 125 data points for the 312 requests the "
                    f"probes alone made in {WINDOW}", "an empty window is not a healthy one")
    empty = sanity(samples, AnalyticsEvidence())
    assert_sentence(empty, Verdict.INCONCLUSIVE, "shows 0 data points for the 312 requests")


def test_double1_500_is_named():
    samples = traffic(312)
    result = sanity(samples, analytics_for(samples, double1_500=True))
    assert_sentence(result, Verdict.INCONCLUSIVE, "telemetry does not record what the probes saw",
                    "Analytics Engine records 708 of 708 answers without an error code with an error status (double1 "
                    "of 400 or more)",
                    "Known quirk: books_api_performance.double1 reads 500 for requests the probes saw succeed")
    assert result.quirks == ("double1_500",)


def test_blob3_always_miss_is_named():
    samples = traffic(312)
    result = sanity(samples, analytics_for(samples, blob3_always_miss=True))
    assert_sentence(result, Verdict.INCONCLUSIVE, "Analytics Engine records 0 cache hits on /v1/search/isbn where the "
                    "suite's own probes alone got 103", "Known quirk: books_api_performance.blob3 reads MISS")
    assert result.quirks == ("blob3_always_miss",)


def test_both_production_quirks_at_once():
    samples = traffic(312)
    result = sanity(samples, analytics_for(samples, double1_500=True, blob3_always_miss=True))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.quirks == ("double1_500", "blob3_always_miss")
    assert "double1 reads 500" in result.sentence and "blob3 reads MISS" in result.sentence


def test_users_differing_from_the_probes_is_not_a_telemetry_fault():
    """Users may see what the probes do not (9% 5xx, no cache): the telemetry told the truth."""
    samples = traffic(312)
    assert sanity(samples, analytics_for(samples, of_users=users(400, errors=36, hit_share=0.0))).verdict is Verdict.PASS


def test_a_degraded_health_fails_the_health_check_and_nothing_else():
    """/health answers 200 with status "degraded": the worker records 200s, the probes saw 200s."""
    samples = [probe("health", DEGRADED) if s.endpoint == "health" else s for s in traffic(312)]
    ev = evidence(samples, analytics=analytics_for(samples))
    assert_sentence(checks.check_health(ev), Verdict.FAIL, "35 of 35 /health probes failed", "status 'degraded'")
    assert checks.check_signal_sanity(ev).verdict is Verdict.PASS
    assert [checks.check_error_rate(ev, source, only_5xx, RUNBOOK).verdict for source in ("probes", "analytics")
            for only_5xx in (False, True)] == [Verdict.PASS] * 4


def test_unreadable_telemetry_is_an_error():
    result = sanity(traffic(312), None, analytics_error="HTTP 400 syntax error at position 12")
    assert_sentence(result, Verdict.ERROR, "Analytics Engine could not be read: HTTP 400 syntax error at position 12")


@pytest.mark.parametrize("seed", range(5))
def test_a_healthy_service_is_never_failed_on_quirky_telemetry(seed):
    """The point of REALITY.md: production's telemetry must neither fail nor pass a healthy worker."""
    samples = traffic(312, errors=2, seed=seed)
    quirky = analytics_for(samples, double1_500=True, blob3_always_miss=True)
    ev = evidence(samples, analytics=quirky)
    verdicts = [checks.check_error_rate(ev, "analytics", only_5xx, RUNBOOK).verdict for only_5xx in (False, True)]
    verdicts += [checks.check_cache(ev, RUNBOOK).verdict, checks.check_signal_sanity(ev).verdict]
    # the error code (blob2) still tells the truth; the status and the cache columns do not
    assert verdicts == [Verdict.PASS] + [Verdict.INCONCLUSIVE] * 3
    assert [checks.check_error_rate(ev, "probes", s, RUNBOOK).verdict for s in (False, True)] == [Verdict.PASS] * 2


def test_each_quirk_spoils_only_its_own_signal():
    samples = traffic(312, errors=3)
    double1 = evidence(samples, analytics=analytics_for(samples, double1_500=True))
    assert checks.check_error_rate(double1, "analytics", True, RUNBOOK).verdict is Verdict.INCONCLUSIVE
    assert checks.check_error_rate(double1, "analytics", False, RUNBOOK).verdict is Verdict.PASS
    assert_sentence(checks.check_cache(double1, RUNBOOK), Verdict.PASS, "above the 50% threshold")
    blob3 = evidence(samples, analytics=analytics_for(samples, blob3_always_miss=True))
    assert checks.check_cache(blob3, RUNBOOK).verdict is Verdict.INCONCLUSIVE
    assert_sentence(checks.check_error_rate(blob3, "analytics", False, RUNBOOK), Verdict.PASS,
                    "users' error rate 1.0%")


def test_the_lag_boundary_is_the_probes_own_count_less_its_tolerance():
    samples = traffic(312)  # a tolerance of 16 (5%): Analytics Engine samples busy datasets
    recorded = analytics_for(samples, of_users=Counts())
    health = recorded.by_path["/health"]

    def short_by(n: int) -> AnalyticsEvidence:
        return AnalyticsEvidence(by_path={**recorded.by_path, "/health": Counts(
            health.requests - n, health.errors, health.server_errors, health.hits, health.misses - n)})

    assert sanity(samples, short_by(2)).verdict is Verdict.PASS  # within /health's own tolerance of 2
    assert_sentence(sanity(samples, short_by(3)), Verdict.INCONCLUSIVE, "32 cache misses on /health where the "
                    "suite's own probes alone got 35")
    assert_sentence(sanity(samples, AnalyticsEvidence(by_path={"/v1/search/title": Counts(295, 0, 0, 0, 295)})),
                    Verdict.INCONCLUSIVE, "shows 295 data points for the 312 requests")


def test_response_time_names_its_endpoint_and_skipped_probe_slots():
    for endpoint in (e for e in VERIFY_ENDPOINTS if e.is_search):
        result = checks.check_response_time(evidence(traffic(900)), endpoint, RUNBOOK)
        assert result.check == f"response time P95 [{endpoint.key}]"
        assert result.measurements["endpoint"] == endpoint.key
    ev = evidence(latencies(TITLE_FRESH, [100.0 + i for i in range(100)]), skipped={TITLE_FRESH: 5})
    result = checks.check_response_time(ev, ENDPOINTS[TITLE_FRESH], RUNBOOK)
    assert_sentence(result, Verdict.PASS, "over 100 answers", "5 probe slots were skipped")
    assert result.measurements["skipped_probes"] == 5


def test_a_starved_checker_cannot_fail_the_target_on_latency():
    slow = latencies(TITLE_FRESH, [1500.0 + i for i in range(100)])
    starved = checks.check_response_time(evidence(slow, loop_lag_ms=[300.0] * 50), ENDPOINTS[TITLE_FRESH], RUNBOOK)
    assert_sentence(starved, Verdict.INCONCLUSIVE, "the checker was starved",
                    "(its event loop woke up 300 ms late at P95)", "cannot be judged against 1000 ms")
    assert starved.measurements["checker_lag_p95_ms"] == 300.0
    calm = checks.check_response_time(evidence(slow, loop_lag_ms=[2.0] * 50), ENDPOINTS[TITLE_FRESH], RUNBOOK)
    assert calm.verdict is Verdict.FAIL
    fast = checks.check_response_time(evidence(latencies(TITLE_FRESH, [50.0] * 100), loop_lag_ms=[300.0] * 50),
                                      ENDPOINTS[TITLE_FRESH], RUNBOOK)
    assert fast.verdict is Verdict.PASS  # fast answers despite a lagging checker are fast
