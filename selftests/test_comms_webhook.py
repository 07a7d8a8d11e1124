"""Posting the runbook's messages to webhooks (ROLLBACK_PROCEDURE.md, "Communication Procedures"): to the
embedded staging's sink over a real socket (order, retries after injected 503s, a clear error when they
are exhausted), to nothing (refused connection, silence) and to a mock (4xx), with the webhook URL, a
secret, absent from every error, repr, receipt and log line."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bookstrack_rollback.comms import (
    IncidentFacts,
    RecoveryFacts,
    Release,
    StatusState,
    Webhook,
    WebhookError,
    WebhookReceipt,
    WebhookRefused,
    WebhookUnavailable,
    render_rollback_complete,
    render_rollback_in_progress,
    render_status_update,
)
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.staging import RunningStaging

WEBHOOK_TOKEN = "T0DRILL-B0DRILL-s3cr3t9f2c7a41"  # what a Slack webhook URL carries
SENT_AT = datetime(2025, 11, 15, 14, 31, tzinfo=timezone.utc)
FACTS = IncidentFacts(
    incident_id="INC-2025-123", deployment=Release("v2.0 API changes", "abc123"),
    reason="Error rate spiked to 31.2% (95% CI 27.3-35.4%) after deployment",
    rollback_target=Release("v1.9.0", "def456"), eta_min=5, status_page_url="https://status.oooefam.net",
    dashboard_url="https://dash.cloudflare.com/0123/workers/services/view/api-worker",
)
RECOVERY = RecoveryFacts("Back to normal (2.0%)", 412.0, "All checks passed")


class RecordingSleep:
    """The injected sleep: records what the poster would have waited, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def sink_url(live: RunningStaging, channel: str) -> Secret:
    return Secret(f"{live.base_url}/__staging/webhooks/{channel}?token={WEBHOOK_TOKEN}")


def sink(live: RunningStaging, channel: str | None = None) -> list[dict]:
    params = {"channel": channel} if channel else None
    answer = httpx.get(f"{live.base_url}/__staging/webhooks", params=params, timeout=5, trust_env=False)
    answer.raise_for_status()
    return answer.json()["messages"]


def fail_next(live: RunningStaging, channel: str, count: int) -> None:
    httpx.put(f"{live.base_url}/__staging/webhooks/{channel}/failures", json={"count": count}, timeout=5,
              trust_env=False).raise_for_status()


def assert_secret_kept(url: Secret, *things: object) -> None:
    for thing in things:
        for text in (str(thing), repr(thing)):
            assert url.reveal() not in text and WEBHOOK_TOKEN not in text, text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged, at DEBUG, by every library: the token must be in none of it."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    for record in caplog.records:
        assert WEBHOOK_TOKEN not in record.getMessage(), record.getMessage()
    assert WEBHOOK_TOKEN not in caplog.text


def post_all(webhook: Webhook, messages: list) -> list[WebhookReceipt]:
    async def run() -> list[WebhookReceipt]:
        async with webhook:
            return [await webhook.post(message) for message in messages]

    return asyncio.run(run())


def post_one(webhook: Webhook, message) -> WebhookReceipt:
    return post_all(webhook, [message])[0]


