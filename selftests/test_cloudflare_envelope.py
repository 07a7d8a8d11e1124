"""The Cloudflare API envelope and its refusals (contract/cloudflare-api.md, "Envelope and errors"):
authentication, the account id, unknown routes (7003), a method a known path does not support (405),
oversize bodies (413), the rate limit (429)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import ManualClock, Staging, StagingConfig, create_app
from bookstrack_rollback.staging.cloudflare.request_parsing import MAX_BODY_BYTES


def scripts(staging: Staging, account: str | None = None) -> str:
    return f"/client/v4/accounts/{account or staging.config.account_id}/workers/scripts/{staging.config.worker_name}"


def assert_error(response, status: int, code: int, *, contains: str = "") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert body["errors"][0]["code"] == code, body
    message = body["errors"][0]["message"]
    assert contains in message, f"{contains!r} not in {message!r}"
    return message


def test_success_envelope_has_every_field(client: TestClient, staging: Staging, cf_headers):
    body = client.get(f"{scripts(staging)}/deployments", headers=cf_headers).json()
    assert set(body) == {"success", "errors", "messages", "result", "result_info"}
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 403, 10000),
        ({"Authorization": "Bearer some-other-valid-looking-token"}, 403, 10000),
        ({"Authorization": "Bearer x"}, 400, 9106),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 400, 9106),
        ({"Authorization": "Bearer has spaces in it"}, 400, 9106),
    ],
)
def test_bad_tokens_are_refused_before_any_route(client: TestClient, staging: Staging, headers, status, code):
    before = [d.id for d in staging.workers.deployments]
    version = staging.workers.versions[0].id
    body = {"strategy": "percentage", "versions": [{"version_id": version, "percentage": 100}]}
    for response in (
        client.get(f"{scripts(staging)}/deployments", headers=headers),
        client.post(f"{scripts(staging)}/deployments", headers=headers, json=body),
        client.get("/client/v4/no/such/route", headers=headers),
    ):
        assert_error(response, status, code)
    assert [d.id for d in staging.workers.deployments] == before


def test_another_account_is_an_authentication_error(client: TestClient, staging: Staging, cf_headers):
    other = "f" * 32
    assert_error(client.get(f"{scripts(staging, other)}/versions", headers=cf_headers), 403, 10000)
    ns = staging.config.kv_namespace_id
    assert_error(client.get(f"/client/v4/accounts/{other}/storage/kv/namespaces/{ns}/keys", headers=cf_headers),
                 403, 10000)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path",
    ["/client/v4", "/client/v4/", "/client/v4/zones", "/client/v4/accounts/x/workers/scripts/y/no-such-thing"],
)
def test_unknown_routes_answer_7003(client: TestClient, cf_headers, method: str, path: str):
    assert_error(client.request(method, path, headers=cf_headers), 404, 7003, contains="No route for the URI")


def test_a_known_path_with_another_method_answers_405_naming_the_methods_it_has(client: TestClient, staging: Staging,
                                                                               cf_headers):
    before = (list(staging.workers.versions), list(staging.workers.deployments))
    refused = client.patch(f"{scripts(staging)}/deployments", headers=cf_headers, json={})
    assert_error(refused, 405, 10405, contains="PATCH method not allowed")
    assert refused.headers["allow"] == "GET, HEAD, POST"
    assert_error(client.put(f"{scripts(staging)}/versions", headers=cf_headers), 405, 10405)
    assert_error(client.delete("/client/v4/user/tokens/verify", headers=cf_headers), 405, 10405)
    ns = staging.config.kv_namespace_id
    kv = f"/client/v4/accounts/{staging.config.account_id}/storage/kv/namespaces/{ns}"
    assert client.post(f"{kv}/values/some/key", headers=cf_headers, content=b"x").headers["allow"] == \
        "DELETE, GET, HEAD, PUT"
    assert (list(staging.workers.versions), list(staging.workers.deployments)) == before


def test_unknown_script_names_it(client: TestClient, staging: Staging, cf_headers):
    base = f"/client/v4/accounts/{staging.config.account_id}/workers/scripts/ghost-worker"
    for response in (
        client.get(f"{base}/versions", headers=cf_headers),
        client.get(f"{base}/deployments", headers=cf_headers),
        client.post(f"{base}/tails", headers=cf_headers),
    ):
        assert_error(response, 404, 10007, contains="'ghost-worker'")


def test_oversize_bodies_are_refused_with_413_and_change_nothing(client: TestClient, staging: Staging, cf_headers):
    versions_before = list(staging.workers.versions)
    deployments_before = list(staging.workers.deployments)
    kv_before = dict(staging.kv.namespaces[staging.config.kv_namespace_id])
    huge = b"x" * (MAX_BODY_BYTES + 1)
    ns = staging.config.kv_namespace_id
    kv_url = f"/client/v4/accounts/{staging.config.account_id}/storage/kv/namespaces/{ns}/values/big"
    for response in (
        client.post(f"{scripts(staging)}/deployments", headers=cf_headers, content=huge),
        client.post(f"{scripts(staging)}/versions", headers={**cf_headers, "Content-Type": "multipart/form-data; boundary=b"},
                    content=huge),
        client.put(kv_url, headers=cf_headers, content=huge),
    ):
        assert_error(response, 413, 10236, contains=f"the limit is {MAX_BODY_BYTES} bytes")
    assert staging.workers.versions == versions_before and staging.workers.deployments == deployments_before
    assert staging.kv.namespaces[ns] == kv_before


def test_a_streamed_body_without_length_is_capped_too(client: TestClient, staging: Staging, cf_headers):
    def chunks():
        for _ in range(11):
            yield b"y" * (1024 * 1024)

    ns = staging.config.kv_namespace_id
    url = f"/client/v4/accounts/{staging.config.account_id}/storage/kv/namespaces/{ns}/values/streamed"
    assert_error(client.put(url, headers=cf_headers, content=chunks()), 413, 10236, contains="got more than that")
    assert staging.kv.get(ns, "streamed") is None


def test_the_rate_limit_refuses_every_call_for_the_window_with_retry_after():
    clock = ManualClock()
    staging = Staging(StagingConfig(seed=1, api_rate_limit=3, api_rate_window_s=300.0), clock=clock)
    headers = {"Authorization": f"Bearer {staging.config.token}"}
    with TestClient(create_app(staging), base_url="http://staging.test") as client:
        url = f"{scripts(staging)}/deployments"
        assert [client.get(url, headers=headers).status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get(url, headers=headers)
        assert_error(refused, 429, 971)
        assert refused.headers["retry-after"] == "300"
        clock.advance(299)
        assert client.get(url, headers=headers).status_code == 429
        clock.advance(2)
        assert client.get(url, headers=headers).status_code == 200
