"""Worker versions: list (paged, newest first), get (with resources), upload (multipart), and every
refusal leaving the state as it was (contract/cloudflare-api.md, "Versions"; the fields follow
notes/real-clients.md, "What an emulator should do")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging
from bookstrack_rollback.staging.cloudflare import errors
from bookstrack_rollback.staging.cloudflare.request_parsing import parse_multipart
from cloudflare_answers import scripts, assert_error


def upload_files(metadata: Any, modules: dict[str, bytes] | None = None) -> list[tuple[str, tuple[str | None, bytes, str]]]:
    raw = metadata if isinstance(metadata, bytes) else json.dumps(metadata).encode()
    files = [("metadata", (None, raw, "application/json"))]
    for name, code in (modules if modules is not None else {"index.js": b"export default {}"}).items():
        files.append((name, (name, code, "application/javascript+module")))
    return files


def state_of(staging: Staging) -> tuple[Any, ...]:
    workers = staging.workers
    return (tuple(workers.versions), tuple(workers.deployments))


GOOD_METADATA = {
    "main_module": "index.js",
    "bindings": [
        {"type": "plain_text", "name": "FAULT_PROFILE", "text": '{"error_rate": 0.2}'},
        {"type": "secret_text", "name": "API_KEY", "text": "s3cret"},
    ],
    "annotations": {"workers/message": "drill: inject errors", "workers/tag": "1.9.1-fault"},
    "compatibility_date": "2025-11-01",
    "compatibility_flags": ["nodejs_compat"],
}


def test_list_is_newest_first_with_result_info(client: TestClient, staging: Staging, cf_headers):
    body = client.get(f"{scripts(staging)}/versions?deployable=true", headers=cf_headers).json()
    items = body["result"]["items"]
    assert [v["number"] for v in items] == [3, 2, 1]
    assert [v["annotations"]["workers/tag"] for v in items] == ["1.9.0", "1.8.0", "1.7.0"]
    assert body["result_info"] == {"page": 1, "per_page": 100, "count": 3, "total_count": 3, "total_pages": 1}
    first = items[0]
    assert set(first) == {"id", "number", "metadata", "annotations"}
    assert set(first["metadata"]) == {"created_on", "modified_on", "source", "author_email", "author_id", "hasPreview"}
    assert first["annotations"]["workers/triggered_by"] == "upload"
    created = [v["metadata"]["created_on"] for v in items]
    assert created == sorted(created, reverse=True), "created_on must sort as a string, newest first"


def test_pages_past_the_end_are_empty_so_the_sdk_stops(client: TestClient, staging: Staging, cf_headers):
    url = f"{scripts(staging)}/versions"
    seen: list[str] = []
    for page in range(1, 10):
        items = client.get(url, params={"page": page, "per_page": 2}, headers=cf_headers).json()["result"]["items"]
        if not items:
            break
        seen += [v["id"] for v in items]
    else:
        pytest.fail("the pages never came back empty")
    assert page == 3 and seen == [v.id for v in staging.workers.versions_newest_first()]
    info = client.get(url, params={"page": 7}, headers=cf_headers).json()["result_info"]
    assert info["count"] == 0 and info["total_count"] == 3


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=0", "per_page=5000", "deployable=maybe"])
def test_bad_paging_parameters_are_400(client: TestClient, staging: Staging, cf_headers, query: str):
    assert_error(client.get(f"{scripts(staging)}/versions?{query}", headers=cf_headers), 400, 10240,
                 contains=query.split("=")[0])


def test_get_version_has_resources(client: TestClient, staging: Staging, cf_headers):
    version = staging.workers.versions[1]
    result = client.get(f"{scripts(staging)}/versions/{version.id}", headers=cf_headers).json()["result"]
    assert result["id"] == version.id and result["number"] == 2
    resources = result["resources"]
    assert resources["script"]["etag"] == version.etag and resources["script"]["handlers"] == ["fetch"]
    assert resources["script_runtime"]["compatibility_date"] == version.compatibility_date
    assert resources["script_runtime"]["compatibility_flags"] == []
    assert resources["bindings"] == []


def test_unknown_version_is_404_naming_it(client: TestClient, staging: Staging, cf_headers):
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(client.get(f"{scripts(staging)}/versions/{missing}", headers=cf_headers), 404, 10230,
                 contains=missing)


def test_upload_adds_an_undeployed_version(client: TestClient, staging: Staging, cf_headers):
    serving = staging.workers.serving_deployment()
    response = client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=upload_files(GOOD_METADATA))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["number"] == 4
    assert result["annotations"] == {
        "workers/triggered_by": "upload", "workers/message": "drill: inject errors", "workers/tag": "1.9.1-fault",
    }
    assert result["metadata"]["source"] == "api"
    assert result["resources"]["script_runtime"]["compatibility_flags"] == ["nodejs_compat"]
    shown = {b["name"]: b for b in result["resources"]["bindings"]}
    assert shown["FAULT_PROFILE"]["text"] == '{"error_rate": 0.2}'
    assert "text" not in shown["API_KEY"], "secret texts are never shown"
    version = staging.workers.get_version(result["id"])
    assert version is not None and version.var("FAULT_PROFILE") == '{"error_rate": 0.2}' and version.tag == "1.9.1-fault"
    assert version.modules == {"index.js": b"export default {}"}
    assert staging.workers.serving_deployment() == serving, "an upload does not deploy"
    listed = client.get(f"{scripts(staging)}/versions", headers=cf_headers).json()["result"]["items"]
    assert listed[0]["id"] == result["id"]


def test_an_upload_from_wrangler_is_sourced_wrangler(client: TestClient, staging: Staging, cf_headers):
    headers = {**cf_headers, "User-Agent": "wrangler/4.86.0"}
    response = client.post(f"{scripts(staging)}/versions", headers=headers, files=upload_files(GOOD_METADATA))
    assert response.json()["result"]["metadata"]["source"] == "wrangler"


def test_keep_bindings_carries_the_secrets_of_the_newest_version(client: TestClient, staging: Staging, cf_headers):
    client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=upload_files(GOOD_METADATA))
    metadata = {"main_module": "index.js", "bindings": [], "keep_bindings": ["secret_text"]}
    result = client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=upload_files(metadata)).json()
    version = staging.workers.get_version(result["result"]["id"])
    assert version is not None and version.secrets() == {"API_KEY": "s3cret"} and version.var("FAULT_PROFILE") is None


def upload(client: TestClient, staging: Staging, cf_headers, metadata: Any, modules: dict[str, bytes] | None = None,
           query: str = "") -> Any:
    return client.post(f"{scripts(staging)}/versions{query}", headers=cf_headers, files=upload_files(metadata, modules))


def test_inherit_takes_a_binding_from_a_named_version_or_the_latest(client: TestClient, staging: Staging, cf_headers):
    first = upload(client, staging, cf_headers, GOOD_METADATA).json()["result"]["id"]
    upload(client, staging, cf_headers, {"main_module": "index.js", "bindings": [
        {"type": "plain_text", "name": "FAULT_PROFILE", "text": "latest"}]})
    inherits = {"main_module": "index.js", "bindings": [
        {"type": "inherit", "name": "API_KEY", "version_id": first},               # a secret, from a named version
        {"type": "inherit", "name": "OLD_FAULT", "old_name": "FAULT_PROFILE", "version_id": first},  # renamed
        {"type": "inherit", "name": "FAULT_PROFILE"},                             # default: the latest version
    ]}
    response = upload(client, staging, cf_headers, inherits, query="?bindings_inherit=strict")
    assert response.status_code == 200, response.text
    version = staging.workers.get_version(response.json()["result"]["id"])
    assert version is not None
    assert version.secrets() == {"API_KEY": "s3cret"}
    assert version.var("OLD_FAULT") == '{"error_rate": 0.2}' and version.var("FAULT_PROFILE") == "latest"


@pytest.mark.parametrize("binding, named", [
    ({"type": "inherit", "name": "NOPE"}, "'NOPE' inherits 'NOPE' from version"),
    ({"type": "inherit", "name": "KV", "version_id": "00000000-0000-4000-8000-000000000000"}, "does not exist"),
])
def test_an_inherit_that_cannot_be_resolved_is_dropped_or_refused_when_strict(
        client: TestClient, staging: Staging, cf_headers, binding, named):
    metadata = {"main_module": "index.js", "bindings": [binding]}
    before = state_of(staging)
    refused = upload(client, staging, cf_headers, metadata, query="?bindings_inherit=strict")
    assert_error(refused, 400, errors.INVALID_UPLOAD, contains=named)
    assert state_of(staging) == before
    dropped = upload(client, staging, cf_headers, metadata)  # upstream drops it silently
    assert dropped.status_code == 200 and dropped.json()["result"]["resources"]["bindings"] == []
    assert_error(upload(client, staging, cf_headers, metadata, query="?bindings_inherit=lenient"), 400,
                 errors.INVALID_REQUEST, contains="strict")


def test_content_v2_gives_a_version_code_as_multipart_with_its_entrypoint(client: TestClient, staging: Staging,
                                                                          cf_headers):
    modules = {"index.js": b"import './lib/a.js';\r\nexport default {}", "lib/a.js": b"--staging-\r\n",
               "blob.bin": bytes(range(256))}
    version_id = upload(client, staging, cf_headers, {"main_module": "index.js"}, modules).json()["result"]["id"]
    response = client.get(f"{scripts(staging)}/content/v2", params={"version": version_id}, headers=cf_headers)
    assert response.status_code == 200
    assert response.headers["cf-entrypoint"] == "index.js"
    assert response.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = asyncio.run(parse_multipart(response.headers["content-type"], response.content))
    assert parts == modules
    serving = client.get(f"{scripts(staging)}/content/v2", headers=cf_headers)  # no version: the serving one
    assert b"BooksTrack API worker 1.9.0" in serving.content
    missing = client.get(f"{scripts(staging)}/content/v2", params={"version": "nope"}, headers=cf_headers)
    assert_error(missing, 404, errors.VERSION_NOT_FOUND, contains="has no version 'nope'")


BAD_UPLOADS = [
    pytest.param(upload_files(b"{not json"), "not valid JSON", id="metadata-not-json"),
    pytest.param(upload_files(b"[1, 2]"), "must be a JSON object", id="metadata-not-object"),
    pytest.param(upload_files({"bindings": []}), "main_module", id="no-main-module"),
    pytest.param(upload_files({"main_module": "worker.js"}), "'worker.js' is not among", id="main-module-missing"),
    pytest.param(upload_files({"main_module": "index.js"}, {}), "is not among", id="no-modules"),
    pytest.param([("index.js", ("index.js", b"x", "application/javascript+module"))], "'metadata' part is missing",
                 id="no-metadata"),
    pytest.param(upload_files({"main_module": "index.js", "bindings": {"a": 1}}), "bindings must be a list",
                 id="bindings-not-list"),
    pytest.param(upload_files({"main_module": "index.js", "bindings": [{"type": "plain_text", "name": "X"}]}),
                 "needs a string 'text'", id="plain-text-without-text"),
    pytest.param(upload_files({"main_module": "index.js", "bindings": [{"type": "plain_text", "text": "x"}]}),
                 "'type' and 'name'", id="binding-without-name"),
    pytest.param(upload_files({"main_module": "index.js", "annotations": {"workers/tag": 7}}), "must be a string",
                 id="annotation-not-string"),
    pytest.param(upload_files({"main_module": "index.js", "compatibility_date": "yesterday"}), "YYYY-MM-DD",
                 id="bad-compatibility-date"),
]


@pytest.mark.parametrize(("files", "expected"), BAD_UPLOADS)
def test_bad_uploads_are_400_and_change_nothing(client: TestClient, staging: Staging, cf_headers, files, expected):
    before = state_of(staging)
    response = client.post(f"{scripts(staging)}/versions", headers=cf_headers, files=files)
    assert_error(response, 400, 10235, contains=expected)
    assert state_of(staging) == before


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", json.dumps(GOOD_METADATA).encode(), "expected a multipart/form-data body"),
        ("multipart/form-data", b"--b\r\n", "with a boundary"),
        ("multipart/form-data; boundary=zzz", b"this is not multipart at all", "cannot be parsed"),
        ("multipart/form-data; boundary=zzz", b"--zzz--\r\n", "no parts"),
        ("multipart/form-data; boundary=zzz", b"--zzz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zzz--\r\n",
         "cannot be parsed"),
    ],
)
def test_broken_multipart_is_400_and_changes_nothing(client: TestClient, staging: Staging, cf_headers,
                                                     content_type: str, body: bytes, expected: str):
    before = state_of(staging)
    response = client.post(f"{scripts(staging)}/versions", headers={**cf_headers, "Content-Type": content_type},
                           content=body)
    assert_error(response, 400, 10235, contains=expected)
    assert state_of(staging) == before
