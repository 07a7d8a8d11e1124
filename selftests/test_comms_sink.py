"""The embedded staging's webhook sink (admin routes ``/__staging/webhooks``), in-process: what a drill's
notifications are posted to, validated like a real webhook, with injected failures to test retries."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging
from bookstrack_rollback.staging.webhook_sink import MAX_BODY_BYTES


def messages(client: TestClient, channel: str | None = None) -> list[dict]:
    params = {"channel": channel} if channel else {}
    answer = client.get("/__staging/webhooks", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(body["messages"])
    return body["messages"]


def test_a_post_is_kept_with_its_channel_time_and_order(client: TestClient, staging: Staging):
    first = client.post("/__staging/webhooks/bookstrack-alerts", json={"text": "one", "channel": "#bookstrack-alerts"})
    assert first.status_code == 200 and first.json() == {"ok": True}
    client.post("/__staging/webhooks/engineering", json={"text": "two"})
    client.post("/__staging/webhooks/bookstrack-alerts", json={"text": "three"})
    everything = messages(client)
    assert [(m["seq"], m["channel"], m["body"]["text"]) for m in everything] == [
        (1, "bookstrack-alerts", "one"), (2, "engineering", "two"), (3, "bookstrack-alerts", "three")]
    assert everything[0]["received_at"] == staging.clock.iso()  # the staging's (manual) clock
    assert everything[0]["body"] == {"text": "one", "channel": "#bookstrack-alerts"}
    assert [m["body"]["text"] for m in messages(client, "bookstrack-alerts")] == ["one", "three"]
    assert messages(client, "nobody") == []


def test_bad_bodies_are_refused_and_not_kept(client: TestClient):
    url = "/__staging/webhooks/bookstrack-alerts"
    not_json = client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "the webhook body is not JSON" in not_json.json()["error"]
    not_utf8 = client.post(url, content=b"\xff\xfe\xfa", headers={"Content-Type": "application/json"})
    assert not_utf8.status_code == 400
    array = client.post(url, json=["text"])
    assert array.status_code == 400 and "must be a JSON object, got list" in array.json()["error"]
    empty = client.post(url, content=b"")
    assert empty.status_code == 400
    assert messages(client) == []


def test_a_body_over_256_kib_is_413_whether_declared_or_streamed(client: TestClient):
    url = "/__staging/webhooks/bookstrack-alerts"
    envelope = len(json.dumps({"text": ""}).encode())
    exactly = json.dumps({"text": "x" * (MAX_BODY_BYTES - envelope)}).encode()
    assert len(exactly) == MAX_BODY_BYTES == 256 * 1024
    assert client.post(url, content=exactly).status_code == 200, "256 KiB itself is allowed"
    over = exactly[:-2] + b'x"}'
    declared = client.post(url, content=over)
    assert declared.status_code == 413 and f"at most {MAX_BODY_BYTES} bytes" in declared.json()["error"]

    def chunks():  # no Content-Length: the sink counts while reading
        for start in range(0, len(over), 64 * 1024):
            yield over[start:start + 64 * 1024]

    streamed = client.post(url, content=chunks())
    assert streamed.status_code == 413 and "this one has" not in streamed.json()["error"], "counted, not declared"
    assert len(messages(client)) == 1


def test_a_channel_name_is_checked(client: TestClient):
    answer = client.post("/__staging/webhooks/bad%20channel!", json={"text": "x"})
    assert answer.status_code == 400 and "a webhook channel is 1-80 letters" in answer.json()["error"]
    assert client.put("/__staging/webhooks/bad%20channel!/failures", json={"count": 1}).status_code == 400


def test_injected_failures_answer_503_then_the_sink_recovers(client: TestClient):
    armed = client.put("/__staging/webhooks/status-page/failures", json={"count": 2})
    assert armed.status_code == 200 and armed.json() == {"channel": "status-page", "failures": 2}
    statuses = [client.post("/__staging/webhooks/status-page", json={"n": n}).status_code for n in range(3)]
    assert statuses == [503, 503, 200]
    assert client.post("/__staging/webhooks/engineering", json={"n": 9}).status_code == 200, "per channel"
    assert [m["body"]["n"] for m in messages(client)] == [2, 9]
    client.put("/__staging/webhooks/status-page/failures", json={"count": 5})
    assert client.put("/__staging/webhooks/status-page/failures", json={"count": 0}).json()["failures"] == 0
    assert client.post("/__staging/webhooks/status-page", json={"n": 3}).status_code == 200, "0 clears"


def test_the_failures_body_is_validated(client: TestClient):
    url = "/__staging/webhooks/status-page/failures"
    for body in ({"count": -1}, {"count": "2"}, {"count": True}, {"count": 1001}, {}, [1]):
        answer = client.put(url, json=body)
        assert answer.status_code == 400 and '{"count": N}' in answer.json()["error"], body
    assert client.put(url, content=b"{nope").status_code == 400
    assert client.post("/__staging/webhooks/status-page", json={"ok": 1}).status_code == 200


def test_reset_forgets_messages_and_pending_failures(client: TestClient, staging: Staging):
    client.post("/__staging/webhooks/engineering", json={"text": "before"})
    client.put("/__staging/webhooks/engineering/failures", json={"count": 3})
    assert client.post("/__staging/reset", json={}).status_code == 200
    assert messages(client) == [] and staging.webhooks.failures == {}
    assert client.post("/__staging/webhooks/engineering", json={"text": "after"}).status_code == 200
    assert [(m["seq"], m["body"]["text"]) for m in messages(client)] == [(1, "after")]
