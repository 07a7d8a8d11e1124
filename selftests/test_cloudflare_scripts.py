"""The Worker as a whole, its secrets, the account and the KV namespaces, in process: what wrangler's
deploy, secret and whoami commands and the SDK call around versions and deployments (notes/real-clients.md,
"What the embedded staging still lacks"). The real clients' runs are in test_cloudflare_workflows.py."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging
from cloudflare_answers import assert_error, scripts


def account(staging: Staging) -> str:
    return f"/client/v4/accounts/{staging.config.account_id}"


def upload(metadata: dict, code: bytes = b"export default {}") -> list:
    return [("metadata", (None, json.dumps({"main_module": "index.js", **metadata}).encode(), "application/json")),
            ("index.js", ("index.js", code, "application/javascript+module"))]


def test_a_service_answers_with_its_default_environment_script(client: TestClient, staging: Staging, cf_headers):
    body = client.get(f"{account(staging)}/workers/services/{staging.config.worker_name}", headers=cf_headers).json()
    script = body["result"]["default_environment"]["script"]
    serving = staging.workers.main_serving_version()
    assert body["result"]["id"] == script["id"] == staging.config.worker_name
    assert re.fullmatch(r"[0-9a-f]{32}", script["tag"]) and script["etag"] == serving.etag
    assert script["last_deployed_from"] == "wrangler" and script["tags"] == []
    missing = client.get(f"{account(staging)}/workers/services/ghost", headers=cf_headers)
    assert_error(missing, 404, 10007, contains="deploy with --name api-worker-staging")


def test_scripts_list_and_the_raw_code_of_the_serving_version(client: TestClient, staging: Staging, cf_headers):
    listed = client.get(f"{account(staging)}/workers/scripts", headers=cf_headers).json()["result"]
    assert [s["id"] for s in listed] == [staging.config.worker_name]
    raw = client.get(scripts(staging), headers={**cf_headers, "Accept": "application/javascript"})
    serving = staging.workers.main_serving_version()
    assert raw.content == serving.modules[serving.main_module]


def test_put_script_uploads_and_deploys_in_one_call(client: TestClient, staging: Staging, cf_headers):
    metadata = {"bindings": [], "migrations": {"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]}}
    answer = client.put(f"{scripts(staging)}?excludeScript=true", headers=cf_headers, files=upload(metadata)).json()
    version_id = answer["result"]["deployment_id"]
    assert answer["result"]["startup_time_ms"] == 0 and answer["result"]["migration_tag"] == "v1"
    workers = staging.workers
    assert workers.serving_deployment().versions == [(version_id, 100)]
    assert workers.serving_deployment().annotations == {"workers/triggered_by": "upload"}


def test_version_answers_carry_startup_time_ms(client: TestClient, staging: Staging, cf_headers):
    uploaded = client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=upload({})).json()["result"]
    assert uploaded["startup_time_ms"] == 0
    got = client.get(f"{scripts(staging)}/versions/{uploaded['id']}", headers=cf_headers).json()["result"]
    assert got["startup_time_ms"] == 0


def put_secret(client: TestClient, staging: Staging, headers, name: str, text: str):
    return client.put(f"{scripts(staging)}/secrets", headers=headers,
                      json={"name": name, "text": text, "type": "secret_text"})


def test_a_secret_put_is_a_new_deployed_version_and_its_text_never_shows(client: TestClient, staging: Staging,
                                                                         cf_headers):
    workers = staging.workers
    code = workers.latest_version()
    answer = put_secret(client, staging, cf_headers, "API_KEY", "hidden-text-42")
    assert answer.json()["result"] == {"name": "API_KEY", "type": "secret_text"}
    version = workers.latest_version()
    assert version.secrets() == {"API_KEY": "hidden-text-42"} and version.modules == code.modules
    assert workers.serving_deployment().versions == [(version.id, 100)]
    assert workers.serving_deployment().annotations == {"workers/triggered_by": "secret"}
    listed = client.get(f"{scripts(staging)}/secrets", headers=cf_headers).json()["result"]
    assert listed == [{"name": "API_KEY", "type": "secret_text"}]
    for path in ("/secrets", "/secrets/API_KEY", "/settings", f"/versions/{version.id}"):
        assert "hidden-text-42" not in client.get(f"{scripts(staging)}{path}", headers=cf_headers).text, path
    client.delete(f"{scripts(staging)}/secrets/API_KEY?url_encoded=true", headers=cf_headers).raise_for_status()
    assert workers.latest_version().secrets() == {}
    assert_error(client.delete(f"{scripts(staging)}/secrets/API_KEY", headers=cf_headers), 404, 10242)


def test_a_secret_edit_over_an_undeployed_latest_version_is_10215_and_changes_nothing(client: TestClient,
                                                                                     staging: Staging, cf_headers):
    client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=upload({})).raise_for_status()
    before = list(staging.workers.versions)
    assert_error(put_secret(client, staging, cf_headers, "API_KEY", "x"), 400, 10215, contains="deploy it first")
    assert staging.workers.versions == before


def test_secrets_bulk_sets_and_removes_in_one_version(client: TestClient, staging: Staging, cf_headers):
    put_secret(client, staging, cf_headers, "OLD", "old").raise_for_status()
    body = {"secrets": {"A": {"name": "A", "text": "a", "type": "secret_text"}, "OLD": None}}
    client.patch(f"{scripts(staging)}/secrets-bulk", headers=cf_headers, json=body).raise_for_status()
    assert staging.workers.latest_version().secrets() == {"A": "a"}


def test_settings_patch_with_bindings_keeps_the_named_ones_and_deploys(client: TestClient, staging: Staging,
                                                                       cf_headers):
    put_secret(client, staging, cf_headers, "KEEP", "kept").raise_for_status()
    put_secret(client, staging, cf_headers, "DROP", "dropped").raise_for_status()
    settings = {"bindings": [{"type": "secret_text", "name": "KEEP"},
                             {"type": "secret_text", "name": "NEW", "text": "new"}], "logpush": True}
    files = [("settings", (None, json.dumps(settings).encode(), "application/json"))]
    answer = client.patch(f"{scripts(staging)}/settings", headers=cf_headers, files=files).json()["result"]
    assert sorted(b["name"] for b in answer["bindings"]) == ["KEEP", "NEW"] and answer["logpush"] is True
    latest = staging.workers.latest_version()
    assert latest.secrets() == {"KEEP": "kept", "NEW": "new"}
    assert staging.workers.serving_deployment().versions == [(latest.id, 100)]


def test_script_settings_subdomain_and_schedules_round_trip(client: TestClient, staging: Staging, cf_headers):
    base = scripts(staging)
    patched = client.patch(f"{base}/script-settings", headers=cf_headers,
                           json={"observability": {"enabled": True}, "tags": ["team:books"]}).json()["result"]
    assert patched["observability"] == {"enabled": True} and patched["tags"] == ["team:books"]
    assert client.get(f"{base}/subdomain", headers=cf_headers).json()["result"] == {"enabled": True,
                                                                                     "previews_enabled": True}
    client.post(f"{base}/subdomain", headers=cf_headers, json={"enabled": False}).raise_for_status()
    assert client.get(f"{base}/subdomain", headers=cf_headers).json()["result"]["enabled"] is False
    client.put(f"{base}/schedules", headers=cf_headers, json=[{"cron": "*/5 * * * *"}]).raise_for_status()
    crons = client.get(f"{base}/schedules", headers=cf_headers).json()["result"]["schedules"]
    assert [c["cron"] for c in crons] == ["*/5 * * * *"]
    sub = client.get(f"{account(staging)}/workers/subdomain", headers=cf_headers).json()["result"]
    assert sub == {"subdomain": "bookstrack-staging"}


def test_the_workers_api_worker_and_its_latest_version_patch(client: TestClient, staging: Staging, cf_headers):
    worker = f"{account(staging)}/workers/workers/{staging.config.worker_name}"
    assert client.get(worker, headers=cf_headers).json()["result"]["subdomain"] == {"enabled": True,
                                                                                    "previews_enabled": True}
    serving_before = staging.workers.serving_deployment()
    body = {"env": {"TOKEN": {"type": "secret_text", "text": "patched-secret"}},
            "annotations": {"workers/message": "add TOKEN", "workers/tag": None}}
    answer = client.patch(f"{worker}/versions/latest", headers={**cf_headers, "Content-Type": "application/merge-patch+json"},
                          content=json.dumps(body)).json()["result"]
    latest = staging.workers.latest_version()
    assert answer["id"] == latest.id and answer["startup_time_ms"] == 0 and "patched-secret" not in json.dumps(answer)
    assert latest.secrets() == {"TOKEN": "patched-secret"} and latest.annotations["workers/message"] == "add TOKEN"
    assert staging.workers.serving_deployment() == serving_before, "not deployed"


def test_whoami_answers(client: TestClient, staging: Staging, cf_headers):
    verified = client.get("/client/v4/user/tokens/verify", headers=cf_headers).json()
    assert verified["result"]["status"] == "active" and staging.config.token not in json.dumps(verified)
    assert verified["messages"][0]["message"] == "This API Token is valid and active"
    assert client.get("/client/v4/user", headers=cf_headers).json()["result"]["email"] == "drill@bookstrack.example"
    accounts = client.get("/client/v4/accounts?page=1", headers=cf_headers).json()
    assert [a["id"] for a in accounts["result"]] == [staging.config.account_id]
    assert client.get("/client/v4/accounts?page=2", headers=cf_headers).json()["result"] == []
    memberships = client.get("/client/v4/memberships?page=1", headers=cf_headers).json()["result"]
    assert memberships[0]["account"]["id"] == staging.config.account_id and memberships[0]["roles"]


@pytest.mark.parametrize("query", ["", "?order=title&direction=desc&page=1&per_page=100"])
def test_kv_namespaces_have_32_hex_ids(client: TestClient, staging: Staging, cf_headers, query: str):
    listed = client.get(f"{account(staging)}/storage/kv/namespaces{query}", headers=cf_headers).json()["result"]
    assert [(n["id"], n["title"]) for n in listed] == [(staging.config.kv_namespace_id, "bookstrack-staging-kv")]
    assert re.fullmatch(r"[0-9a-f]{32}", staging.config.kv_namespace_id)
    one = client.get(f"{account(staging)}/storage/kv/namespaces/{staging.config.kv_namespace_id}", headers=cf_headers)
    assert one.json()["result"]["id"] == staging.config.kv_namespace_id


def test_kv_metadata_is_kept_with_the_key(client: TestClient, staging: Staging, cf_headers):
    ns = f"{account(staging)}/storage/kv/namespaces/{staging.config.kv_namespace_id}"
    files = [("value", (None, b"v", "application/octet-stream")),
             ("metadata", (None, b'{"owner": "test"}', "application/json"))]
    client.put(f"{ns}/values/with/meta", headers=cf_headers, files=files).raise_for_status()
    assert client.get(f"{ns}/metadata/with/meta", headers=cf_headers).json()["result"] == {"owner": "test"}
    assert client.get(f"{ns}/keys?prefix=with/", headers=cf_headers).json()["result"] == [
        {"name": "with/meta", "metadata": {"owner": "test"}}]
    assert_error(client.get(f"{ns}/metadata/no-such-key", headers=cf_headers), 404, 10009)
    client.put(f"{ns}/values/with/meta", headers=cf_headers, content=b"plain").raise_for_status()
    assert client.get(f"{ns}/metadata/with/meta", headers=cf_headers).json()["result"] is None


@pytest.mark.parametrize("body", [
    {"env": {"TOKEN": "a-secret-sent-bare"}},
    {"env": {"TOKEN": {"text": "a-secret-sent-bare"}}},
    {"env": ["a-secret-sent-bare"]},
])
def test_a_refused_secret_is_never_echoed(client: TestClient, staging: Staging, cf_headers, body):
    worker = f"{account(staging)}/workers/workers/{staging.config.worker_name}"
    refused = client.patch(f"{worker}/versions/latest", headers=cf_headers, json=body)
    assert_error(refused, 400, 10240)
    assert "a-secret-sent-bare" not in refused.text
    bulk = client.patch(f"{scripts(staging)}/secrets-bulk", headers=cf_headers,
                        json={"secrets": {"TOKEN": "a-secret-sent-bare"}, "more": body})
    assert bulk.status_code == 400 and "a-secret-sent-bare" not in bulk.text