# --- over the live socket ----------------------------------------------------------------------------
def test_messages_arrive_in_order_with_the_runbooks_payloads(live: RunningStaging, logs):
    sleep = RecordingSleep()
    started = render_rollback_in_progress(FACTS)
    updates = [render_status_update(FACTS, state, SENT_AT + timedelta(minutes=n))
               for n, state in enumerate(StatusState)]
    alerts = Webhook(sink_url(live, "bookstrack-alerts"), channel="#bookstrack-alerts", sleep=sleep,
                     now=lambda: SENT_AT)
    engineering = Webhook(sink_url(live, "engineering"), channel="#engineering", sleep=sleep)
    status_page = Webhook(sink_url(live, "status-page"), channel="status-page", sleep=sleep)

    receipts = post_all(alerts, [started, render_rollback_complete(FACTS, RECOVERY)])
    receipts += post_all(engineering, [started])
    receipts += post_all(status_page, updates)

    assert receipts[0] == WebhookReceipt("#bookstrack-alerts", "slack", 200, 1, SENT_AT)
    assert [(r.channel, r.kind, r.attempts) for r in receipts] == [
        ("#bookstrack-alerts", "slack", 1), ("#bookstrack-alerts", "slack", 1), ("#engineering", "slack", 1),
        *[("status-page", "status_page", 1)] * 4]
    assert all(r.sent_at.tzinfo is not None for r in receipts) and sleep.calls == []
    assert [m["body"] for m in sink(live, "bookstrack-alerts")] == [
        {"text": started.text, "channel": "#bookstrack-alerts"},
        {"text": render_rollback_complete(FACTS, RECOVERY).text, "channel": "#bookstrack-alerts"}]
    assert sink(live, "engineering")[0]["body"]["text"].startswith("🚨 **ROLLBACK IN PROGRESS**\n\nDeployment: ")
    posted = [m["body"] for m in sink(live, "status-page")]
    assert [p["status"] for p in posted] == ["investigating", "identified", "monitoring", "resolved"]
    assert posted[-1] == {"status": "resolved", "title": "API Error Rate Elevated", "body": updates[-1].body}
    assert [m["seq"] for m in sink(live)] == list(range(1, 8)), "kept in the order they were posted"
    for channel, webhook in (("bookstrack-alerts", alerts), ("engineering", engineering),
                             ("status-page", status_page)):
        assert_secret_kept(sink_url(live, channel), webhook, *receipts)
    assert any(r.name.startswith("httpcore") for r in logs.records), "library logs were captured too"


def test_injected_503s_are_retried_with_the_injected_backoff(live: RunningStaging, logs):
    fail_next(live, "bookstrack-alerts", 2)
    sleep = RecordingSleep()
    url = sink_url(live, "bookstrack-alerts")
    receipt = post_one(Webhook(url, channel="#bookstrack-alerts", sleep=sleep), render_rollback_in_progress(FACTS))
    assert (receipt.status_code, receipt.attempts) == (200, 3)
    assert sleep.calls == [0.5, 1.0]
    assert len(sink(live, "bookstrack-alerts")) == 1, "delivered once"
    log = httpx.get(f"{live.base_url}/__staging/requests", params={"api": "admin"}, timeout=5, trust_env=False)
    posts = [r for r in log.json()["requests"] if r["method"] == "POST" and "/webhooks/" in r["path"]]
    assert [r["status"] for r in posts] == [503, 503, 200]
    assert all(r["query"] == "token=%5Bredacted%5D" for r in posts)
    assert sum("attempt 1 of 3 failed (HTTP 503" in r.getMessage() for r in logs.records) == 1
    assert_secret_kept(url, receipt)


def test_a_clear_error_once_the_retries_are_exhausted(live: RunningStaging, logs):
    fail_next(live, "status-page", 3)
    sleep = RecordingSleep()
    url = sink_url(live, "status-page")
    webhook = Webhook(url, channel="status-page", sleep=sleep)
    update = render_status_update(FACTS, StatusState.INVESTIGATING, SENT_AT)
    with pytest.raises(WebhookUnavailable) as caught:
        post_one(webhook, update)
    error = caught.value
    assert str(error).startswith("posting the status page update to status-page failed after 3 attempts: "
                                 "attempt 1: HTTP 503 (")
    assert "attempt 3: HTTP 503" in str(error) and "injected failure" in str(error)
    assert (error.channel, error.kind, error.attempts, error.status) == ("status-page", "status_page", 3, 503)
    assert error.__cause__ is None and error.__context__ is None
    assert sleep.calls == [0.5, 1.0] and sink(live) == []
    assert_secret_kept(url, error, webhook)
    assert post_one(Webhook(url, channel="status-page", sleep=sleep), update).attempts == 1, "the sink recovered"


