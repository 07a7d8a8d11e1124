"""Every fault kind, carried by a test change (a version whose FAULT_PROFILE holds it) or set at
runtime (the KV flag): the staging misbehaves as DESIGN.md "Faults" says, within statistical bounds
over seeded requests, and stops when the version is rolled back; runtime faults survive a rollback;
a profile ends by itself after duration_s."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from bookstrack_rollback.staging import ManualClock, Staging

N = 400


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    sd = (n * p * (1 - p)) ** 0.5
    return abs(count - n * p) <= sigmas * sd + 1


def serving(staging: Staging) -> str:
    return staging.workers.serving_deployment().versions[0][0]


def deploy_fault(staging: Staging, profile: dict[str, Any] | str, tag: str = "2.0.0-drill") -> str:
    """Upload a test change carrying ``profile`` and deploy it at 100%; returns its version id."""
    text = profile if isinstance(profile, str) else json.dumps(profile)
    version = staging.workers.upload(
        bindings=[{"type": "plain_text", "name": "FAULT_PROFILE", "text": text}],
        annotations={"workers/tag": tag, "workers/message": "Drill: test change"},
    )
    staging.workers.deploy([(version.id, 100)], annotations={"workers/message": "Drill: inject"})
    return version.id


def roll_back(staging: Staging, version_id: str) -> None:
    staging.workers.deploy([(version_id, 100)], annotations={"workers/message": "Rollback due to drill"})


def statuses(client: TestClient, n: int = N, path: str = "/v1/search/title") -> list[int]:
    return [client.get(path, params={"q": f"query {i % 7}"}).status_code for i in range(n)]


class RecordingSleep:
    """Stands in for asyncio.sleep: records each injected delay, returns at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


# --- error spike ----------------------------------------------------------------------------------
def test_an_error_spike_fails_its_share_of_api_requests_then_a_rollback_ends_it(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, {"error_rate": 0.25, "share_5xx": 0.6, "label": "error spike"})
    seen = statuses(client)
    errors = [s for s in seen if s != 200]
    assert within(len(errors), N, 0.25)
    assert within(errors.count(500), len(errors), 0.6)
    assert set(errors) <= {500, 400}
    assert {client.get("/health").status_code for _ in range(50)} == {200}, "an error spike does not fail /health"
    roll_back(staging, stable)
    assert set(statuses(client, 100)) == {200}


