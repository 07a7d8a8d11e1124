"""The embedded staging's BooksTrack API against contract/bookstrack-api.md: /health (both shapes),
the three searches (envelopes, error codes, ISBN rules, known records, providers), the edge cache
(TTL on the staging clock), the 404 shape and CORS."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import ManualClock, Staging
from bookstrack_rollback.staging.bookstrack.catalogue import (
    Catalogue,
    is_valid_isbn,
    isbn13_check_digit,
    normalise_isbn,
)

PROVIDERS = {"google-books", "openlibrary", "isbndb"}


def deploy_tag(staging: Staging, tag: str) -> str:
    version = staging.workers.upload(bindings=[], annotations={"workers/tag": tag, "workers/message": f"release {tag}"})
    staging.workers.deploy([(version.id, 100)])
    return version.id


# --- /health ------------------------------------------------------------------------------------
def test_health_reports_the_serving_versions_tag_in_the_runbooks_envelope(client: TestClient, staging: Staging):
    body = client.get("/health").json()
    assert body == {"data": {"status": "ok", "version": "1.9.0", "worker": staging.config.worker_name}}


def test_health_follows_a_deploy_and_a_rollback(client: TestClient, staging: Staging):
    stable = staging.workers.serving_deployment().versions[0][0]
    deploy_tag(staging, "2.0.0")
    assert client.get("/health").json()["data"]["version"] == "2.0.0"
    staging.workers.deploy([(stable, 100)])
    assert client.get("/health").json()["data"]["version"] == "1.9.0"


def test_health_can_answer_productions_constant_unenveloped_shape(client: TestClient, staging: Staging):
    staging.config = staging.config.with_overrides(health_shape="constant")
    deploy_tag(staging, "2.0.0")
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert "data" not in body
    assert body["status"] == "ok" and body["version"] == "1.0.0" and body["worker"] == staging.config.worker_name
    assert any(e.startswith("GET /v1/search/title?q={query}") for e in body["endpoints"])


# --- searches: success ----------------------------------------------------------------------------
def test_title_search_finds_hamlet_with_the_success_envelope(client: TestClient):
    response = client.get("/v1/search/title", params={"q": "hamlet"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "metadata"}
    assert set(body["data"]) == {"works", "editions", "authors"}
    assert body["data"]["works"][0]["title"] == "Hamlet"
    assert body["data"]["authors"][0] == {"name": "William Shakespeare", "gender": "Male"}
    metadata = body["metadata"]
    assert metadata["provider"] in PROVIDERS
    assert metadata["cached"] is False and "cacheSource" not in metadata
    assert isinstance(metadata["processingTime"], int) and 1 <= metadata["processingTime"] < 5000
    assert metadata["timestamp"].endswith("Z") and metadata["timestamp"][10] == "T"


def test_isbn_search_finds_the_great_gatsby_under_every_spelling(client: TestClient):
    for spelling in ("9780743273565", "978-0-7432-7356-5", " 978 0743273565 ", "0743273567", "0-7432-7356-7"):
        body = client.get("/v1/search/isbn", params={"isbn": spelling}).json()
        assert body["data"]["works"][0]["title"] == "The Great Gatsby", spelling
        edition = body["data"]["editions"][0]
        assert edition["isbn"] == "9780743273565" and "9780743273565" in edition["isbns"]


def test_work_edition_and_author_carry_the_contracts_fields(client: TestClient):
    data = client.get("/v1/search/title", params={"q": "the"}).json()["data"]
    assert data["works"], "a common word matches generated titles"
    for work in data["works"]:
        assert isinstance(work["title"], str) and isinstance(work["subjectTags"], list)
        assert work["primaryProvider"] in PROVIDERS
    for edition in data["editions"]:
        assert {"isbn", "isbns", "title", "publisher", "publicationDate", "pageCount", "format"} <= set(edition)
    for author in data["authors"]:
        assert set(author) == {"name", "gender"}


def test_advanced_search_matches_title_and_author_together(client: TestClient):
    by_author = client.get("/v1/search/advanced", params={"author": "fitzgerald"}).json()
    assert [w["title"] for w in by_author["data"]["works"]] == ["The Great Gatsby"]
    both = client.get("/v1/search/advanced", params={"title": "gatsby", "author": "shakespeare"}).json()
    assert both["data"] == {"works": [], "editions": [], "authors": []}
    assert both["metadata"]["provider"] == "none"


def test_nothing_found_is_200_with_empty_lists_and_provider_none(client: TestClient):
    for path, params in (("/v1/search/title", {"q": "qqqzzzxxy"}), ("/v1/search/isbn", {"isbn": "9790000000001"})):
        response = client.get(path, params=params)
        assert response.status_code == 200
        assert response.json()["data"] == {"works": [], "editions": [], "authors": []}
        assert response.json()["metadata"]["provider"] == "none"


def test_each_result_names_a_provider_drawn_from_the_three():
    catalogue = Catalogue.generate(500, 7)
    providers = {book.provider for book in catalogue.books}
    assert providers == PROVIDERS
    assert len({book.isbn13 for book in catalogue.books}) == len(catalogue.books) == 504
    for book in catalogue.books:
        assert is_valid_isbn(book.isbn13) and book.isbn13[-1] == isbn13_check_digit(book.isbn13[:12])


def test_the_catalogue_is_drawn_from_the_staging_seed(clock: ManualClock):
    first = Staging(clock=clock)
    again = Staging(clock=clock)
    other = Staging(clock=clock)
    other.reset(seed=99)
    assert first.books.catalogue.books == again.books.catalogue.books
    assert first.books.catalogue.books != other.books.catalogue.books
    assert len(first.books.catalogue.books) == first.config.catalogue_size + 4


# --- searches: errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        ("/v1/search/title", {}, "INVALID_QUERY", "Search query is required"),
        ("/v1/search/title", {"q": "   "}, "INVALID_QUERY", "Search query is required"),
        ("/v1/search/isbn", {}, "INVALID_ISBN", "ISBN is required"),
        ("/v1/search/isbn", {"isbn": "12345"}, "INVALID_ISBN", "Invalid ISBN format. Must be valid ISBN-10 or ISBN-13"),
        ("/v1/search/isbn", {"isbn": "97807432735651"}, "INVALID_ISBN", "Invalid ISBN format. Must be valid ISBN-10 or ISBN-13"),
        ("/v1/search/isbn", {"isbn": "X123456789"}, "INVALID_ISBN", "Invalid ISBN format. Must be valid ISBN-10 or ISBN-13"),
        ("/v1/search/advanced", {}, "INVALID_QUERY", None),
        ("/v1/search/advanced", {"title": " ", "author": ""}, "INVALID_QUERY", None),
    ],
)
def test_bad_queries_get_the_enveloped_400_of_the_contracts_table(client, path, params, code, message):
    response = client.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None
    assert set(body["metadata"]) == {"timestamp"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["details"], dict)
    if message is not None:
        assert body["error"]["message"] == message


def test_isbn_rules_strip_non_digits_but_x_and_check_length_not_checksum():
    assert normalise_isbn("978-0-7432-7356-5") == "9780743273565"
    assert normalise_isbn("0-8044-2957-x") == "080442957X"
    assert is_valid_isbn("9780743273560")  # wrong checksum, still valid: production checks length only
    assert is_valid_isbn("080442957X") and is_valid_isbn("0804429570")
    assert not is_valid_isbn("08044295X7") and not is_valid_isbn("978074327356") and not is_valid_isbn("")


# --- 404 and CORS ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_paths_get_the_older_404_shape(client: TestClient, method: str):
    response = client.request(method, "/v2/nothing/here")
    assert response.status_code == 404
    assert response.headers["x-error-type"] == "NOT_FOUND"
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "NOT_FOUND" and body["error"]["message"]


def test_a_wrong_method_on_a_known_path_is_a_404_too(client: TestClient):
    response = client.post("/v1/search/title?q=hamlet")
    assert response.status_code == 404 and response.headers["x-error-type"] == "NOT_FOUND"


def test_every_answer_carries_cors_and_options_answers_204(client: TestClient):
    for path in ("/health", "/v1/search/title?q=hamlet", "/v1/search/title", "/missing"):
        assert client.get(path).headers["access-control-allow-origin"] == "*"
    assert client.options("/v1/search/title").status_code == 204


# --- edge cache -----------------------------------------------------------------------------------
def metadata(client: TestClient, q: str) -> dict:
    response = client.get("/v1/search/title", params={"q": q})
    assert response.status_code == 200
    return response.json()["metadata"]


def test_a_repeated_search_is_a_fresh_edge_hit_keyed_by_the_normalised_query(client: TestClient):
    first = metadata(client, "hamlet")
    second = metadata(client, "  HAMLET ")
    assert first["cached"] is False
    assert second["cached"] is True and second["cacheSource"] == "EDGE_FRESH"
    assert second["provider"] == first["provider"]


def test_cache_entries_go_stale_after_the_ttl_then_are_refreshed_then_expire(client: TestClient, clock: ManualClock):
    assert metadata(client, "dune")["cached"] is False
    clock.advance(299)
    assert metadata(client, "dune")["cacheSource"] == "EDGE_FRESH"
    clock.advance(2)  # 301 s after it was stored: past the 300 s TTL, inside the stale window
    assert metadata(client, "dune")["cacheSource"] == "EDGE_STALE"
    assert metadata(client, "dune")["cacheSource"] == "EDGE_FRESH", "a stale hit refreshes the entry"
    clock.advance(601)  # past TTL and stale window
    assert metadata(client, "dune")["cached"] is False


def test_cached_answers_are_fast_and_misses_take_an_upstream_time(client: TestClient):
    misses = [metadata(client, q)["processingTime"] for q in ("alpha", "beta", "gamma", "delta", "epsilon")]
    hits = [metadata(client, q)["processingTime"] for q in ("alpha", "beta", "gamma", "delta", "epsilon")]
    assert sorted(hits)[2] < sorted(misses)[2]
    assert max(hits) < 100


def test_errors_are_not_cached(client: TestClient, staging: Staging):
    for _ in range(2):
        assert client.get("/v1/search/isbn", params={"isbn": "1"}).status_code == 400
        assert client.get("/v1/search/title", params={"q": ""}).status_code == 400
    assert len(staging.books.cache) == 0
