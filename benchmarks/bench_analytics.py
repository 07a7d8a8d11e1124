"""Cost of the embedded staging's Analytics Engine (staging/analytics): writes, bulk flush, queries.

Targets: the runbook's cache query (ROLLBACK_PROCEDURE.md step 5, verbatim) over one million data
points in under 200 ms (median after load); ``write()`` cheap enough for the event loop (microseconds).

    .venv/bin/python benchmarks/bench_analytics.py [--points 1000000] [--runs 15]

The points are written through ``AnalyticsStore.write`` on a manual clock (1.2 ms apart, so they span
20 minutes and the 10-minute window holds half of them), with the background flush held off so that
one flush moves all of them; queries then run on the store directly and through the HTTP route
in-process (Starlette TestClient: adds routing and JSON). A second pass writes a million points with
the background flush on, as a long-running staging does.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from starlette.testclient import TestClient

from bookstrack_rollback.staging import ManualClock, Staging, StagingConfig, create_app
from bookstrack_rollback.staging.analytics import store as store_module

RUNBOOK_QUERY = (
    "SELECT (SUM(CASE WHEN blob3 = 'HIT' THEN 1 ELSE 0 END) / COUNT(*)) * 100 as hit_rate "
    "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL 10 MINUTE"
)
OTHER_QUERIES = {
    "p95 latency per cache status (quantileExactWeighted)": (
        "SELECT blob3, quantileExactWeighted(0.95)(double2, _sample_interval) AS p95, SUM(_sample_interval) AS n "
        "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL '10' MINUTE GROUP BY blob3"
    ),
    "error share per minute (toStartOfInterval, countIf)": (
        "SELECT toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute, countIf(double1 >= 500) / count() AS errors "
        "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL '10' MINUTE GROUP BY minute ORDER BY minute"
    ),
}
PATH = "/v1/search/title"


def timed(action, runs: int) -> list[float]:
    """Seconds per run, one warm-up run first."""
    action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:7.1f} ms   min {min(samples) * 1000:7.1f}   max {max(samples) * 1000:7.1f}"


def write_points(staging: Staging, clock: ManualClock, points: int) -> float:
    """Seconds spent in write() for ``points`` calls, the loop's own cost subtracted."""
    write = staging.analytics.write
    caches = ("HIT", "HIT", "MISS")
    started = time.perf_counter()
    for i in range(points):
        clock._now += 0.0012
        (PATH, "N/A", caches[i % 3]), (200.0, float(i % 700))
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(points):
        clock._now += 0.0012
        write("books_api_performance", index1=PATH, blobs=(PATH, "N/A", caches[i % 3]), doubles=(200.0, float(i % 700)))
    return time.perf_counter() - started - baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    clock = ManualClock()
    staging = Staging(StagingConfig(), clock=clock)
    store = staging.analytics
    write = store.write
    held_off, store_module.FLUSH_IN_BACKGROUND_AT = store_module.FLUSH_IN_BACKGROUND_AT, args.points + 1
    per_write_us = write_points(staging, clock, args.points) / args.points * 1e6
    print(f"write(): {per_write_us:.2f} µs per call ({args.points:,} calls, loop overhead subtracted); "
          f"target: microseconds: {'MET' if per_write_us < 5 else 'MISSED'}")
    store_module.FLUSH_IN_BACKGROUND_AT = held_off

    started = time.perf_counter()
    store.flush()
    flush = time.perf_counter() - started
    print(f"flush of {args.points:,} buffered points into DuckDB: {flush:.2f} s ({flush / args.points * 1e6:.2f} µs per point, "
          f"compression included)")
    memory = store._db.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
    print(f"DuckDB memory holding them: {memory / 1e6:.1f} MB; process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for batch in (1_000, 10_000):
        for i in range(batch):
            write("books_api_performance", index1=PATH, blobs=(PATH, "N/A", "HIT"), doubles=(200.0, 50.0))
        started = time.perf_counter()
        store.flush()
        print(f"flush of {batch:,} buffered points: {(time.perf_counter() - started) * 1000:.1f} ms")

    (hit_rate,) = store.query(RUNBOOK_QUERY).rows[0]
    runbook = timed(lambda: store.query(RUNBOOK_QUERY), args.runs)
    total = store.query("SELECT count() FROM books_api_performance").rows[0][0]
    print(f"runbook cache query over {total:,} points (store.query): {ms(runbook)}   hit_rate={hit_rate:.2f}; "
          f"target < 200 ms: {'MET' if statistics.median(runbook) < 0.2 else 'MISSED'}")

    url = f"/client/v4/accounts/{staging.config.account_id}/analytics_engine/sql"
    headers = {"Authorization": f"Bearer {staging.config.token}"}
    with TestClient(create_app(staging), base_url="http://staging.test") as client:
        def over_http() -> None:
            response = client.post(url, content=RUNBOOK_QUERY.encode(), headers=headers)
            assert response.status_code == 200, response.text

        print(f"runbook cache query through the HTTP route (in-process):     {ms(timed(over_http, args.runs))}")
    for label, query in OTHER_QUERIES.items():
        print(f"{label}: {ms(timed(lambda q=query: store.query(q), max(3, args.runs // 3)))}")
    store.close()

    clock = ManualClock()
    staging = Staging(StagingConfig(), clock=clock)
    spent = write_points(staging, clock, args.points)
    started = time.perf_counter()
    staging.analytics.flush()
    rest = time.perf_counter() - started
    print(f"with background flushes every {store_module.FLUSH_IN_BACKGROUND_AT:,} points: write() {spent / args.points * 1e6:.2f} µs "
          f"per call on the writing thread; {rest * 1000:.0f} ms more until all were in DuckDB")
    staging.analytics.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
