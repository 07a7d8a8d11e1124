"""Refusals of the Analytics Engine SQL route: an error ANSWER every time (HTTP 422, text/plain,
``Input was invalid: <why>``, as the real SQL API answers: cloudflare/skills#87), never a crash, and
never a change of state: the data stays, the datasets stay, no file is read or written.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bookstrack_rollback.staging import Staging

PERF = "books_api_performance"


@pytest.fixture
def url(staging: Staging) -> str:
    return f"/client/v4/accounts/{staging.config.account_id}/analytics_engine/sql"


@pytest.fixture
def seeded(staging: Staging) -> None:
    for cache in ("HIT", "HIT", "MISS"):
        staging.analytics.write(PERF, index1="/v1/search/title", blobs=("/v1/search/title", "N/A", cache), doubles=(200.0, 120.0))


def snapshot(client, url: str, headers: dict[str, str]) -> list[object]:
    """What every dataset holds, as the SQL API shows it."""
    answers = []
    for dataset in (PERF, "books_api_cache_metrics"):
        response = client.post(url, content=f"SELECT * FROM {dataset} ORDER BY timestamp, blob3", headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def post(client, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return client.post(url, content=body, headers={**headers, "Content-Type": "application/json"})


REFUSALS = [
    # empty or unreadable
    ("", "the query is empty"),
    ("   \n\t ", "the query is empty"),
    ("-- only a comment", "the query is empty"),
    ("SELECT 'abc", "unterminated quote"),
    ("SELECT blob1 FROM", "expected a name after FROM"),
    ("SELECT FROM books_api_performance", "expected an expression"),
    ("SELECT count( FROM books_api_performance", "syntax error"),
    ("SELECT blob1 FROM books_api_performance WHERE", "expected an expression"),
    ("SELECT 1 FORMAT CSV", "unknown format 'CSV'"),
    ("SELECT 1 $ 2", "unexpected character '$'"),
    # only SELECT: no DDL, DML or DuckDB statements
    ("DROP TABLE books_api_performance", "only SELECT statements are supported, got 'DROP'"),
    ("DELETE FROM books_api_performance", "got 'DELETE'"),
    ("INSERT INTO books_api_performance (blob1) VALUES ('x')", "got 'INSERT'"),
    ("UPDATE books_api_performance SET blob3 = 'HIT'", "got 'UPDATE'"),
    ("CREATE TABLE t AS SELECT 1", "got 'CREATE'"),
    ("ALTER TABLE books_api_performance DROP COLUMN blob1", "got 'ALTER'"),
    ("TRUNCATE books_api_performance", "got 'TRUNCATE'"),
    ("ATTACH ':memory:' AS other", "got 'ATTACH'"),
    ("INSTALL httpfs", "got 'INSTALL'"),
    ("LOAD httpfs", "got 'LOAD'"),
    ("SET enable_external_access = true", "got 'SET'"),
    ("PRAGMA database_list", "got 'PRAGMA'"),
    ("CALL duckdb_tables()", "got 'CALL'"),
    ("EXPLAIN SELECT 1", "got 'EXPLAIN'"),
    ("SHOW TABLES", "got 'SHOW'"),
    ("WITH t AS (SELECT 1) SELECT * FROM t", "WITH clauses are not supported"),
    ("SELECT 1; DROP TABLE books_api_performance", "one statement per request"),
    ("SELECT 1; SELECT 2", "one statement per request"),
    # one table, read only through the dataset
    ("SELECT * FROM read_csv('/etc/passwd')", "table functions are not supported"),
    ("SELECT * FROM '/etc/passwd'", "expected a name after FROM"),
    ("SELECT read_text('/etc/passwd')", "unknown function read_text"),
    ("SELECT count() FROM glob('*')", "table functions are not supported"),
    ("SELECT getenv('HOME')", "unknown function getenv"),
    ("SELECT count() FROM main.books_api_performance", "no database prefix"),
    ("SELECT count() FROM duckdb_tables", "unknown table 'duckdb_tables'"),
    ("SELECT count() FROM dataset_0", "unknown table 'dataset_0'"),
    ("SELECT count() FROM points.dataset_0", "no database prefix"),
    ("SELECT count() FROM no_such_dataset", "unknown table 'no_such_dataset'"),
    ("SELECT blob1 FROM books_api_performance JOIN books_api_cache_metrics ON 1 = 1", "JOIN is not supported"),
    ("SELECT blob1 FROM books_api_performance AS p LEFT JOIN books_api_cache_metrics AS c ON 1", "JOIN is not supported"),
    ("SELECT blob1 FROM books_api_performance, books_api_cache_metrics", "JOIN is not supported"),
    ("SELECT blob1 FROM books_api_performance UNION ALL SELECT blob1 FROM books_api_cache_metrics", "UNION is not supported"),
    ("SELECT count() FROM (SELECT blob1 FROM books_api_performance)", "subqueries in FROM are not supported"),
    ("SELECT count() FROM books_api_performance WHERE blob1 IN (SELECT blob1 FROM books_api_cache_metrics)", "subqueries are not supported"),
    # columns, functions, types
    ("SELECT blob21 FROM books_api_performance", "unknown column 'blob21' in books_api_performance"),
    ("SELECT BLOB1 FROM books_api_performance", "unknown column 'BLOB1'"),
    ("SELECT _written_at FROM books_api_performance", "unknown column '_written_at'"),
    ("SELECT _visible_at FROM books_api_performance", "unknown column '_visible_at'"),
    ("SELECT blob1", "the query has no FROM"),
    ("SELECT upper(blob1) FROM books_api_performance", "unknown function upper"),
    ("SELECT blob1 + 1 FROM books_api_performance", "illegal types String and UInt8 of arguments of function plus"),
    ("SELECT count() FROM books_api_performance WHERE blob1 = double1", "cannot compare String with Float64"),
    ("SELECT count() FROM books_api_performance WHERE double1 = 'abc'", "Could not convert string 'abc'"),
    ("SELECT timestamp - timestamp FROM books_api_performance", "times can only be shifted by an INTERVAL"),
    ("SELECT INTERVAL 1 MINUTE", "an interval can only be added to or subtracted from a time"),
    ("SELECT count() FROM books_api_performance WHERE timestamp > now() - INTERVAL 1 WEEK", "interval unit 'WEEK' is not supported"),
    ("SELECT count() FROM books_api_performance WHERE timestamp > now() - INTERVAL 'ten' MINUTE", "a whole number of units"),
    ("SELECT count() FROM books_api_performance WHERE blob1 > now() - INTERVAL 1 MINUTE", "cannot compare String with DateTime"),
    ("SELECT if(double1 > 1, 'a', 2) FROM books_api_performance", "no common type for String, UInt8 in if"),
    ("SELECT now('UTC')", "now() takes no arguments"),
    ("SELECT toStartOfInterval(timestamp, 60) FROM books_api_performance", "toStartOfInterval takes a time and an interval"),
    # aggregation rules
    ("SELECT blob1, count() FROM books_api_performance", "column blob1 in SELECT is neither in GROUP BY nor inside an aggregate"),
    ("SELECT count() FROM books_api_performance WHERE sum(double1) > 1", "not allowed in WHERE"),
    ("SELECT count() FROM books_api_performance GROUP BY count()", "not allowed in GROUP BY"),
    ("SELECT sum(count()) FROM books_api_performance", "inside another aggregate function"),
    ("SELECT blob1 FROM books_api_performance HAVING blob1 = 'x'", "HAVING needs GROUP BY or an aggregate"),
    ("SELECT blob1 FROM books_api_performance ORDER BY 3", "there are only 1 result columns"),
    ("SELECT sum(blob1) FROM books_api_performance", "illegal type String of arguments of function sum"),
    ("SELECT quantileExactWeighted(1.5)(double2, _sample_interval) FROM books_api_performance", "between 0 and 1"),
    ("SELECT quantileExactWeighted(0.5)(double2) FROM books_api_performance", "takes a level and two arguments"),
    ("SELECT quantileExactWeighted(double2, _sample_interval) FROM books_api_performance", "takes a level and two arguments"),
    ("SELECT sum(5)(double1) FROM books_api_performance", "not a parametric function"),
    ("SELECT a AS b, b AS a FROM books_api_performance", "cyclic aliases"),
]


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("query, reason", REFUSALS, ids=[q[:60] or "<empty>" for q, _ in REFUSALS])
def test_a_refused_query_gets_an_error_answer_and_changes_nothing(
    client, url: str, cf_headers: dict[str, str], query: str, reason: str
) -> None:
    before = snapshot(client, url, cf_headers)
    response = post(client, url, cf_headers, query.encode())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Input was invalid: ")
    assert reason in response.text
    assert snapshot(client, url, cf_headers) == before


@pytest.mark.usefixtures("seeded")
def test_no_query_can_write_a_file(client, url: str, cf_headers: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    for query in (
        f"COPY books_api_performance TO '{target}'",
        f"SELECT * FROM books_api_performance FORMAT JSON; COPY (SELECT 1) TO '{target}'",
        f"EXPORT DATABASE '{tmp_path}'",
        f"SELECT * FROM books_api_performance INTO OUTFILE '{target}'",
    ):
        response = post(client, url, cf_headers, query.encode())
        assert response.status_code == 422, response.text
    assert list(tmp_path.iterdir()) == []


def test_a_body_that_is_not_utf8_is_refused(client, url: str, cf_headers: dict[str, str]) -> None:
    response = post(client, url, cf_headers, b"SELECT '\xff\xfe'")
    assert response.status_code == 422
    assert response.text == "Input was invalid: the request body is not UTF-8 text; send the SQL query itself as the body"


def test_another_account_is_refused_in_the_cloudflare_envelope(client, staging: Staging, cf_headers: dict[str, str]) -> None:
    response = client.post("/client/v4/accounts/ffffffffffffffffffffffffffffffff/analytics_engine/sql", content=b"SELECT 1", headers=cf_headers)
    assert response.status_code == 403
    assert response.json() == {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": None}


def test_a_missing_token_is_refused_by_the_gateway(client, url: str) -> None:
    response = client.post(url, content=b"SELECT 1")
    assert response.status_code == 403
    assert response.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]

