"""Workers KV over the API: raw values, key names with '/' and ':', listing with a prefix and a cursor,
and the refusals (contract/cloudflare-api.md, "Workers KV")."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import Staging
from cloudflare_answers import assert_error


def namespace(staging: Staging, ns: str | None = None) -> str:
    return f"/client/v4/accounts/{staging.config.account_id}/storage/kv/namespaces/{ns or staging.config.kv_namespace_id}"


def value_url(staging: Staging, key: str, ns: str | None = None) -> str:
    encoded = quote(key, safe="").replace(".", "%2E")  # so that clients do not collapse "." and ".."
    return f"{namespace(staging, ns)}/values/{encoded}"


@pytest.mark.parametrize("key", ["canary:1", "books/isbn:9780140449136", "a b/c?d#e%f", "ключ/ü", "x" * 512])
def test_put_get_delete_round_trip(client: TestClient, staging: Staging, cf_headers, key: str):
    value = bytes(range(256)) + key.encode()
    put = client.put(value_url(staging, key), headers=cf_headers, content=value)
    assert put.status_code == 200 and put.json()["success"] is True
    assert staging.kv.get_own(key) == value
    got = client.get(value_url(staging, key), headers=cf_headers)
    assert got.status_code == 200 and got.content == value
    assert got.headers["content-type"] == "application/octet-stream"
    assert client.delete(value_url(staging, key), headers=cf_headers).json()["success"] is True
    assert staging.kv.get_own(key) is None
    assert_error(client.get(value_url(staging, key), headers=cf_headers), 404, 10009, contains="key not found")


def test_a_value_written_by_the_worker_is_read_through_the_api(client: TestClient, staging: Staging, cf_headers):
    staging.kv.put_own("canary:book-1", b'{"title": "Dune"}')
    assert client.get(value_url(staging, "canary:book-1"), headers=cf_headers).content == b'{"title": "Dune"}'


def test_a_missing_key_is_404_code_10009(client: TestClient, staging: Staging, cf_headers):
    message = assert_error(client.get(value_url(staging, "never/written"), headers=cf_headers), 404, 10009)
    assert message == "key not found"


def test_deleting_a_missing_key_succeeds(client: TestClient, staging: Staging, cf_headers):
    assert client.delete(value_url(staging, "ghost"), headers=cf_headers).status_code == 200


def test_the_sdk_multipart_write_stores_the_value_part(client: TestClient, staging: Staging, cf_headers):
    files = {"value": (None, b"from the sdk"), "metadata": (None, b'{"a": 1}')}
    response = client.put(value_url(staging, "sdk/key"), headers=cf_headers, files=files)
    assert response.status_code == 200, response.text
    assert staging.kv.get_own("sdk/key") == b"from the sdk"
    broken = client.put(value_url(staging, "sdk/other"), headers=cf_headers, files={"metadata": (None, b"{}")})
    assert_error(broken, 400, 10240, contains="needs a 'value' part")
    assert staging.kv.get_own("sdk/other") is None


def test_list_keys_with_a_prefix(client: TestClient, staging: Staging, cf_headers):
    ns = staging.config.kv_namespace_id
    seeded = staging.kv.keys(ns)  # whatever the BooksTrack worker keeps there already
    for key in ("t/canary:2", "t/canary:1", "t/books/a", "t/canary:3/x"):
        staging.kv.put_own(key, b"v")
    body = client.get(f"{namespace(staging)}/keys", params={"prefix": "t/canary:"}, headers=cf_headers).json()
    assert body["result"] == [{"name": "t/canary:1"}, {"name": "t/canary:2"}, {"name": "t/canary:3/x"}]
    assert body["result_info"] == {"count": 3, "cursor": ""}
    everything = client.get(f"{namespace(staging)}/keys", headers=cf_headers).json()["result"]
    assert [k["name"] for k in everything] == sorted([*seeded, "t/books/a", "t/canary:1", "t/canary:2", "t/canary:3/x"])


def test_list_keys_pages_with_a_cursor(client: TestClient, staging: Staging, cf_headers):
    keys = [f"k/{n:02d}" for n in range(25)]
    for key in keys:
        staging.kv.put_own(key, b"v")
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        body = client.get(f"{namespace(staging)}/keys", params={"prefix": "k/", "limit": 10, "cursor": cursor},
                          headers=cf_headers).json()
        seen += [k["name"] for k in body["result"]]
        cursor = body["result_info"]["cursor"]
        if not cursor:
            break
    assert seen == keys


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"cursor": "%%%"}])
def test_bad_list_parameters_are_400(client: TestClient, staging: Staging, cf_headers, query):
    assert_error(client.get(f"{namespace(staging)}/keys", params=query, headers=cf_headers), 400, 10240)


def test_an_unknown_namespace_is_404_naming_it_and_nothing_is_created(client: TestClient, staging: Staging, cf_headers):
    ns = "no-such-namespace"
    for response in (
        client.put(value_url(staging, "k", ns), headers=cf_headers, content=b"v"),
        client.get(value_url(staging, "k", ns), headers=cf_headers),
        client.delete(value_url(staging, "k", ns), headers=cf_headers),
        client.get(f"{namespace(staging, ns)}/keys", headers=cf_headers),
    ):
        assert_error(response, 404, 10013, contains=repr(ns))
    assert not staging.kv.has_namespace(ns)


@pytest.mark.parametrize(
    ("key", "expected"),
    [(".", "cannot be used"), ("..", "cannot be used"), ("k" * 513, "at most 512 bytes")],
)
def test_bad_key_names_are_400(client: TestClient, staging: Staging, cf_headers, key: str, expected: str):
    before = dict(staging.kv.namespaces[staging.config.kv_namespace_id])
    assert_error(client.put(value_url(staging, key), headers=cf_headers, content=b"v"), 400, 10241, contains=expected)
    assert staging.kv.namespaces[staging.config.kv_namespace_id] == before


def test_an_empty_key_name_is_400(client: TestClient, staging: Staging, cf_headers):
    before = dict(staging.kv.namespaces[staging.config.kv_namespace_id])
    assert_error(client.put(f"{namespace(staging)}/values/", headers=cf_headers, content=b"v"), 400, 10241,
                 contains="empty")
    assert staging.kv.namespaces[staging.config.kv_namespace_id] == before


def test_a_bad_expiration_is_400(client: TestClient, staging: Staging, cf_headers):
    response = client.put(value_url(staging, "k"), params={"expiration_ttl": "soon"}, headers=cf_headers, content=b"v")
    assert_error(response, 400, 10240, contains="expiration_ttl")
    assert staging.kv.get_own("k") is None
