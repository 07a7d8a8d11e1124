"""Fault profiles as data (faults.py) and the units built from them (staging/bookstrack/faults.py):
composition of a deployed profile with the runtime flag, latency per endpoint, the log-normal draw,
each unit's decisions over many seeded draws."""

from __future__ import annotations

import json
import statistics

import pytest

from bookstrack_rollback.faults import (
    FaultProfile,
    FaultProfileError,
    Latency,
    compose_profiles,
    effective_latency,
    parse_fault_profile,
)
from bookstrack_rollback.staging.bookstrack.faults import (
    CacheOff,
    DataLoss,
    ErrorInjection,
    HealthConstant,
    InjectedLatency,
    Outage,
    PerformanceRow,
    ProviderTimeout,
    TelemetryQuirk,
    WsHandshakeFailure,
    build_units,
    draw_latency_ms,
)
from bookstrack_rollback.staging.state import SeededRandom

N = 4000


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """``count`` successes of ``n`` is within ``sigmas`` standard deviations of rate ``p``."""
    sd = (n * p * (1 - p)) ** 0.5
    return abs(count - n * p) <= sigmas * sd + 1


# --- composition ----------------------------------------------------------------------------------
def test_rates_combine_as_independent_failures_and_the_5xx_share_is_exact():
    deployed = FaultProfile(error_rate=0.2, share_5xx=1.0, ws_failure_rate=0.1, provider_timeouts=0.5)
    runtime = FaultProfile(error_rate=0.3, share_5xx=0.0, ws_failure_rate=0.2, provider_timeouts=0.5)
    both = compose_profiles(deployed, runtime)
    assert both.error_rate == pytest.approx(1 - 0.8 * 0.7)
    assert both.error_rate * both.share_5xx == pytest.approx(0.2)  # only the deployed errors are 500s
    assert both.ws_failure_rate == pytest.approx(1 - 0.9 * 0.8)
    assert both.provider_timeouts == pytest.approx(0.75)


def test_booleans_or_lists_unite_latency_takes_the_larger_per_endpoint():
    deployed = FaultProfile(
        outage=False, cache_off=True, data_loss=("a", "b"), quirks=frozenset({"double1_500"}),
        latency={"title": Latency(100, 900), "*": Latency(10, 20)}, label="deployed",
    )
    runtime = FaultProfile(
        outage=True, data_loss=("b", "c"), quirks=frozenset({"health_constant"}),
        latency={"*": Latency(50, 60), "health": Latency(5, 5)}, label="runtime",
    )
    both = compose_profiles(deployed, runtime)
    assert both.outage and both.cache_off
    assert both.data_loss == ("a", "b", "c")
    assert both.quirks == {"double1_500", "health_constant"}
    assert both.latency["title"] == Latency(100, 900)
    assert both.latency["*"] == Latency(50, 60)
    assert both.latency["health"] == Latency(5, 5)
    assert effective_latency(both, "isbn") == Latency(50, 60)
    assert both.label == "deployed + runtime"


def test_composing_with_the_healthy_profile_changes_nothing_but_duration():
    profile = parse_fault_profile(json.dumps({"error_rate": 0.12, "share_5xx": 0.4, "duration_s": 60, "label": "x"}))
    assert compose_profiles(FaultProfile(), profile).error_rate == 0.12
    assert compose_profiles(profile, FaultProfile()).share_5xx == 0.4
    assert compose_profiles(profile, FaultProfile()).duration_s is None
    assert compose_profiles(FaultProfile(), FaultProfile()).is_healthy


def test_provider_timeout_ms_comes_from_the_profile_that_times_out():
    short = FaultProfile(provider_timeouts=0.5, provider_timeout_ms=40)
    assert compose_profiles(FaultProfile(error_rate=0.1), short).provider_timeout_ms == 40


def test_star_latency_covers_api_endpoints_not_health():
    profile = FaultProfile(latency={"*": Latency(10, 20)})
    for endpoint in ("title", "isbn", "advanced", "batch"):
        assert effective_latency(profile, endpoint) == Latency(10, 20)
    assert effective_latency(profile, "health") is None
    assert effective_latency(FaultProfile(latency={"health": Latency(1, 2)}), "health") == Latency(1, 2)


