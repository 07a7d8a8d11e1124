"""WebSocket /ws/progress (contract/bookstrack-api.md): the handshake checks in the contract's order,
ready -> ready_ack, job_progress ... job_complete then 1000, error then 1011, 1002 for anything the
client sends but ready, no replay of progress sent before the client connected; the same handshake
over a real socket (uvicorn, websockets client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bookstrack_rollback.faults import FaultProfile
from bookstrack_rollback.staging import ManualClock, RunningStaging, Staging
from bookstrack_rollback.staging.bookstrack.faults import ActiveFaults, build_units
from bookstrack_rollback.staging.bookstrack.jobs import BatchBook

BOOKS = [{"title": "Dune", "author": "Frank Herbert"}, {"title": "Hamlet"}, {"title": "Emma"}]


def start_job(client: TestClient, job_id: str = "job-1", books: list[dict[str, Any]] | None = None) -> str:
    response = client.post("/v1/enrichment/batch", json={"jobId": job_id, "books": books or BOOKS})
    assert response.status_code == 202, response.text
    return response.json()["data"]["token"]


def denial(client: TestClient, url: str) -> WebSocketDenialResponse:
    with pytest.raises(WebSocketDenialResponse) as refused:
        with client.websocket_connect(url):
            pass
    return refused.value


def read_until_close(ws: Any) -> tuple[list[dict[str, Any]], WebSocketDisconnect]:
    messages: list[dict[str, Any]] = []
    while True:
        try:
            messages.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return messages, closed


# --- handshake ------------------------------------------------------------------------------------
def test_no_job_id_is_a_400_json_missing_param_for_sockets_and_plain_gets(client: TestClient):
    for url in ("/ws/progress", "/ws/progress?token=abc", "/ws/progress?jobId=&token=abc"):
        refused = denial(client, url)
        assert refused.status_code == 400
        assert refused.json()["success"] is False and refused.json()["error"]["code"] == "MISSING_PARAM"
        plain = client.get(url)
        assert plain.status_code == 400 and plain.json()["error"]["code"] == "MISSING_PARAM"


def test_a_plain_get_with_a_job_id_is_426_before_the_token_is_looked_at(client: TestClient):
    token = start_job(client)
    for query in ("jobId=job-1", "jobId=job-1&token=bogus", f"jobId=job-1&token={token}"):
        response = client.get(f"/ws/progress?{query}")
        assert response.status_code == 426
        assert response.text == "Expected Upgrade: websocket"


def test_a_bad_token_is_401_unauthorized(client: TestClient):
    token = start_job(client)
    start_job(client, "job-2")
    for url in (
        "/ws/progress?jobId=job-1",
        "/ws/progress?jobId=job-1&token=test",
        "/ws/progress?jobId=test&token=test",  # the runbook's check: 401 from a healthy worker
        f"/ws/progress?jobId=job-2&token={token}",  # a token is valid for its own jobId only
    ):
        refused = denial(client, url)
        assert (refused.status_code, refused.text) == (401, "Unauthorized"), url


def test_an_expired_token_is_401_token_expired_and_a_bad_one_still_unauthorized(client: TestClient, clock: ManualClock):
    token = start_job(client)
    clock.advance(2 * 60 * 60 + 1)
    refused = denial(client, f"/ws/progress?jobId=job-1&token={token}")
    assert (refused.status_code, refused.text) == (401, "Token expired")
    refused = denial(client, "/ws/progress?jobId=job-1&token=nope")
    assert (refused.status_code, refused.text) == (401, "Unauthorized")


def test_a_token_is_good_until_its_two_hours_are_over(client: TestClient, clock: ManualClock):
    token = start_job(client)
    clock.advance(2 * 60 * 60)
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        assert ws.receive_json()["type"] == "ready_ack"


# --- the session ----------------------------------------------------------------------------------
def test_ready_is_acknowledged_then_progress_then_job_complete_then_close_1000(client: TestClient):
    token = start_job(client)
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        messages, closed = read_until_close(ws)
    assert (closed.code, closed.reason) == (1000, "Job completed")
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "ready_ack" and kinds[-1] == "job_complete"
    progress = [m for m in messages if m["type"] == "job_progress"]
    assert [m["payload"]["progress"] for m in progress] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0], abs=1e-3)
    for message in messages:
        assert set(message) == {"type", "jobId", "pipeline", "timestamp", "version", "payload"}
        assert message["jobId"] == "job-1" and message["pipeline"] == "batch_enrichment"
        assert message["payload"]["type"] == message["type"] and isinstance(message["timestamp"], int)
    last = progress[-1]["payload"]
    assert last["processedCount"] == 3 and last["currentItem"] == "Emma" and "3/3" in last["status"]
    summary = messages[-1]["payload"]["summary"]
    assert summary["totalProcessed"] == 3 and summary["successCount"] + summary["failureCount"] == 3
    assert 0 <= summary["duration"] < 1000 and summary["resourceId"]


def test_the_job_waits_for_a_client_that_connects_late(client: TestClient, staging: Staging):
    token = start_job(client)
    job = staging.books.jobs.jobs["job-1"]
    assert job.status == "pending"
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        messages, closed = read_until_close(ws)
    assert closed.code == 1000 and job.status == "complete"


@pytest.mark.parametrize("garbage", ["ping", '{"type": "ping"}', "not json {", "[]", '{"kind": "ready"}', '"ready"'])
def test_anything_but_ready_closes_with_1002(client: TestClient, staging: Staging, garbage: str):
    token = start_job(client)
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_text(garbage)
        messages, closed = read_until_close(ws)
    assert closed.code == 1002 and messages == []
    # state unchanged: the token still opens the socket and the job still runs to its end
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        messages, closed = read_until_close(ws)
    assert closed.code == 1000 and messages[-1]["type"] == "job_complete"


def test_a_binary_frame_or_a_ping_after_ready_closes_with_1002(client: TestClient):
    token = start_job(client, books=[{"title": "t"}] * 3)
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_bytes(b'{"type": "ready"}')
        _, closed = read_until_close(ws)
    assert closed.code == 1002
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        assert ws.receive_json()["type"] == "ready_ack"
        ws.send_json({"type": "ping"})
        messages, closed = read_until_close(ws)
    assert closed.code == 1002
    assert all(m["type"] == "job_progress" for m in messages)


def test_progress_sent_before_the_client_connects_is_not_replayed(client: TestClient, staging: Staging):
    staging.books.jobs.ready_timeout_s = 0.0  # the job goes on without waiting for a client
    token = start_job(client)
    job = staging.books.jobs.jobs["job-1"]
    assert client.portal is not None
    client.portal.call(job.wait_done)
    assert job.status == "complete" and job.sent == []
    with client.websocket_connect(f"/ws/progress?jobId=job-1&token={token}") as ws:
        ws.send_json({"type": "ready"})
        assert ws.receive_json()["type"] == "ready_ack"
        ws.send_text("ping")  # the next thing received is the 1002 close: nothing was replayed
        messages, closed = read_until_close(ws)
    assert messages == [] and closed.code == 1002


def test_a_failed_job_sends_error_then_closes_1011(client: TestClient, staging: Staging):
    failing = FaultProfile(error_rate=1.0, share_5xx=1.0)
    faults = ActiveFaults(staging.workers.version_for_request(), failing, build_units(failing))
    assert client.portal is not None

    async def start() -> str:
        return staging.books.jobs.start("doomed", (BatchBook("Dune"), BatchBook("Emma")), faults).token

    token = client.portal.call(start)
    with client.websocket_connect(f"/ws/progress?jobId=doomed&token={token}") as ws:
        ws.send_json({"type": "ready"})
        messages, closed = read_until_close(ws)
    assert (closed.code, closed.reason) == (1011, "Job failed")
    error = messages[-1]
    assert error["type"] == "error" and error["jobId"] == "doomed"
    assert error["payload"]["code"] == "E_BATCH_PROCESSING_FAILED" and error["payload"]["retryable"] is True
    assert error["payload"]["message"]
    assert staging.books.jobs.jobs["doomed"].status == "failed"


def test_a_websocket_to_an_unknown_path_is_refused_with_the_404(client: TestClient):
    refused = denial(client, "/ws/elsewhere")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "NOT_FOUND"


# --- over a real socket ---------------------------------------------------------------------------
async def _live_session(base: str, token: str) -> tuple[list[dict[str, Any]], int | None, str | None]:
    ws_base = base.replace("http://", "ws://")
    statuses = []
    for query in ("", "?jobId=live&token=bogus"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws_base}/ws/progress{query}", proxy=None, open_timeout=5):
                pass
        statuses.append((refused.value.response.status_code, bytes(refused.value.response.body or b"")))
    assert statuses[0][0] == 400 and b"MISSING_PARAM" in statuses[0][1]
    assert statuses[1] == (401, b"Unauthorized")
    messages: list[dict[str, Any]] = []
    async with connect(f"{ws_base}/ws/progress?jobId=live&token={token}", proxy=None, open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "ready"}))
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        return messages, ws.close_code, ws.close_reason


def test_the_handshake_and_a_whole_job_over_a_real_socket(live: RunningStaging):
    base = live.base_url
    with httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/ws/progress?jobId=live").status_code == 426
        token = http.post("/v1/enrichment/batch", json={"jobId": "live", "books": BOOKS}).json()["data"]["token"]
    messages, code, reason = asyncio.run(asyncio.wait_for(_live_session(base, token), timeout=20))
    assert (code, reason) == (1000, "Job completed")
    assert messages[0]["type"] == "ready_ack" and messages[-1]["type"] == "job_complete"