def test_fewer_retries_when_asked(live: RunningStaging):
    fail_next(live, "engineering", 1)
    sleep = RecordingSleep()
    with pytest.raises(WebhookUnavailable, match="failed after 1 attempt: attempt 1: HTTP 503"):
        post_one(Webhook(sink_url(live, "engineering"), channel="#engineering", retries=0, sleep=sleep),
                 render_rollback_in_progress(FACTS))
    assert sleep.calls == []


# --- nothing listening, or nothing answering -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_a_clear_error_without_the_url(logs):
    url = Secret(f"http://127.0.0.1:{free_port()}/services/{WEBHOOK_TOKEN}")
    sleep = RecordingSleep()
    webhook = Webhook(url, channel="#bookstrack-alerts", sleep=sleep)
    with pytest.raises(WebhookUnavailable) as caught:
        post_one(webhook, render_rollback_in_progress(FACTS))
    message = str(caught.value)
    assert message.startswith("posting the Slack message to #bookstrack-alerts failed after 3 attempts: "
                              "attempt 1: ConnectError")
    assert caught.value.status is None and sleep.calls == [0.5, 1.0]
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert_secret_kept(url, caught.value, webhook)


def test_silence_is_a_timeout_not_a_hang(logs):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = Secret(f"http://127.0.0.1:{silent.getsockname()[1]}/services/{WEBHOOK_TOKEN}")
        sleep = RecordingSleep()
        webhook = Webhook(url, channel="status-page", sleep=sleep, timeout=httpx.Timeout(0.2))
        with pytest.raises(WebhookUnavailable) as caught:
            post_one(webhook, render_status_update(FACTS, StatusState.MONITORING, SENT_AT))
    assert "attempt 1: no answer in time (ReadTimeout)" in str(caught.value)
    assert "attempt 3: no answer in time" in str(caught.value) and sleep.calls == [0.5, 1.0]
    assert_secret_kept(url, caught.value)


# --- answers that are not retried ------------------------------------------------------------------------
def test_a_4xx_is_refused_at_once_and_an_echoed_url_is_withheld(logs):
    url = Secret(f"https://hooks.example.test/services/{WEBHOOK_TOKEN}")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, text=f"no_service: {request.url}")

    sleep = RecordingSleep()
    webhook = Webhook(url, channel="#engineering", sleep=sleep, transport=httpx.MockTransport(handler))
    with pytest.raises(WebhookRefused) as caught:
        post_one(webhook, render_rollback_in_progress(FACTS))
    assert len(seen) == 1 and sleep.calls == []
    assert (caught.value.status, caught.value.attempts) == (404, 1)
    assert "refused it with HTTP 404 (no_service: [webhook URL withheld]); not retried" in str(caught.value)
    assert seen[0].extensions["timeout"] == {"connect": 3.0, "read": 5.0, "write": 5.0, "pool": 3.0}
    assert_secret_kept(url, caught.value)


def test_a_webhook_is_configured_safely():
    url = Secret(f"https://hooks.example.test/services/{WEBHOOK_TOKEN}")
    webhook = Webhook(url, channel="#bookstrack-alerts")
    assert repr(webhook) == "Webhook(channel='#bookstrack-alerts', url=Secret('***'))"
    asyncio.run(webhook.aclose())
    for bad in (Secret(f"ftp://example.test/{WEBHOOK_TOKEN}"), Secret(f"not a url {WEBHOOK_TOKEN}")):
        with pytest.raises(ValueError) as caught:
            Webhook(bad, channel="#x")
        assert WEBHOOK_TOKEN not in str(caught.value) and "[webhook URL withheld]" in str(caught.value)
    with pytest.raises(TypeError, match="as a Secret"):
        Webhook(f"https://hooks.example.test/{WEBHOOK_TOKEN}", channel="#x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries must be an integer from 0 to 2"):
        Webhook(url, channel="#x", retries=3)
    with pytest.raises(ValueError, match="backoff_s"):
        Webhook(url, channel="#x", backoff_s=())
    assert issubclass(WebhookRefused, WebhookError) and issubclass(WebhookUnavailable, WebhookError)