def test_injected_errors_have_the_contracts_envelopes(client: TestClient, staging: Staging):
    deploy_fault(staging, {"error_rate": 1.0, "share_5xx": 1.0})
    body = client.get("/v1/search/isbn", params={"isbn": "9780743273565"}).json()
    assert body["data"] is None and body["error"]["code"] == "INTERNAL_ERROR" and "timestamp" in body["metadata"]
    deploy_fault(staging, {"error_rate": 1.0, "share_5xx": 0.0})
    response = client.get("/v1/search/title", params={"q": "hamlet"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_QUERY"
    batch = client.post("/v1/enrichment/batch", json={"jobId": "j", "books": [{"title": "Dune"}]})
    assert batch.status_code == 400 and batch.json()["error"]["code"] == "INVALID_QUERY"


def test_a_split_deployment_fails_only_the_share_served_by_the_faulty_version(client: TestClient, staging: Staging):
    stable = serving(staging)
    faulty = deploy_fault(staging, {"error_rate": 1.0})
    staging.workers.deploy([(faulty, 30), (stable, 70)])
    assert within(sum(s == 500 for s in statuses(client)), N, 0.3)


# --- outage ---------------------------------------------------------------------------------------
def test_an_outage_fails_every_request_with_cloudflares_1101_page(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, {"outage": True})
    for path in ("/health", "/v1/search/title?q=hamlet", "/nowhere", "/ws/progress?jobId=x"):
        response = client.get(path)
        assert response.status_code == 500, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Error" in response.text and "1101" in response.text and "Worker threw exception" in response.text
    assert client.post("/v1/enrichment/batch", json={"jobId": "j", "books": [{"title": "t"}]}).status_code == 500
    with pytest.raises(WebSocketDenialResponse) as refused:
        with client.websocket_connect("/ws/progress?jobId=x&token=y"):
            pass
    assert refused.value.status_code == 500 and "1101" in refused.value.text
    roll_back(staging, stable)
    assert client.get("/health").json()["data"]["status"] == "ok"


def test_an_unparsable_fault_profile_crashes_its_version_until_rolled_back(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, "{not json")
    assert client.get("/health").status_code == 500
    assert "Worker threw exception" in client.get("/v1/search/title?q=x").text
    roll_back(staging, stable)
    assert client.get("/health").status_code == 200


# --- latency --------------------------------------------------------------------------------------
def test_injected_latency_is_drawn_per_endpoint_and_slept(client: TestClient, staging: Staging):
    stable = serving(staging)
    sleep = RecordingSleep()
    staging.books.sleep = sleep
    deploy_fault(staging, {"latency": {"title": {"p50_ms": 300, "p95_ms": 2500}, "*": {"p50_ms": 20, "p95_ms": 40}}})
    for i in range(N):
        assert client.get("/v1/search/title", params={"q": f"t{i}"}).status_code == 200
    title_ms = sorted(s * 1000 for s in sleep.seconds)
    assert title_ms[N // 2] == pytest.approx(300, rel=0.2)
    assert title_ms[int(0.95 * N)] == pytest.approx(2500, rel=0.35)
    sleep.seconds.clear()
    for i in range(100):
        client.get("/v1/search/isbn", params={"isbn": "9780743273565"})
    assert sorted(sleep.seconds)[50] * 1000 == pytest.approx(20, rel=0.25)
    sleep.seconds.clear()
    client.get("/health")
    assert sleep.seconds == [], "'*' does not slow /health"
    roll_back(staging, stable)
    client.get("/v1/search/title", params={"q": "after"})
    assert sleep.seconds == []


def test_a_small_injected_latency_really_delays_the_answer_and_shows_in_processing_time(client: TestClient, staging: Staging):
    deploy_fault(staging, {"latency": {"isbn": {"p50_ms": 30, "p95_ms": 30}}})
    started = time.perf_counter()
    body = client.get("/v1/search/isbn", params={"isbn": "9780743273565"}).json()
    assert (time.perf_counter() - started) * 1000 >= 30
    assert body["metadata"]["processingTime"] >= 30


# --- WebSocket failures ---------------------------------------------------------------------------
def test_ws_failures_answer_their_share_of_handshakes_with_500(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, {"ws_failure_rate": 0.3})
    seen = []
    for _ in range(200):
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/ws/progress?jobId=test&token=test"):
                pass
        seen.append(refused.value.status_code)
    assert set(seen) == {401, 500}
    assert within(seen.count(500), 200, 0.3)
    roll_back(staging, stable)
    for _ in range(30):
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/ws/progress?jobId=test&token=test"):
                pass
        assert refused.value.status_code == 401


# --- cache off ------------------------------------------------------------------------------------
def test_cache_off_never_hits_until_rolled_back(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, {"cache_off": True})
    assert {client.get("/v1/search/title?q=hamlet").json()["metadata"]["cached"] for _ in range(20)} == {False}
    roll_back(staging, stable)
    client.get("/v1/search/title?q=hamlet")
    assert client.get("/v1/search/title?q=hamlet").json()["metadata"]["cached"] is True


# --- provider timeouts ----------------------------------------------------------------------------
def test_provider_timeouts_answer_200_empty_and_none_after_the_timeout(client: TestClient, staging: Staging):
    stable = serving(staging)
    sleep = RecordingSleep()
    staging.books.sleep = sleep
    deploy_fault(staging, {"provider_timeouts": 0.4, "provider_timeout_ms": 3000, "cache_off": True})
    bodies = [client.get("/v1/search/isbn", params={"isbn": "9780743273565"}) for _ in range(N)]
    assert {b.status_code for b in bodies} == {200}
    empty = [b.json() for b in bodies if not b.json()["data"]["works"]]
    assert within(len(empty), N, 0.4)
    assert all(e["metadata"]["provider"] == "none" and e["data"] == {"works": [], "editions": [], "authors": []} for e in empty)
    assert sleep.seconds.count(3.0) == len(empty)
    roll_back(staging, stable)
    for _ in range(20):
        assert client.get("/v1/search/isbn", params={"isbn": "9780743273565"}).json()["data"]["works"]


def test_a_short_provider_timeout_is_really_waited_for(client: TestClient, staging: Staging):
    deploy_fault(staging, {"provider_timeouts": 1.0, "provider_timeout_ms": 25})
    body = client.get("/v1/search/title", params={"q": "hamlet"}).json()
    assert body["metadata"]["provider"] == "none" and body["metadata"]["processingTime"] >= 25
    assert len(staging.books.cache) == 0, "an answer of timed-out providers is not cached"


# --- data loss ------------------------------------------------------------------------------------
def test_data_loss_deletes_the_named_keys_once_and_a_rollback_does_not_bring_them_back(client: TestClient, staging: Staging):
    stable = serving(staging)
    staging.kv.put_own("canary:1", b"alive")
    staging.kv.put_own("canary:2", b"alive")
    deploy_fault(staging, {"data_loss": ["canary:1"]})
    assert staging.kv.get_own("canary:1") is None, "lost when the version entered service"
    assert staging.kv.get_own("canary:2") == b"alive"
    staging.kv.put_own("canary:1", b"rewritten")
    client.get("/health")
    assert staging.kv.get_own("canary:1") == b"rewritten", "deleted once, not on every request"
    staging.kv.delete_own("canary:1")
    roll_back(staging, stable)
    assert staging.kv.get_own("canary:1") is None, "rollback changes code, not data"


# --- quirks ---------------------------------------------------------------------------------------
def test_the_health_constant_quirk_comes_with_its_version_and_goes_with_it(client: TestClient, staging: Staging):
    stable = serving(staging)
    deploy_fault(staging, {"quirks": ["health_constant"]})
    assert client.get("/health").json()["version"] == "1.0.0"
    roll_back(staging, stable)
    assert client.get("/health").json() == {"data": {"status": "ok", "version": "1.9.0", "worker": staging.config.worker_name}}


# --- runtime faults -------------------------------------------------------------------------------
def test_a_runtime_fault_survives_a_rollback_and_ends_when_cleared(client: TestClient, staging: Staging):
    stable = serving(staging)
    response = client.put("/__staging/faults", content=json.dumps({"error_rate": 1.0, "label": "pre-existing"}))
    assert response.status_code == 200
    assert set(statuses(client, 20)) == {500}
    deploy_fault(staging, {"latency": {"*": {"p50_ms": 0, "p95_ms": 0}}})
    roll_back(staging, stable)
    assert set(statuses(client, 20)) == {500}, "a rollback must not be expected to fix a runtime fault"
    assert client.delete("/__staging/faults").json() == {"cleared": True}
    assert set(statuses(client, 20)) == {200}


def test_a_runtime_fault_composes_with_a_deployed_one(client: TestClient, staging: Staging):
    deploy_fault(staging, {"error_rate": 0.2, "share_5xx": 1.0})
    client.put("/__staging/faults", content=json.dumps({"error_rate": 0.3, "share_5xx": 0.0}))
    seen = statuses(client)
    assert within(sum(s != 200 for s in seen), N, 1 - 0.8 * 0.7)
    assert within(seen.count(500), N, 0.2)


def test_runtime_data_loss_happens_when_the_flag_is_set(client: TestClient, staging: Staging):
    staging.kv.put_own("user:42", b"{}")
    client.put("/__staging/faults", content=json.dumps({"data_loss": ["user:42"]}))
    assert staging.kv.get_own("user:42") is None


# --- duration -------------------------------------------------------------------------------------
def test_a_deployed_fault_stops_by_itself_after_duration_s(client: TestClient, staging: Staging, clock: ManualClock):
    deploy_fault(staging, {"error_rate": 1.0, "duration_s": 120})
    clock.advance(119)
    assert set(statuses(client, 10)) == {500}
    clock.advance(1)
    assert set(statuses(client, 10)) == {200}
    assert client.get("/health").json()["data"]["version"] == "2.0.0-drill", "still deployed, no longer faulty"


def test_a_runtime_fault_stops_by_itself_after_duration_s_from_when_it_was_set(client: TestClient, staging: Staging,
                                                                                clock: ManualClock):
    clock.advance(500)
    client.put("/__staging/faults", content=json.dumps({"outage": True, "duration_s": 30}))
    clock.advance(29)
    assert client.get("/health").status_code == 500
    clock.advance(1)
    assert client.get("/health").status_code == 200


def test_a_runtime_flag_written_straight_to_kv_counts_from_when_it_is_first_seen(client: TestClient, staging: Staging,
                                                                                   clock: ManualClock):
    from bookstrack_rollback.staging.state import RUNTIME_FAULT_KEY

    staging.kv.put_own(RUNTIME_FAULT_KEY, json.dumps({"outage": True, "duration_s": 10}).encode())
    assert client.get("/health").status_code == 500
    clock.advance(10)
    assert client.get("/health").status_code == 200
    staging.kv.put_own(RUNTIME_FAULT_KEY, b"{broken")
    assert client.get("/health").status_code == 500, "an unusable runtime flag crashes the worker"
