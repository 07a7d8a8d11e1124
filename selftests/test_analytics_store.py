"""The Analytics Engine store itself: cheap buffered writes flushed in bulk, what a write refuses,
strings that survive the bulk load, threads, the event loop, reset, and the DuckDB sandbox."""

from __future__ import annotations

import asyncio
import threading

import duckdb
import httpx
import pytest

from bookstrack_rollback.staging import Staging, create_app
from bookstrack_rollback.staging.analytics import store as store_module
from bookstrack_rollback.staging.analytics.store import AnalyticsStore, AnalyticsUnavailable

PERF = "books_api_performance"
CACHE = "books_api_cache_metrics"


def count(store: AnalyticsStore, dataset: str = PERF) -> int:
    (row,) = store.query(f"SELECT count() FROM {dataset}").rows
    return row[0]


def test_writes_are_buffered_and_reach_duckdb_in_one_insert_per_shape(staging: Staging, monkeypatch: pytest.MonkeyPatch) -> None:
    store = staging.analytics
    inserts: list[tuple[str, int, int, int]] = []
    real_insert = store._insert

    def spy(table: str, shape: tuple[int, int, float], rows: list) -> None:
        inserts.append((table, shape[0], shape[1], len(rows)))
        real_insert(table, shape, rows)

    monkeypatch.setattr(store, "_insert", spy)
    for i in range(300):
        store.write(PERF, index1="/v1/search/title", blobs=("/v1/search/title", "N/A", "HIT"), doubles=(200.0, float(i)))
    for _ in range(50):
        store.write(CACHE, index1="kv_hit", blobs=("kv_hit", "key"), doubles=(3.0,))
    store.write(CACHE, index1="cold_check")
    assert inserts == []  # writing never touches DuckDB
    assert count(store) == 300
    assert sorted(inserts) == [("points.dataset_0", 3, 2, 300), ("points.dataset_1", 0, 0, 1), ("points.dataset_1", 2, 1, 50)]
    assert count(store, CACHE) == 51
    assert len(inserts) == 3  # nothing left to flush


def test_a_large_buffer_is_flushed_in_the_background(staging: Staging, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "FLUSH_IN_BACKGROUND_AT", 100)
    store = staging.analytics
    flushed = threading.Event()
    real_flush = store._flush

    def flush_and_tell() -> None:
        real_flush()
        flushed.set()

    monkeypatch.setattr(store, "_flush", flush_and_tell)
    for _ in range(99):
        store.write(CACHE, index1="kv_hit")
    assert not flushed.is_set()
    store.write(CACHE, index1="kv_hit")  # the 100th: a background flush starts
    assert flushed.wait(timeout=10)
    assert store._pending == {}
    flushed.clear()
    assert count(store, CACHE) == 100


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"blobs": ("x",) * 21}, ValueError),
        ({"doubles": (1.0,) * 21}, ValueError),
        ({"blobs": (b"bytes",)}, TypeError),
        ({"blobs": (None,)}, TypeError),
        ({"doubles": ("1.5",)}, TypeError),
        ({"doubles": (True,)}, TypeError),
        ({"index1": 42}, TypeError),
        ({"sample_interval": 0}, ValueError),
        ({"sample_interval": 1.5}, ValueError),
        ({"dataset": "no spaces"}, ValueError),
        ({"dataset": ""}, ValueError),
    ],
)
def test_write_refuses_what_the_binding_refuses(staging: Staging, kwargs: dict, error: type[Exception]) -> None:
    arguments = {"dataset": PERF, "index1": "/v1/search/title", **kwargs}
    dataset = arguments.pop("dataset")
    with pytest.raises(error):
        staging.analytics.write(dataset, **arguments)
    assert count(staging.analytics) == 0


def test_any_string_survives_the_bulk_load(staging: Staging) -> None:
    awkward = ["", "tab\tnewline\n", "record\x1eunit\x1fseparators", "quote ' \" `", "back\\slash", "naïve ☕ 書", "x" * 5000]
    for text in awkward:
        staging.analytics.write(CACHE, index1=text[:90], blobs=(text, "plain"), doubles=(1.0,))
    staging.analytics.write(CACHE, index1="k", blobs=("plain", "plain"), doubles=(2.0,))
    rows = staging.analytics.query(f"SELECT blob1, index1, blob2 FROM {CACHE} WHERE double1 = 1").rows
    assert sorted(r[0] for r in rows) == sorted(awkward)
    assert all(r[1] == r[0][:90] and r[2] == "plain" for r in rows)
    assert count(staging.analytics, CACHE) == len(awkward) + 1


