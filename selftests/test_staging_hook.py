"""The staging hook (drills/staging-hook/fault-hook.mjs) in real Node: the ES module the real staging
worker carries so that a drill's FAULT_PROFILE and the runtime KV flag act on it as they act on the
embedded staging (DESIGN.md, "Faults"; README, "Drilling the real staging").

Each test sends one JSON case to drills/staging-hook/harness.mjs, which wraps a trivial handler with
``withFaultProfile`` and answers JSON; randomness is seeded and time is a fake clock that the
recorded sleeps move, so the runs are deterministic and never wait. Skipped when ``node`` (20 or
newer) is not on PATH."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bookstrack_rollback.faults import (
    RUNTIME_FLAG_KEY,
    FaultProfileError,
    compose_profiles,
    parse_fault_profile,
)

HOOK_DIR = Path(__file__).resolve().parents[1] / "drills" / "staging-hook"
HARNESS = HOOK_DIR / "harness.mjs"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

HEALTH = {"path": "/health"}
TITLE = {"path": "/v1/search/title?q=hamlet"}
ISBN = {"path": "/v1/search/isbn?isbn=978-0-7432-7356-5"}
ADVANCED = {"path": "/v1/search/advanced?title=dune&author=frank%20herbert"}
BATCH = {"method": "POST", "path": "/v1/enrichment/batch"}
WS_UPGRADE = {"path": "/ws/progress?jobId=job-1&token=t", "headers": {"Upgrade": "websocket"}}
WS_PLAIN = {"path": "/ws/progress?jobId=job-1&token=t"}
WS_NO_JOB = {"path": "/ws/progress", "headers": {"Upgrade": "websocket"}}
UNKNOWN = {"path": "/v2/nothing-here"}
PREFLIGHT = {"method": "OPTIONS", "path": "/v1/search/title"}
EVERY_ENDPOINT = [HEALTH, TITLE, ISBN, ADVANCED, BATCH, WS_UPGRADE, WS_PLAIN, WS_NO_JOB, UNKNOWN, PREFLIGHT]


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """``count`` successes of ``n`` is within ``sigmas`` standard deviations of rate ``p``."""
    sd = (n * p * (1 - p)) ** 0.5
    return abs(count - n * p) <= sigmas * sd + 1


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not on PATH: the staging hook is an ES module that these tests run in Node 20 or newer")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < 20:
        pytest.skip(f"node on PATH is {version or 'of unknown version'}; the staging hook's tests need Node 20 or newer")
    return path


def run_harness(node: str, case: dict[str, Any]) -> Any:
    done = subprocess.run([node, str(HARNESS)], input=json.dumps(case), capture_output=True, text=True,
                          timeout=30, check=False, cwd=HOOK_DIR)
    assert done.returncode == 0, f"the harness exited with {done.returncode}; stderr:\n{done.stderr}"
    return json.loads(done.stdout)


def as_text(profile: dict[str, Any] | str | None) -> str | None:
    return json.dumps(profile) if isinstance(profile, dict) else profile


def serve(node: str, steps: list[list[dict[str, Any]] | dict[str, Any]], *, profile: dict[str, Any] | str | None = None,
          flag: dict[str, Any] | str | None = None, kv_throws: bool = False, seed: int = 1) -> dict[str, Any]:
    """Send each step's requests through the hook; a step is a request list or a dict with
    ``requests``, ``advanceMs`` (the fake clock moves first) and ``setFlag`` (the KV flag's new text)."""
    shaped = [step if isinstance(step, dict) else {"requests": step} for step in steps]
    for step in shaped:
        if "setFlag" in step:
            step["setFlag"] = as_text(step["setFlag"])
    case = {"mode": "requests", "seed": seed, "faultProfile": as_text(profile), "flag": as_text(flag),
            "kvThrows": kv_throws, "steps": shaped}
    return run_harness(node, case)


def times(request: dict[str, Any], n: int) -> dict[str, Any]:
    return {**request, "repeat": n}


def is_handlers(record: dict[str, Any]) -> bool:
    """The handler's own answer, passed through untouched (the very Response object, request and env)."""
    return record["same"] and record["envSame"] and record["status"] == 200 and record["body"]["data"] == {"handler": True}


def assert_error_envelope(record: dict[str, Any], status: int, code: str, message: str) -> None:
    assert record["status"] == status, record
    assert not record["handled"], f"the handler ran for an injected {status}: {record}"
    assert record["cors"] == "*"
    body = record["body"]
    assert set(body) == {"data", "metadata", "error"} and body["data"] is None
    assert ISO.match(body["metadata"]["timestamp"]), body
    assert body["error"] == {"message": message, "code": code, "details": {}}


# --- healthy: inert -----------------------------------------------------------------------------
@pytest.mark.parametrize("profile", [None, "", "  \n"], ids=["absent", "empty", "blank"])
def test_without_a_fault_profile_or_runtime_flag_every_endpoint_gets_the_handlers_answer_untouched(node: str, profile: str | None):
    result = serve(node, [[times(request, 3) for request in EVERY_ENDPOINT]], profile=profile)
    records = result["steps"][0]
    assert len(records) == 3 * len(EVERY_ENDPOINT)
    untouched = [r for r in records if is_handlers(r) and not r["sleeps"] and not r["cacheOff"]]
    assert untouched == records, [r for r in records if r not in untouched]
    assert result["kvReads"] == 1, "the runtime flag is read once, then cached for its TTL"
    assert not result["envTouched"]


# --- error spike ----------------------------------------------------------------------------------
def test_an_error_rate_answers_its_share_of_api_requests_with_500_internal_error_in_the_envelope(node: str):
    n = 2000
    records = serve(node, [[times(TITLE, n), times(HEALTH, 200), times(UNKNOWN, 50)]],
                    profile={"error_rate": 0.3, "share_5xx": 1.0})["steps"][0]
    titles, others = records[:n], records[n:]
    errors = [r for r in titles if r["status"] != 200]
    for record in errors:
        assert_error_envelope(record, 500, "INTERNAL_ERROR", "Internal server error")
    assert within(len(errors), n, 0.3), f"{len(errors)} of {n} title searches failed, expected about 30%"
    assert all(is_handlers(r) for r in titles if r["status"] == 200)
    assert all(is_handlers(r) for r in others), "/health and unknown paths are not API endpoints: no injected errors"


@pytest.mark.parametrize("share_5xx", [0.0, 0.4])
def test_the_5xx_share_splits_injected_errors_into_500_and_400_invalid_query(node: str, share_5xx: float):
    n, rate = 1000, 0.5
    records = serve(node, [[times(ISBN, n // 2), times(BATCH, n // 2)]],
                    profile={"error_rate": rate, "share_5xx": share_5xx}, seed=7)["steps"][0]
    fives = [r for r in records if r["status"] == 500]
    fours = [r for r in records if r["status"] == 400]
    for record in fives:
        assert_error_envelope(record, 500, "INTERNAL_ERROR", "Internal server error")
    for record in fours:
        assert_error_envelope(record, 400, "INVALID_QUERY", "Invalid query parameters")
    if share_5xx == 0.0:
        assert not fives, "share_5xx 0 makes every injected error a 400"
    assert within(len(fives), n, rate * share_5xx)
    assert within(len(fours), n, rate * (1 - share_5xx))
    assert all(is_handlers(r) for r in records if r["status"] == 200)


# --- outage ----------------------------------------------------------------------------------------
def test_an_outage_makes_every_request_throw_as_a_crashed_worker_health_included(node: str):
    records = serve(node, [EVERY_ENDPOINT], profile={"outage": True, "label": "outage"})["steps"][0]
    assert [r["path"] for r in records if r["threw"] is None] == []
    assert {r["threw"] for r in records} == {"Worker threw exception (injected outage)"}
    assert not any(r["handled"] for r in records)


# --- latency -------------------------------------------------------------------------------------
def test_injected_latency_has_the_profiles_median_and_95th_percentile_per_endpoint(node: str):
    n = 2000
    profile = {"latency": {"title": {"p50_ms": 300, "p95_ms": 2500}, "*": {"p50_ms": 20, "p95_ms": 60}}}
    records = serve(node, [[times(TITLE, n), times(ISBN, n // 2), times(HEALTH, 100)]], profile=profile, seed=3)["steps"][0]
    title, isbn, health = records[:n], records[n:n + n // 2], records[n + n // 2:]
    assert all(len(r["sleeps"]) == 1 and is_handlers(r) for r in title + isbn), "one awaited delay, then the handler"
    title_ms = [r["sleeps"][0] for r in title]
    assert statistics.median(title_ms) == pytest.approx(300, rel=0.15)
    assert statistics.quantiles(title_ms, n=20)[-1] == pytest.approx(2500, rel=0.25)
    isbn_ms = [r["sleeps"][0] for r in isbn]
    assert statistics.median(isbn_ms) == pytest.approx(20, rel=0.15), "'*' covers the API endpoints without their own entry"
    assert statistics.quantiles(isbn_ms, n=20)[-1] == pytest.approx(60, rel=0.25)
    assert all(r["sleeps"] == [] and is_handlers(r) for r in health), "'*' never slows /health"


# --- WebSocket handshakes --------------------------------------------------------------------------
def test_a_websocket_failure_rate_answers_progress_upgrades_500_and_lets_other_requests_through(node: str):
    records = serve(node, [[times(WS_UPGRADE, 20), WS_PLAIN, WS_NO_JOB, TITLE, HEALTH]],
                    profile={"ws_failure_rate": 1.0})["steps"][0]
    for record in records[:20]:
        assert_error_envelope(record, 500, "INTERNAL_ERROR", "Internal server error")
    assert all(is_handlers(r) for r in records[20:]), "no upgrade, or no jobId (the worker's 400 comes first): untouched"

    n = 1000
    partial = serve(node, [[times(WS_UPGRADE, n)]], profile={"ws_failure_rate": 0.25}, seed=11)["steps"][0]
    failed = sum(r["status"] == 500 for r in partial)
    assert within(failed, n, 0.25), f"{failed} of {n} handshakes failed, expected about 25%"


# --- provider timeouts ------------------------------------------------------------------------------
def test_provider_timeouts_answer_searches_200_empty_with_provider_none_after_the_timeout(node: str):
    searches = [TITLE, ISBN, ADVANCED]
    refused = [{"path": "/v1/search/title?q=%20"}, {"path": "/v1/search/isbn?isbn=12345"}, {"path": "/v1/search/advanced"}]
    records = serve(node, [searches + refused + [BATCH, HEALTH]],
                    profile={"provider_timeouts": 1.0, "provider_timeout_ms": 1500})["steps"][0]
    for record in records[:3]:
        assert record["status"] == 200 and not record["handled"], record
        assert record["sleeps"] == [1500], "the search takes provider_timeout_ms"
        assert record["body"]["data"] == {"works": [], "editions": [], "authors": []}
        metadata = record["body"]["metadata"]
        assert (metadata["provider"], metadata["cached"], metadata["processingTime"]) == ("none", False, 1500)
        assert ISO.match(metadata["timestamp"]) and record["cors"] == "*"
    assert all(is_handlers(r) for r in records[3:]), "invalid searches keep the handler's 400; batch and /health are no searches"


# --- cache off --------------------------------------------------------------------------------------
def test_cache_off_hands_the_worker_a_copy_of_env_with_fault_cache_off_set(node: str):
    result = serve(node, [[TITLE, HEALTH]], profile={"cache_off": True})
    for record in result["steps"][0]:
        assert record["handled"] and record["status"] == 200
        assert record["cacheOff"] and not record["envSame"], "env.__FAULT_CACHE_OFF is true in a shallow copy"
    assert not result["envTouched"], "the worker's own env object is never changed"


# --- the runtime flag ---------------------------------------------------------------------------------
COMPOSE_PAIRS = [
    ({"error_rate": 0.5, "share_5xx": 1.0}, {"error_rate": 0.5, "share_5xx": 0.0}),
    ({"error_rate": 0.2, "ws_failure_rate": 0.1, "provider_timeouts": 0.5, "provider_timeout_ms": 1000},
     {"error_rate": 0.3, "share_5xx": 0.0, "ws_failure_rate": 0.2, "provider_timeouts": 0.5, "provider_timeout_ms": 4000}),
    ({"cache_off": True, "data_loss": ["a", "b"], "quirks": ["double1_500"], "label": "deployed",
      "latency": {"title": {"p50_ms": 100, "p95_ms": 900}, "*": {"p50_ms": 10, "p95_ms": 20}}},
     {"outage": True, "data_loss": ["b", "c"], "quirks": ["health_constant"], "label": "runtime",
      "latency": {"isbn": {"p50_ms": 50, "p95_ms": 70}, "health": {"p50_ms": 5, "p95_ms": 9}, "*": {"p50_ms": 30, "p95_ms": 40}}}),
    ({}, {"error_rate": 0.1, "duration_s": 30, "label": "runtime"}),
    ({"provider_timeouts": 0.2, "duration_s": 60}, {"label": "only a label"}),
    ({"share_5xx": 0.5}, {"error_rate": 0.4, "share_5xx": 0.5}),
    ({"error_rate": 0.2, "share_5xx": 0.5}, {"error_rate": 0.4, "share_5xx": 0.75, "latency": {"title": {"p50_ms": 1, "p95_ms": 2}}}),
]


def test_compose_profiles_in_the_hook_gives_what_python_compose_profiles_gives(node: str):
    pairs = [[json.dumps(a), json.dumps(b)] for a, b in COMPOSE_PAIRS]
    composed = run_harness(node, {"mode": "compose", "pairs": pairs})
    for (a, b), got in zip(pairs, composed, strict=True):
        expected = compose_profiles(parse_fault_profile(a), parse_fault_profile(b)).to_dict()
        assert got == expected, f"composing {a} with {b}"


def test_the_runtime_flag_composes_with_fault_profile_as_compose_profiles_computes(node: str):
    deployed, runtime = COMPOSE_PAIRS[0]
    both = compose_profiles(parse_fault_profile(json.dumps(deployed)), parse_fault_profile(json.dumps(runtime)))
    assert both.error_rate == pytest.approx(0.75) and both.share_5xx == pytest.approx(2 / 3)
    n = 2000
    records = serve(node, [[times(TITLE, n)]], profile=deployed, flag=runtime, seed=5)["steps"][0]
    fives = sum(r["status"] == 500 for r in records)
    fours = sum(r["status"] == 400 for r in records)
    assert within(fives + fours, n, both.error_rate), f"{fives + fours} of {n} failed, expected about {both.error_rate:.0%}"
    assert within(fives, n, both.error_rate * both.share_5xx), f"{fives} of {n} were 500s"
    assert within(fours, n, both.error_rate * (1 - both.share_5xx)), f"{fours} of {n} were 400s"


def test_the_runtime_flag_alone_injects_its_fault_and_is_read_at_most_once_per_ttl(node: str):
    result = serve(node, [
        [times(TITLE, 10)],
        {"advanceMs": 1000, "setFlag": {"error_rate": 1.0}, "requests": [times(TITLE, 10)]},
        {"advanceMs": 4000, "requests": [times(TITLE, 10)]},
        {"advanceMs": 5000, "setFlag": None, "requests": [times(TITLE, 10)]},
    ])
    healthy, cached, flagged, cleared = result["steps"]
    assert all(is_handlers(r) for r in healthy + cached), "a flag set within the TTL is not seen yet"
    assert all(r["status"] == 500 for r in flagged), f"key {RUNTIME_FLAG_KEY} read again after 5 s"
    assert all(is_handlers(r) for r in cleared), "a deleted flag ends its fault"
    assert result["kvReads"] == 3


def test_a_kv_error_counts_as_no_runtime_fault_and_never_throws(node: str):
    healthy = serve(node, [[times(r, 2) for r in EVERY_ENDPOINT]], kv_throws=True)["steps"][0]
    assert all(is_handlers(r) and r["threw"] is None for r in healthy)
    deployed = serve(node, [[times(TITLE, 20)]], profile={"error_rate": 1.0}, kv_throws=True)["steps"][0]
    assert all(r["status"] == 500 and r["threw"] is None for r in deployed), "FAULT_PROFILE still applies"


# --- duration ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["FAULT_PROFILE", "runtime flag"])
def test_a_profile_with_duration_s_stops_by_itself_that_long_after_its_first_request(node: str, where: str):
    fault = {"error_rate": 1.0, "duration_s": 60}
    steps = [[times(TITLE, 5)], {"advanceMs": 59_000, "requests": [times(TITLE, 5)]},
             {"advanceMs": 1_000, "requests": [times(TITLE, 5), HEALTH]}]
    kwargs = {"profile": fault} if where == "FAULT_PROFILE" else {"flag": fault}
    first, almost, after = serve(node, steps, **kwargs)["steps"]
    assert all(r["status"] == 500 for r in first + almost), "the fault holds for duration_s"
    assert all(is_handlers(r) for r in after), "after duration_s the answers are healthy again"


# --- unusable profiles -------------------------------------------------------------------------------
UNUSABLE = [
    ('{"error_rate": 2}', "error_rate"),
    ('{"error_rat": 0.1}', "error_rat"),
    ('{"latency": {"title": {"p50_ms": 900, "p95_ms": 100}}}', 'latency["title"]'),
    ('{"outage": "yes"}', "outage"),
    ('{"duration_s": 0}', "duration_s"),
    ('{"error_rate": 0.1', None),
]


@pytest.mark.parametrize(("text", "field"), UNUSABLE, ids=[f or "not JSON" for _, f in UNUSABLE])
def test_an_unusable_fault_profile_answers_500_naming_the_field_on_every_request(node: str, text: str, field: str | None):
    records = serve(node, [EVERY_ENDPOINT], profile=text)["steps"][0]
    for record in records:
        assert record["threw"] is None and not record["handled"], "the worker does not crash, the handler does not run"
        assert record["status"] == 500 and record["cors"] == "*", record
        error = record["body"]["error"]
        assert error["code"] == "INTERNAL_ERROR"
        assert error["message"].startswith("FAULT_PROFILE cannot be used: ")
        assert error["details"] == {"source": "FAULT_PROFILE", "field": field}
        if field is not None:
            assert field in error["message"]
        else:
            assert "not valid JSON" in error["message"]


def test_an_unusable_runtime_flag_answers_500_naming_the_flag_and_the_field(node: str):
    records = serve(node, [[HEALTH, TITLE]], profile={"error_rate": 0.0}, flag={"share_5xx": -1})["steps"][0]
    for record in records:
        assert record["status"] == 500 and not record["handled"]
        assert record["body"]["error"]["message"].startswith("the runtime fault flag cannot be used: share_5xx")
        assert record["body"]["error"]["details"] == {"source": "the runtime fault flag", "field": "share_5xx"}


def test_parse_fault_profile_throws_an_error_naming_the_field(node: str):
    outcomes = run_harness(node, {"mode": "parse", "texts": [text for text, _ in UNUSABLE]})
    for (text, field), outcome in zip(UNUSABLE, outcomes, strict=True):
        assert not outcome["ok"], f"{text} was accepted"
        assert outcome["field"] == field
        assert (field or "not valid JSON") in outcome["message"]


# --- parity with Python's parse_fault_profile ---------------------------------------------------------
PARITY_TEXTS = [
    "", "   ", "{}", "[]", "null", "1", '"error_rate"', "not json", '{"error_rate": 0.1,}',
    json.dumps({"error_rate": 0.12, "share_5xx": 1.0, "outage": False,
                "latency": {"title": {"p50_ms": 300, "p95_ms": 2500}, "*": {"p50_ms": 20, "p95_ms": 60}},
                "ws_failure_rate": 0.0, "cache_off": False, "provider_timeouts": 0.0, "provider_timeout_ms": 3000,
                "data_loss": ["canary:1"], "quirks": ["health_constant", "blob3_always_miss", "double1_500"],
                "duration_s": None, "label": "error spike"}),
    '{"error_rate": 0}', '{"error_rate": 1}', '{"error_rate": 1.0000001}', '{"error_rate": -0.1}',
    '{"error_rate": true}', '{"error_rate": "0.1"}', '{"error_rate": null}', '{"share_5xx": 0}', '{"share_5xx": null}',
    '{"outage": 1}', '{"outage": true}', '{"cache_off": null}',
    '{"latency": {"title": {"p50_ms": "300", "p95_ms": 2500}}}',
    '{"latency": {"title": {"p50_ms": false, "p95_ms": " 10 "}}}',
    '{"latency": {"title": {"p50_ms": "abc", "p95_ms": 10}}}',
    '{"latency": {"title": {"p50_ms": null, "p95_ms": 10}}}',
    '{"latency": {"title": {"p50_ms": 0, "p95_ms": 0}}}',
    '{"latency": {"health": {"p50_ms": 5, "p95_ms": 5}}}',
    '{"latency": {"ws": {"p50_ms": 1, "p95_ms": 2}}}',
    '{"latency": {"title": {"p50_ms": 1}}}',
    '{"latency": {"title": {"p50_ms": 1, "p95_ms": 2, "p99_ms": 3}}}',
    '{"latency": {"title": {"p50_ms": -1, "p95_ms": 2}}}',
    '{"latency": {"title": [1, 2]}}', '{"latency": []}', '{"latency": null}',
    '{"data_loss": ["canary:1", "canary:1"]}', '{"data_loss": [""]}', '{"data_loss": "canary:1"}', '{"data_loss": [1]}',
    '{"quirks": ["health_constant", "health_constant"]}', '{"quirks": ["nope"]}', '{"quirks": null}',
    '{"duration_s": null}', '{"duration_s": 0}', '{"duration_s": 0.5}', '{"duration_s": false}', '{"duration_s": -3}',
    '{"provider_timeout_ms": 0}', '{"provider_timeout_ms": -1}', '{"provider_timeout_ms": "3000"}',
    '{"label": 3}', '{"label": "x"}', '{"label": null}',
    '{"__proto__": 1}', '{"toString": 0.1}', '{"error_rate": 1e-3, "label": "dup", "label": "last"}',
]


def python_outcome(text: str) -> dict[str, Any] | None:
    """Python's parse as the hook reports it: the profile's dict, or None when it is refused."""
    try:
        return parse_fault_profile(text).to_dict()
    except FaultProfileError:
        return None


def test_parse_fault_profile_accepts_and_rejects_exactly_as_pythons_parse_fault_profile(node: str):
    outcomes = run_harness(node, {"mode": "parse", "texts": PARITY_TEXTS})
    mismatches = []
    for text, outcome in zip(PARITY_TEXTS, outcomes, strict=True):
        expected = python_outcome(text)
        got = outcome["profile"] if outcome["ok"] else None
        if (expected is None) != (got is None) or got != expected:
            mismatches.append(f"{text!r}: Python {expected}, hook {outcome}")
    assert not mismatches, "\n".join(mismatches)
    assert sum(o["ok"] for o in outcomes) >= 15 and sum(not o["ok"] for o in outcomes) >= 15, "both kinds are exercised"


# --- data loss ------------------------------------------------------------------------------------
CANARY = "canary/library/1"


def test_data_loss_deletes_the_listed_keys_once_per_profile_text_and_isolate(node: str):
    fault = {"data_loss": [CANARY, "canary/library/2"]}
    result = serve(node, [
        [times(TITLE, 3), HEALTH],
        {"advanceMs": 60_000, "requests": [times(TITLE, 2)]},
        {"newIsolate": True, "requests": [HEALTH]},
    ], profile=fault)
    first, later, fresh = result["steps"]
    assert all(is_handlers(r) for r in first + later + fresh), "data loss changes no answer"
    assert result["kvDeletes"] == [CANARY, "canary/library/2"] * 2, (
        "deleted when the profile is first seen, not again in that isolate; a new isolate deletes again")


def test_data_loss_of_the_runtime_flag_happens_when_the_flag_is_first_seen_and_again_for_a_new_text(node: str):
    result = serve(node, [
        [TITLE],
        {"advanceMs": 5000, "setFlag": {"data_loss": [CANARY]}, "requests": [TITLE]},
        {"advanceMs": 5000, "requests": [TITLE]},
        {"advanceMs": 5000, "setFlag": {"data_loss": [CANARY], "label": "again"}, "requests": [TITLE]},
    ])
    assert result["kvDeletes"] == [CANARY, CANARY], "once for each text of the flag"


def test_data_loss_happens_before_an_outage_throws_and_survives_a_kv_error(node: str):
    outage = serve(node, [[HEALTH, HEALTH]], profile={"outage": True, "data_loss": [CANARY]})
    assert [r["threw"] for r in outage["steps"][0]] == ["Worker threw exception (injected outage)"] * 2
    assert outage["kvDeletes"] == [CANARY]
    failing = serve(node, [[TITLE, TITLE]], profile={"data_loss": [CANARY]}, kv_throws=True)
    assert all(is_handlers(r) and r["threw"] is None for r in failing["steps"][0]), "a KV error loses nothing and breaks nothing"
    assert failing["kvDeletes"] == [CANARY], "tried once"


# --- the worker's seams: faultsOf, onInjected, delegate -------------------------------------------
def test_faults_of_tells_the_handler_the_profile_in_force_when_it_was_received_and_the_injected_delay(node: str):
    inert = serve(node, [[TITLE]])["steps"][0][0]
    assert inert["faults"] is None, "an inert hook tells nothing"
    deployed = {"latency": {"title": {"p50_ms": 100, "p95_ms": 200}}, "quirks": ["double1_500"], "label": "slow"}
    runtime = {"cache_off": True, "label": "flag"}
    records = serve(node, [[TITLE, HEALTH]], profile=deployed, flag=runtime, seed=9)["steps"][0]
    expected = compose_profiles(parse_fault_profile(json.dumps(deployed)), parse_fault_profile(json.dumps(runtime))).to_dict()
    for record in records:
        faults = record["faults"]
        assert record["handled"] and faults["profile"] == expected
        assert faults["delayMs"] == sum(record["sleeps"]), "the delay the hook slept before handing over"
        assert isinstance(faults["receivedAt"], (int, float))
    assert records[0]["faults"]["delayMs"] > 0 and records[1]["faults"]["delayMs"] == 0


INJECTED_CASES = [
    ({"error_rate": 1.0}, TITLE, {"kind": "error", "endpoint": "title", "status": 500, "code": "INTERNAL_ERROR"}),
    ({"error_rate": 1.0, "share_5xx": 0.0}, BATCH, {"kind": "error", "endpoint": "batch", "status": 400, "code": "INVALID_QUERY"}),
    ({"ws_failure_rate": 1.0}, WS_UPGRADE, {"kind": "ws_failure", "endpoint": "ws", "status": 500, "code": "INTERNAL_ERROR"}),
    ({"outage": True}, HEALTH, {"kind": "outage", "endpoint": "health", "status": 500, "code": "INTERNAL_ERROR"}),
    ('{"error_rat": 1}', UNKNOWN, {"kind": "unusable", "endpoint": "unknown", "status": 500, "code": "INTERNAL_ERROR"}),
    ({"provider_timeouts": 1.0, "provider_timeout_ms": 250}, ISBN,
     {"kind": "provider_timeout", "endpoint": "isbn", "status": 200, "code": "N/A"}),
]


@pytest.mark.parametrize(("profile", "request_", "expected"), INJECTED_CASES, ids=[c[2]["kind"] + "-" + c[2]["endpoint"] for c in INJECTED_CASES])
def test_on_injected_reports_every_answer_the_hook_gives_itself(node: str, profile: Any, request_: dict[str, Any], expected: dict[str, Any]):
    text = profile if isinstance(profile, str) else json.dumps(profile)
    case = {"mode": "requests", "seed": 1, "faultProfile": text, "flag": None, "kvThrows": False, "observe": True,
            "steps": [{"requests": [request_, HEALTH if expected["kind"] != "outage" else UNKNOWN]}]}
    record, other = run_harness(node, case)["steps"][0]
    injected = record["injected"]
    assert {k: injected[k] for k in expected} == expected
    assert injected["receivedAt"] is not None and injected["delayMs"] == 0
    if expected["kind"] == "unusable":
        assert injected["profile"] is None
    else:
        assert injected["profile"] == parse_fault_profile(text).to_dict()
    if expected["kind"] == "outage":
        assert record["threw"] and other["threw"] and other["injected"]["endpoint"] == "unknown"
    elif expected["kind"] != "unusable":
        assert other["injected"] is None and is_handlers(other), "the handler's own answers are not reported"


def test_delegated_provider_timeouts_reach_the_handler_with_the_profile(node: str):
    profile = {"provider_timeouts": 1.0, "provider_timeout_ms": 700}
    case = {"mode": "requests", "seed": 1, "faultProfile": json.dumps(profile), "flag": None, "kvThrows": False,
            "options": {"delegate": ["provider_timeouts"]}, "steps": [{"requests": [TITLE, ISBN, ADVANCED]}]}
    for record in run_harness(node, case)["steps"][0]:
        assert is_handlers(record) and record["sleeps"] == [], "the worker acts the timeout out, not the hook"
        assert record["faults"]["profile"]["provider_timeouts"] == 1.0
        assert record["faults"]["profile"]["provider_timeout_ms"] == 700


def test_only_provider_timeouts_can_be_delegated(node: str):
    assert run_harness(node, {"mode": "wrap", "options": {"delegate": ["provider_timeouts"]}}) == {"ok": True}
    refused = run_harness(node, {"mode": "wrap", "options": {"delegate": ["cache_off"]}})
    assert not refused["ok"] and "cache_off" in refused["message"] and "provider_timeouts" in refused["message"]