def test_the_profile_json_format_is_unchanged():
    profile = parse_fault_profile('{"error_rate": 0.12, "latency": {"title": {"p50_ms": 300, "p95_ms": 2500}}}')
    assert parse_fault_profile(profile.to_json()) == profile
    with pytest.raises(FaultProfileError, match="unknown fault profile field"):
        parse_fault_profile('{"error_rat": 0.1}')


# --- units ----------------------------------------------------------------------------------------
def test_build_units_makes_one_small_unit_per_fault_kind():
    profile = FaultProfile(
        error_rate=0.1, outage=True, latency={"*": Latency(1, 2)}, ws_failure_rate=0.1, cache_off=True,
        provider_timeouts=0.1, data_loss=("k",), quirks=frozenset({"health_constant", "blob3_always_miss"}),
    )
    kinds = {type(unit) for unit in build_units(profile)}
    assert kinds == {Outage, ErrorInjection, InjectedLatency, WsHandshakeFailure, CacheOff, ProviderTimeout,
                     DataLoss, HealthConstant, TelemetryQuirk}
    assert build_units(FaultProfile()) == ()


@pytest.mark.parametrize(("p50", "p95"), [(30.0, 120.0), (300.0, 2500.0), (5.0, 6.0)])
def test_latency_draws_have_the_profiles_median_and_95th_percentile(p50: float, p95: float):
    rng = SeededRandom(3)
    draws = sorted(draw_latency_ms(Latency(p50, p95), rng) for _ in range(N))
    assert statistics.median(draws) == pytest.approx(p50, rel=0.08)
    assert draws[int(0.95 * N)] == pytest.approx(p95, rel=0.12)
    assert min(draws) > 0


def test_degenerate_latencies_are_constant():
    rng = SeededRandom(1)
    assert draw_latency_ms(Latency(0, 0), rng) == 0.0
    assert draw_latency_ms(Latency(40, 40), rng) == 40.0


def test_error_injection_hits_its_rate_on_api_endpoints_only_with_its_5xx_share():
    rng = SeededRandom(5)
    unit = ErrorInjection(rate=0.2, share_5xx=0.75)
    errors = [unit.injected_error("title", rng) for _ in range(N)]
    hits = [e for e in errors if e is not None]
    assert within(len(hits), N, 0.2)
    assert within(sum(e.status == 500 for e in hits), len(hits), 0.75)
    assert {(e.status, e.code) for e in hits} == {(500, "INTERNAL_ERROR"), (400, "INVALID_QUERY")}
    assert all(unit.injected_error(endpoint, rng) is None for endpoint in ("health", "ws", "unknown") for _ in range(50))


def test_ws_failures_and_provider_timeouts_hit_their_rates():
    rng = SeededRandom(8)
    assert within(sum(WsHandshakeFailure(0.3).handshake_fails(rng) for _ in range(N)), N, 0.3)
    timeouts = ProviderTimeout(0.4, 25.0)
    drawn = [timeouts.provider_timeout_ms("isbn", rng) for _ in range(N)]
    assert within(sum(d is not None for d in drawn), N, 0.4)
    assert {d for d in drawn if d is not None} == {25.0}
    assert timeouts.provider_timeout_ms("batch", rng) is None


def test_telemetry_quirks_rewrite_only_the_performance_row():
    row = PerformanceRow("/v1/search/title", "N/A", "HIT", 200.0, 4.2)
    assert TelemetryQuirk(True, False).performance_row(row) == PerformanceRow("/v1/search/title", "N/A", "MISS", 200.0, 4.2)
    assert TelemetryQuirk(False, True).performance_row(row).status == 500.0
    not_found = PerformanceRow("/nope", "NOT_FOUND", "MISS", 404.0, 1.0)
    assert TelemetryQuirk(False, True).performance_row(not_found).status == 404.0, "only routed requests"
