"""POST /v1/enrichment/batch (contract/bookstrack-api.md): the 202 and its token, body validation
with enveloped 400s, the 413 cap, broken JSON, and the rate limit of 10 per 60 s per client IP on
the staging clock (moved, never slept)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import ManualClock, Staging
from bookstrack_rollback.staging.bookstrack.routes import MAX_BODY_BYTES

DUNE = {"title": "Dune", "author": "Frank Herbert", "isbn": "9780441172719"}


def post_batch(client: TestClient, body: object, ip: str = "203.0.113.7"):
    return client.post("/v1/enrichment/batch", json=body, headers={"CF-Connecting-IP": ip})


def test_a_valid_batch_is_accepted_with_a_token_for_its_job(client: TestClient, staging: Staging, clock: ManualClock):
    response = post_batch(client, {"jobId": "job-1", "books": [DUNE, {"title": "Hamlet"}]})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"data", "metadata"}
    data = body["data"]
    assert data["success"] is True and data["processedCount"] == 0 and data["totalCount"] == 2
    assert len(data["token"]) == 36 and data["token"].count("-") == 4
    job = staging.books.jobs.jobs["job-1"]
    assert job.token == data["token"]
    assert job.expires_at == clock.now() + 2 * 60 * 60


def test_tokens_are_drawn_from_the_seed(clock: ManualClock):
    from bookstrack_rollback.staging import StagingConfig, create_app

    tokens = []
    for _ in range(2):
        staging = Staging(StagingConfig(seed=77), clock=clock)
        with TestClient(create_app(staging)) as client:
            tokens.append(post_batch(client, {"jobId": "j", "books": [DUNE]}).json()["data"]["token"])
    assert tokens[0] == tokens[1]


def test_a_new_batch_for_the_same_job_replaces_its_token(client: TestClient, staging: Staging):
    first = post_batch(client, {"jobId": "same", "books": [DUNE]}).json()["data"]["token"]
    second = post_batch(client, {"jobId": "same", "books": [DUNE]}).json()["data"]["token"]
    assert first != second
    assert staging.books.jobs.check_token("same", first) == "Unauthorized"
    assert staging.books.jobs.check_token("same", second) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([DUNE], "E_INVALID_REQUEST"),
        ({"jobId": "j"}, "E_INVALID_REQUEST"),
        ({"jobId": "j", "books": "Dune"}, "E_INVALID_REQUEST"),
        ({"books": [DUNE]}, "E_INVALID_REQUEST"),
        ({"jobId": "", "books": [DUNE]}, "E_INVALID_REQUEST"),
        ({"jobId": 7, "books": [DUNE]}, "E_INVALID_REQUEST"),
        ({"jobId": "j" * 129, "books": [DUNE]}, "E_INVALID_REQUEST"),
        ({"jobId": "j", "books": []}, "E_EMPTY_BATCH"),
        ({"jobId": "j", "books": [DUNE] * 101}, "E_BATCH_TOO_LARGE"),
        ({"jobId": "j", "books": [{"author": "x"}]}, "E_INVALID_BOOK"),
        ({"jobId": "j", "books": ["Dune"]}, "E_INVALID_BOOK"),
        ({"jobId": "j", "books": [{"title": "t" * 501}]}, "E_TITLE_TOO_LONG"),
        ({"jobId": "j", "books": [{"title": "t", "author": 3}]}, "E_INVALID_BOOK"),
        ({"jobId": "j", "books": [{"title": "t", "author": "a" * 301}]}, "E_AUTHOR_TOO_LONG"),
        ({"jobId": "j", "books": [{"title": "t", "isbn": 978}]}, "E_INVALID_BOOK"),
        ({"jobId": "j", "books": [{"title": "t", "isbn": "9" * 18}]}, "E_ISBN_TOO_LONG"),
    ],
)
def test_invalid_bodies_get_an_enveloped_400_and_change_nothing(client: TestClient, staging: Staging, body, code):
    response = post_batch(client, body)
    assert response.status_code == 400
    error = response.json()
    assert error["data"] is None and error["error"]["code"] == code and error["error"]["message"]
    assert staging.books.jobs.jobs == {}


def test_the_field_limits_themselves_are_accepted(client: TestClient):
    book = {"title": "t" * 500, "author": "a" * 300, "isbn": "978-0-441-17271-9"}
    assert post_batch(client, {"jobId": "edge", "books": [book] * 100}).status_code == 202


def test_broken_json_is_a_clear_400(client: TestClient, staging: Staging):
    for raw in (b'{"jobId": "j", "books": [', b"\xff\xfe not utf-8", b""):
        response = client.post("/v1/enrichment/batch", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "E_INVALID_REQUEST"
        assert "not valid JSON" in response.json()["error"]["message"]
    assert staging.books.jobs.jobs == {}


def test_an_oversize_body_is_refused_with_413_without_being_read_whole(client: TestClient, staging: Staging):
    huge = json.dumps({"jobId": "big", "books": [{"title": "x" * 400}] * 2000}).encode()
    assert len(huge) > MAX_BODY_BYTES
    response = client.post("/v1/enrichment/batch", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "E_PAYLOAD_TOO_LARGE"
    assert str(MAX_BODY_BYTES) in response.json()["error"]["message"]

    def chunks():  # no Content-Length: the cap must hold while streaming
        for _ in range(20):
            yield b"x" * 65536

    response = client.post("/v1/enrichment/batch", content=chunks())
    assert response.status_code == 413
    assert staging.books.jobs.jobs == {}


# --- rate limit -----------------------------------------------------------------------------------
def test_the_eleventh_batch_within_a_minute_gets_the_flat_429(client: TestClient, clock: ManualClock):
    for i in range(10):
        assert post_batch(client, {"jobId": f"j{i}", "books": [DUNE]}).status_code == 202
    clock.advance(15)
    response = post_batch(client, {"jobId": "j10", "books": [DUNE]})
    assert response.status_code == 429
    body = response.json()
    assert "data" not in body, "the 429 body is flat, not enveloped"
    assert body["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"] == "Rate limit exceeded. Please try again in 45 seconds."
    assert body["details"]["retryAfter"] == 45
    assert response.headers["retry-after"] == "45"
    assert response.headers["x-ratelimit-limit"] == "10"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) == int((clock.now() + 45) * 1000)


def test_the_limit_is_per_client_ip_and_the_window_reopens(client: TestClient, clock: ManualClock):
    for i in range(10):
        post_batch(client, {"jobId": f"j{i}", "books": [DUNE]})
    assert post_batch(client, {"jobId": "x", "books": [DUNE]}).status_code == 429
    assert post_batch(client, {"jobId": "y", "books": [DUNE]}, ip="198.51.100.2").status_code == 202
    clock.advance(59.5)
    assert post_batch(client, {"jobId": "x", "books": [DUNE]}).headers["retry-after"] == "1"
    clock.advance(0.5)
    assert post_batch(client, {"jobId": "x", "books": [DUNE]}).status_code == 202


def test_invalid_requests_count_against_the_limit_as_in_production(client: TestClient):
    for _ in range(10):
        assert post_batch(client, {"jobId": "j", "books": []}).status_code == 400
    assert post_batch(client, {"jobId": "j", "books": [DUNE]}).status_code == 429


def test_searches_are_not_rate_limited(client: TestClient):
    statuses = {client.get("/v1/search/title", params={"q": f"q{i}"}).status_code for i in range(30)}
    assert statuses == {200}