def test_ingestion_lag_holds_for_points_loaded_either_way(staging: Staging, clock) -> None:
    staging.config = staging.config.with_overrides(ingestion_lag_s=5.0)
    staging.analytics.write(CACHE, index1="k", blobs=("plain",))
    staging.analytics.write(CACHE, index1="k", blobs=("with\x1fseparator",))  # the parameterised path
    assert count(staging.analytics, CACHE) == 0
    clock.advance(5.0)
    assert count(staging.analytics, CACHE) == 2


def test_queries_in_threads_while_points_are_written(staging: Staging) -> None:
    store = staging.analytics
    written = 3000
    failures: list[BaseException] = []
    stop = threading.Event()

    def keep_querying() -> None:
        seen = 0
        while not stop.is_set():
            try:
                now_seen = count(store)
            except BaseException as exc:  # reported below
                failures.append(exc)
                return
            if now_seen < seen:
                failures.append(AssertionError(f"the count went back from {seen} to {now_seen}"))
            seen = now_seen

    readers = [threading.Thread(target=keep_querying) for _ in range(2)]
    for reader in readers:
        reader.start()
    for i in range(written):
        store.write(PERF, index1="/v1/search/title", blobs=("/v1/search/title", "N/A", "MISS"), doubles=(200.0, float(i)))
    stop.set()
    for reader in readers:
        reader.join(timeout=30)
    assert not any(reader.is_alive() for reader in readers)
    assert failures == []
    assert count(store) == written


def test_a_slow_query_does_not_stall_the_event_loop(staging: Staging, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    events: list[str] = []
    real_query = staging.analytics.query

    def slow_query(text: str):
        entered.set()
        events.append("query released" if release.wait(timeout=10) else "query gave up waiting")
        return real_query(text)

    monkeypatch.setattr(staging.analytics, "query", slow_query)
    url = f"/client/v4/accounts/{staging.config.account_id}/analytics_engine/sql"
    headers = {"Authorization": f"Bearer {staging.config.token}"}

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(staging))
        async with httpx.AsyncClient(transport=transport, base_url="http://staging.test") as client:
            slow = asyncio.create_task(client.post(url, content=b"SELECT 1 AS one", headers=headers))
            assert await asyncio.to_thread(entered.wait, 10)
            other = await client.get("/__staging/requests")  # served while the query is still running
            events.append(f"other request answered {other.status_code}")
            release.set()
            return await slow

    answer = asyncio.run(scenario())
    assert events == ["other request answered 200", "query released"]
    assert answer.json()["data"] == [{"one": 1}]


def test_reset_forgets_everything_and_a_closed_store_refuses_queries(client, staging: Staging, monkeypatch: pytest.MonkeyPatch) -> None:
    old = staging.analytics
    old.write(PERF, index1="/v1/search/title", blobs=("/v1/search/title", "N/A", "HIT"))
    assert count(old) == 1
    staging.reset()
    assert staging.analytics is not old and count(staging.analytics) == 0
    old.write(PERF, index1="/v1/search/title")  # ignored, not an error
    with pytest.raises(AnalyticsUnavailable):
        old.query(f"SELECT count() FROM {PERF}")
    old.close()  # twice is fine

    monkeypatch.setattr(staging, "analytics", old)
    response = client.post(
        f"/client/v4/accounts/{staging.config.account_id}/analytics_engine/sql",
        content=b"SELECT 1",
        headers={"Authorization": f"Bearer {staging.config.token}"},
    )
    assert response.status_code == 503
    assert "reset" in response.text


def test_the_database_itself_cannot_reach_files_or_change_its_settings(staging: Staging) -> None:
    """Defence in depth: even SQL that bypassed the whitelist could not read a file."""
    database = staging.analytics._db
    with pytest.raises(duckdb.PermissionException):
        database.execute("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error):
        database.execute("SET enable_external_access = true")
