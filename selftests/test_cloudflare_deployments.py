"""Deployments: list (both keys, newest first, paged), create (a rollback is just this), get, delete,
and their refusals: percentages, unknown versions, the 10-newest window, the 10220 secret refusal,
the serving deployment (contract/cloudflare-api.md, "Deployments"; notes/real-clients.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging
from cloudflare_answers import scripts, assert_error
from bookstrack_rollback.staging.cloudflare.workers import ROLLBACK_WINDOW


def traffic(*pairs: tuple[str, float], message: str | None = "Rollback due to errors") -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy": "percentage",
        "versions": [{"version_id": v, "percentage": p} for v, p in pairs],
    }
    if message is not None:
        body["annotations"] = {"workers/message": message}
    return body


def upload(client: TestClient, staging: Staging, headers, *, secrets: dict[str, str] | None = None,
           tag: str = "x") -> str:
    bindings = [{"type": "secret_text", "name": n, "text": t} for n, t in (secrets or {}).items()]
    metadata = {"main_module": "index.js", "bindings": bindings, "annotations": {"workers/tag": tag}}
    files = [("metadata", (None, json.dumps(metadata).encode(), "application/json")),
             ("index.js", ("index.js", b"export default {}", "application/javascript+module"))]
    response = client.post(f"{scripts(staging)}/versions", headers=headers, files=files)
    assert response.status_code == 200, response.text
    return response.json()["result"]["id"]


def serving_version(staging: Staging) -> str:
    return staging.workers.serving_deployment().versions[0][0]


def state_of(staging: Staging) -> tuple[Any, ...]:
    return (tuple(staging.workers.versions), tuple(staging.workers.deployments))


def test_list_serves_both_keys_newest_first(client: TestClient, staging: Staging, cf_headers):
    body = client.get(f"{scripts(staging)}/deployments", headers=cf_headers).json()
    result = body["result"]
    assert result["deployments"] == result["items"]
    first = result["deployments"][0]
    assert first["id"] == staging.workers.serving_deployment().id
    assert first["versions"] == [{"version_id": staging.workers.versions[2].id, "percentage": 100}]
    assert set(first) >= {"id", "created_on", "source", "strategy", "author_email", "annotations", "versions"}
    created = [d["created_on"] for d in result["deployments"]]
    assert created == sorted(created, reverse=True) and len(set(created)) == 3
    assert body["result_info"]["total_count"] == 3


def test_page_two_is_empty_so_the_sdk_stops(client: TestClient, staging: Staging, cf_headers):
    result = client.get(f"{scripts(staging)}/deployments?page=2", headers=cf_headers).json()["result"]
    assert result == {"deployments": [], "items": []}
    paged = client.get(f"{scripts(staging)}/deployments?page=2&per_page=2", headers=cf_headers).json()["result"]
    assert [d["id"] for d in paged["items"]] == [staging.workers.deployments[2].id]


def test_a_rollback_is_a_new_deployment_of_an_older_version(client: TestClient, staging: Staging, cf_headers):
    target = staging.workers.versions[1].id
    body = {**traffic((target, 100), message="drill"), "code_update_strategy": {"mode": "deferred", "max_delay": 300}}
    response = client.post(f"{scripts(staging)}/deployments", headers=cf_headers, json=body)
    assert response.status_code == 200, response.text
    created = response.json()["result"]
    assert created["versions"] == [{"version_id": target, "percentage": 100}]
    assert created["annotations"] == {"workers/message": "drill"}, "annotations are kept as the client sent them"
    assert created["source"] == "api" and created["strategy"] == "percentage"
    assert staging.workers.serving_deployment().id == created["id"]
    assert serving_version(staging) == target
    listed = client.get(f"{scripts(staging)}/deployments", headers=cf_headers).json()["result"]["deployments"]
    assert listed[0]["id"] == created["id"] and len(listed) == 4


def test_wrangler_deployments_are_sourced_wrangler(client: TestClient, staging: Staging, cf_headers):
    headers = {**cf_headers, "User-Agent": "wrangler/4.86.0"}
    target = staging.workers.versions[0].id
    created = client.post(f"{scripts(staging)}/deployments", headers=headers, json=traffic((target, 100))).json()
    assert created["result"]["source"] == "wrangler"


def test_a_split_of_two_versions_is_accepted(client: TestClient, staging: Staging, cf_headers):
    old, new = staging.workers.versions[1].id, staging.workers.versions[2].id
    response = client.post(f"{scripts(staging)}/deployments", headers=cf_headers,
                           json=traffic((new, 90), (old, 10), message=None))
    assert response.status_code == 200, response.text
    assert staging.workers.serving_deployment().versions == [(new, 90), (old, 10)]
    assert response.json()["result"]["annotations"] == {}


BAD_BODIES = [
    pytest.param(lambda v: b"{broken", 10240, "not valid JSON", id="not-json"),
    pytest.param(lambda v: b"[]", 10240, "must be a JSON object", id="not-object"),
    pytest.param(lambda v: b"", 10240, "is empty", id="empty"),
    pytest.param(lambda v: {**traffic((v[0], 100)), "strategy": "immediate"}, 10234, "strategy", id="bad-strategy"),
    pytest.param(lambda v: {"strategy": "percentage", "versions": []}, 10234, "non-empty list", id="no-versions"),
    pytest.param(lambda v: traffic((v[0], 60), (v[1], 30)), 10234, "sum to 100, got 90", id="sum-90"),
    pytest.param(lambda v: traffic((v[0], 50), (v[1], 30), (v[2], 20)), 10234, "one or two versions",
                 id="three-versions"),
    pytest.param(lambda v: traffic((v[0], 50), (v[0], 50)), 10234, "only once", id="duplicate"),
    pytest.param(lambda v: traffic((v[0], 150), (v[1], -50)), 10234, "from 0 to 100", id="out-of-range"),
    pytest.param(lambda v: traffic((v[0], "100")), 10234, "must be a number", id="percentage-string"),
    pytest.param(lambda v: {**traffic((v[0], 100)), "annotations": {"workers/message": 5}}, 10234, "must be a string",
                 id="annotation-not-string"),
    pytest.param(lambda v: traffic(("11111111-1111-4111-8111-111111111111", 100)), 10230,
                 "11111111-1111-4111-8111-111111111111", id="unknown-version"),
]


@pytest.mark.parametrize(("make_body", "code", "expected"), BAD_BODIES)
def test_bad_deployments_are_refused_and_change_nothing(client: TestClient, staging: Staging, cf_headers,
                                                        make_body, code: int, expected: str):
    body = make_body([v.id for v in staging.workers.versions])
    before = state_of(staging)
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = client.post(f"{scripts(staging)}/deployments", headers=cf_headers, **kwargs)
    assert_error(response, 404 if code == 10230 else 400, code, contains=expected)
    assert state_of(staging) == before


def test_only_the_ten_newest_versions_can_be_rolled_back_to(client: TestClient, staging: Staging, cf_headers):
    for n in range(ROLLBACK_WINDOW):
        upload(client, staging, cf_headers, tag=f"2.{n}.0")
    versions = staging.workers.versions  # 13 now, oldest first
    before = state_of(staging)
    too_old = versions[2]  # number 3: the 11th newest
    message = assert_error(
        client.post(f"{scripts(staging)}/deployments", headers=cf_headers, json=traffic((too_old.id, 100))),
        400, 10232, contains=too_old.id,
    )
    assert "only the 10 most recent versions (numbers 4 to 13)" in message
    assert state_of(staging) == before
    oldest_allowed = versions[3]
    response = client.post(f"{scripts(staging)}/deployments", headers=cf_headers, json=traffic((oldest_allowed.id, 100)))
    assert response.status_code == 200, response.text
    deployable = client.get(f"{scripts(staging)}/versions?deployable=true", headers=cf_headers).json()["result"]
    assert [v["number"] for v in deployable["items"]] == list(range(13, 3, -1))
    everything = client.get(f"{scripts(staging)}/versions", headers=cf_headers).json()["result"]
    assert len(everything["items"]) == 13


def test_a_changed_secret_refuses_the_rollback_with_10220_until_forced(client: TestClient, staging: Staging, cf_headers):
    url = f"{scripts(staging)}/deployments"
    first = upload(client, staging, cf_headers, secrets={"API_KEY": "one", "DB_PASSWORD": "p"}, tag="a")
    assert client.post(url, headers=cf_headers, json=traffic((first, 100))).status_code == 200, \
        "deploying a newer version is how secrets change: never refused"
    second = upload(client, staging, cf_headers, secrets={"API_KEY": "two", "DB_PASSWORD": "p", "NEW": "n"}, tag="b")
    assert client.post(url, headers=cf_headers, json=traffic((second, 100))).status_code == 200

    before = state_of(staging)
    for query in ("", "?force=false", "?force=1"):
        message = assert_error(client.post(url + query, headers=cf_headers, json=traffic((first, 100))), 400, 10220)
        assert message.endswith(
            "add a ?force=true query parameter to allow the rollback. The following secrets have changed: API_KEY, NEW"
        )
        assert state_of(staging) == before
    response = client.post(url + "?force=TRUE", headers=cf_headers, json=traffic((first, 100)))
    assert response.status_code == 200 and serving_version(staging) == first


def test_a_split_with_an_older_version_is_checked_against_the_main_version(client: TestClient, staging: Staging,
                                                                          cf_headers):
    url = f"{scripts(staging)}/deployments"
    seeded = serving_version(staging)
    with_secret = upload(client, staging, cf_headers, secrets={"TOKEN": "t"}, tag="s")
    client.post(url, headers=cf_headers, json=traffic((with_secret, 100)))
    assert_error(client.post(url, headers=cf_headers, json=traffic((with_secret, 50), (seeded, 50))), 400, 10220,
                 contains="have changed: TOKEN")
    assert client.post(url + "?force=true", headers=cf_headers,
                       json=traffic((with_secret, 50), (seeded, 50))).status_code == 200


def test_an_unchanged_secret_needs_no_force(client: TestClient, staging: Staging, cf_headers):
    url = f"{scripts(staging)}/deployments"
    first = upload(client, staging, cf_headers, secrets={"API_KEY": "same"}, tag="a")
    client.post(url, headers=cf_headers, json=traffic((first, 100)))
    second = upload(client, staging, cf_headers, secrets={"API_KEY": "same"}, tag="b")
    assert client.post(url, headers=cf_headers, json=traffic((second, 100))).status_code == 200
    assert client.post(url, headers=cf_headers, json=traffic((first, 100))).status_code == 200


def test_get_one_deployment(client: TestClient, staging: Staging, cf_headers):
    oldest = staging.workers.deployments[-1]
    result = client.get(f"{scripts(staging)}/deployments/{oldest.id}", headers=cf_headers).json()["result"]
    assert result["id"] == oldest.id and result["created_on"] == oldest.created_on
    assert_error(client.get(f"{scripts(staging)}/deployments/nope", headers=cf_headers), 404, 10231, contains="'nope'")


def test_delete_an_old_deployment_but_never_the_serving_one(client: TestClient, staging: Staging, cf_headers):
    serving = staging.workers.serving_deployment()
    before = state_of(staging)
    assert_error(client.delete(f"{scripts(staging)}/deployments/{serving.id}", headers=cf_headers), 400, 10233,
                 contains="actively serving traffic")
    assert_error(client.delete(f"{scripts(staging)}/deployments/nope", headers=cf_headers), 404, 10231)
    assert state_of(staging) == before
    old = staging.workers.deployments[-1]
    response = client.delete(f"{scripts(staging)}/deployments/{old.id}", headers=cf_headers)
    assert response.status_code == 200 and response.json()["success"] is True
    assert old not in staging.workers.deployments and staging.workers.serving_deployment() == serving
    assert_error(client.get(f"{scripts(staging)}/deployments/{old.id}", headers=cf_headers), 404, 10231)


def test_a_new_deployment_notifies_the_bookstrack_worker(client: TestClient, staging: Staging, cf_headers,
                                                         monkeypatch: pytest.MonkeyPatch):
    seen: list[str] = []
    monkeypatch.setattr(staging.books, "on_deployment", lambda deployment: seen.append(deployment.id))
    target = staging.workers.versions[0].id
    created = client.post(f"{scripts(staging)}/deployments", headers=cf_headers, json=traffic((target, 100))).json()
    assert seen == [created["result"]["id"]]
    client.post(f"{scripts(staging)}/deployments", headers=cf_headers, json=traffic((target, 90)))
    assert len(seen) == 1, "a refused deployment notifies nobody"
