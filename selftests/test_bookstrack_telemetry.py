"""Telemetry of every BooksTrack request (contract/bookstrack-api.md "Telemetry"; contract/cloudflare-api.md
"Tail"): the books_api_performance point, the books_api_cache_metrics points, the trace-v1 tail event;
and the REALITY.md quirks, which change the telemetry only, never the HTTP answer.

The analytics store and the tail hub are other parts of the staging: these tests record what this
part hands to their interfaces (``analytics.write``, ``tails.publish``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging, create_app


@dataclass
class Written:
    dataset: str
    index1: str
    blobs: tuple[str, ...]
    doubles: tuple[float, ...]


@dataclass
class Recorder:
    points: list[Written] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def write(self, dataset: str, *, index1: str, blobs: Any = (), doubles: Any = (), sample_interval: int = 1) -> None:
        self.points.append(Written(dataset, index1, tuple(blobs), tuple(doubles)))

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def performance(self, staging: Staging) -> list[Written]:
        return [p for p in self.points if p.dataset == staging.config.performance_dataset]

    def cache(self, staging: Staging) -> list[Written]:
        return [p for p in self.points if p.dataset == staging.config.cache_dataset]


@pytest.fixture
def recorder(staging: Staging, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    monkeypatch.setattr(staging.analytics, "write", recording.write)
    monkeypatch.setattr(staging.tails, "publish", recording.publish)
    return recording


def deploy_fault(staging: Staging, profile: dict[str, Any]) -> None:
    version = staging.workers.upload(
        bindings=[{"type": "plain_text", "name": "FAULT_PROFILE", "text": json.dumps(profile)}],
        annotations={"workers/tag": "2.0.0-drill"},
    )
    staging.workers.deploy([(version.id, 100)])


def test_every_request_writes_one_performance_point_with_the_contracts_columns(client: TestClient, staging: Staging,
                                                                              recorder: Recorder):
    client.get("/health")
    client.get("/v1/search/title", params={"q": "hamlet"})
    client.get("/v1/search/title", params={"q": "hamlet"})
    client.get("/v1/search/isbn", params={"isbn": "12"})
    client.get("/nowhere")
    client.post("/v1/enrichment/batch", json={"jobId": "j", "books": [{"title": "Dune"}]})
    client.get("/ws/progress?jobId=j")
    rows = recorder.performance(staging)
    assert [(r.index1, r.blobs, r.doubles[0]) for r in rows] == [
        ("/health", ("/health", "N/A", "MISS"), 200.0),
        ("/v1/search/title", ("/v1/search/title", "N/A", "MISS"), 200.0),
        ("/v1/search/title", ("/v1/search/title", "N/A", "HIT"), 200.0),
        ("/v1/search/isbn", ("/v1/search/isbn", "INVALID_ISBN", "MISS"), 400.0),
        ("/nowhere", ("/nowhere", "NOT_FOUND", "MISS"), 404.0),
        ("/v1/enrichment/batch", ("/v1/enrichment/batch", "N/A", "MISS"), 202.0),
        ("/ws/progress", ("/ws/progress", "UPGRADE_REQUIRED", "MISS"), 426.0),
    ]
    assert all(len(r.doubles) == 2 and r.doubles[1] > 0 for r in rows)


def test_processing_time_in_telemetry_is_the_one_the_answer_reports(client: TestClient, staging: Staging, recorder: Recorder):
    body = client.get("/v1/search/title", params={"q": "hamlet"}).json()
    row = recorder.performance(staging)[-1]
    assert row.doubles[1] == pytest.approx(body["metadata"]["processingTime"], abs=2)


def test_searches_write_their_cache_tier_events(client: TestClient, staging: Staging, recorder: Recorder, clock):
    client.get("/v1/search/title", params={"q": "Hamlet"})
    client.get("/v1/search/title", params={"q": "hamlet"})
    clock.advance(400)
    client.get("/v1/search/title", params={"q": "hamlet"})
    client.get("/health")
    cache = recorder.cache(staging)
    assert [(c.index1, c.blobs) for c in cache] == [
        ("api_miss", ("api_miss", "search:title:hamlet")),
        ("edge_hit_fresh", ("edge_hit_fresh", "search:title:hamlet")),
        ("edge_hit_stale", ("edge_hit_stale", "search:title:hamlet")),
    ]
    assert all(len(c.doubles) == 1 and c.doubles[0] >= 0 for c in cache)


def test_websocket_handshakes_are_telemetry_too(client: TestClient, staging: Staging, recorder: Recorder):
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse):
        with client.websocket_connect("/ws/progress?jobId=test&token=test"):
            pass
    row = recorder.performance(staging)[-1]
    assert (row.index1, row.blobs[1], row.doubles[0]) == ("/ws/progress", "UNAUTHORIZED", 401.0)


def test_every_request_publishes_a_trace_v1_tail_event(client: TestClient, staging: Staging, recorder: Recorder):
    client.get("/v1/search/title", params={"q": "hamlet"}, headers={"Authorization": "Bearer s3cret", "X-Api-Token": "t"})
    event = recorder.events[-1]
    assert event["outcome"] == "ok"
    assert event["scriptName"] == staging.config.worker_name
    assert event["eventTimestamp"] == int(staging.clock.now() * 1000)
    assert event["scriptVersion"] == {"id": staging.workers.serving_deployment().versions[0][0]}
    request = event["event"]["request"]
    assert request["method"] == "GET" and request["url"].endswith("/v1/search/title?q=hamlet")
    assert isinstance(request["cf"], dict)
    headers = {k.lower() for k in request["headers"]}
    assert "authorization" not in headers and "x-api-token" not in headers
    assert "cf-connecting-ip" in headers
    assert event["event"]["response"] == {"status": 200}
    assert event["logs"] == [] and event["exceptions"] == []


def test_socket_tokens_never_reach_the_tail(client: TestClient, recorder: Recorder):
    client.get("/ws/progress?jobId=j&token=very-secret")
    assert "very-secret" not in json.dumps(recorder.events[-1])


def test_injected_500s_are_exceptions_in_the_tail_with_one_exception(client: TestClient, staging: Staging, recorder: Recorder):
    deploy_fault(staging, {"error_rate": 1.0, "share_5xx": 1.0})
    client.get("/v1/search/title", params={"q": "hamlet"})
    event = recorder.events[-1]
    assert event["outcome"] == "exception" and event["event"]["response"]["status"] == 500
    assert len(event["exceptions"]) == 1 and event["exceptions"][0]["name"] == "Error"
    assert event["logs"] and event["logs"][0]["level"] == "error"
    row = recorder.performance(staging)[-1]
    assert row.blobs[1] == "INTERNAL_ERROR" and row.doubles[0] == 500.0


def test_an_outage_is_recorded_as_an_exception_with_status_500(client: TestClient, staging: Staging, recorder: Recorder):
    deploy_fault(staging, {"outage": True})
    client.get("/health")
    event = recorder.events[-1]
    assert event["outcome"] == "exception" and len(event["exceptions"]) == 1
    assert recorder.performance(staging)[-1].doubles[0] == 500.0


def test_injected_400s_are_ok_outcomes(client: TestClient, staging: Staging, recorder: Recorder):
    deploy_fault(staging, {"error_rate": 1.0, "share_5xx": 0.0})
    client.get("/v1/search/title", params={"q": "hamlet"})
    assert recorder.events[-1]["outcome"] == "ok" and recorder.events[-1]["exceptions"] == []


def test_the_blob3_quirk_writes_miss_for_hits_and_leaves_the_answer_alone(client: TestClient, staging: Staging,
                                                                         recorder: Recorder):
    deploy_fault(staging, {"quirks": ["blob3_always_miss"]})
    client.get("/v1/search/title", params={"q": "hamlet"})
    answer = client.get("/v1/search/title", params={"q": "hamlet"}).json()
    assert answer["metadata"]["cached"] is True
    assert recorder.performance(staging)[-1].blobs[2] == "MISS"
    assert recorder.cache(staging)[-1].index1 == "edge_hit_fresh", "the cache dataset stays right"


def test_the_double1_quirk_writes_500_for_successes_and_leaves_the_answer_alone(client: TestClient, staging: Staging,
                                                                               recorder: Recorder):
    deploy_fault(staging, {"quirks": ["double1_500"]})
    assert client.get("/v1/search/title", params={"q": "hamlet"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert [r.doubles[0] for r in recorder.performance(staging)] == [500.0, 500.0]
    assert [e["event"]["response"]["status"] for e in recorder.events] == [200, 200]


# --- through the staging's own tail (Cloudflare API part): end to end -----------------------------
def test_the_worker_events_reach_an_open_tail_with_its_filters(client: TestClient, staging: Staging, cf_headers):
    from urllib.parse import urlsplit

    tails = f"/client/v4/accounts/{staging.config.account_id}/workers/scripts/{staging.config.worker_name}/tails"
    created = client.post(tails, headers=cf_headers, json={"filters": [{"outcome": ["exception"]}]})
    assert created.status_code == 200, created.text
    url = urlsplit(created.json()["result"]["url"])
    deploy_fault(staging, {"error_rate": 0.5, "share_5xx": 1.0})
    with client.websocket_connect(f"{url.path}?{url.query}", subprotocols=["trace-v1"]) as ws:
        ws.send_text(json.dumps({"debug": False}))
        codes = [client.get("/v1/search/title", params={"q": f"q{i}"}).status_code for i in range(20)]
        assert 200 in codes and 500 in codes
        received = [ws.receive_json() for _ in range(codes.count(500))]
    assert all(e["outcome"] == "exception" and e["event"]["response"]["status"] == 500 for e in received)
    assert all(e["scriptName"] == staging.config.worker_name and len(e["exceptions"]) == 1 for e in received)


def test_no_telemetry_writes_nothing_and_answers_the_same(staging: Staging, recorder: Recorder):
    """``--no-telemetry`` (only to measure what telemetry costs) writes no data point and no tail event."""
    with TestClient(create_app(staging), base_url="http://staging.test") as on:
        answer_on = on.get("/v1/search/isbn", params={"isbn": "9780743273565"}).json()
    assert len(recorder.performance(staging)) == 1 and len(recorder.events) == 1
    staging.config = staging.config.with_overrides(telemetry=False)
    staging.reset()
    quiet = Recorder()
    staging.analytics.write, staging.tails.publish = quiet.write, quiet.publish  # type: ignore[method-assign]
    with TestClient(create_app(staging), base_url="http://staging.test") as off:
        answer_off = off.get("/v1/search/isbn", params={"isbn": "9780743273565"}).json()
    assert (quiet.points, quiet.events) == ([], [])
    assert answer_off["data"] == answer_on["data"]
