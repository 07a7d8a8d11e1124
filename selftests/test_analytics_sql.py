"""The embedded staging's Analytics Engine SQL API, through its HTTP route (contract/cloudflare-api.md,
"Workers Analytics Engine SQL"; runbook step 5 "Cache Performance"): the runbook's query verbatim, the
dialect's functions and clauses, the answer formats, ingestion lag and sampling. Time is a ManualClock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import httpx
import pytest

from bookstrack_rollback.staging import ManualClock, Staging

PERF = "books_api_performance"
CACHE = "books_api_cache_metrics"
RUNBOOK_QUERY = (
    "SELECT (SUM(CASE WHEN blob3 = 'HIT' THEN 1 ELSE 0 END) / COUNT(*)) * 100 as hit_rate "
    "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL 10 MINUTE"
)
Run = Callable[..., httpx.Response]


@pytest.fixture
def sql(client, staging: Staging, cf_headers: dict[str, str]) -> Run:
    url = f"/client/v4/accounts/{staging.config.account_id}/analytics_engine/sql"

    def run(query: str, *, expect: int = 200, content_type: str = "text/plain") -> httpx.Response:
        response = client.post(url, content=query.encode(), headers={**cf_headers, "Content-Type": content_type})
        assert response.status_code == expect, response.text
        return response

    return run


def rows(response: httpx.Response) -> list[dict[str, object]]:
    return response.json()["data"]


def one(response: httpx.Response) -> dict[str, object]:
    (row,) = rows(response)
    return row


def served(staging: Staging, cache: str = "HIT", *, ms: float = 100.0, status: float = 200.0,
           path: str = "/v1/search/title", interval: int = 1) -> None:
    """One BooksTrack request's data point, laid out as contract/bookstrack-api.md "Telemetry" says."""
    staging.analytics.write(PERF, index1=path, blobs=(path, "N/A", cache), doubles=(status, ms), sample_interval=interval)


# ------------------------------------------------------------------------------------ the runbook


def test_runbook_query_runs_verbatim_and_gives_the_hit_share(sql: Run, staging: Staging) -> None:
    for cache in ["HIT"] * 5 + ["MISS"] * 3:
        served(staging, cache)
    answer = sql(RUNBOOK_QUERY).json()
    assert answer == {"meta": [{"name": "hit_rate", "type": "Float64"}], "data": [{"hit_rate": 62.5}], "rows": 1}


@pytest.mark.parametrize("interval", ["INTERVAL 10 MINUTE", "INTERVAL '10' MINUTE", "INTERVAL '10 MINUTE'"])
def test_the_window_is_the_last_ten_minutes_in_every_interval_spelling(
    sql: Run, staging: Staging, clock: ManualClock, interval: str
) -> None:
    served(staging, "MISS")  # at T: 11 minutes old at the query
    clock.advance(60)
    served(staging, "MISS")  # at T+60: exactly 10 minutes old: not "> now - 10 minutes"
    clock.advance(300)
    served(staging, "HIT")
    served(staging, "HIT")
    served(staging, "MISS")
    clock.advance(300)
    query = RUNBOOK_QUERY.replace("INTERVAL 10 MINUTE", interval)
    assert one(sql(query))["hit_rate"] == pytest.approx(200 / 3)


@pytest.mark.parametrize("unit, seconds", [("SECOND", 1), ("MINUTE", 60), ("HOUR", 3600), ("DAY", 86400)])
def test_interval_units(sql: Run, staging: Staging, clock: ManualClock, unit: str, seconds: int) -> None:
    served(staging)
    clock.advance(2 * seconds)
    query = f"SELECT count() AS n FROM {PERF} WHERE timestamp > now() - INTERVAL '3' {unit} AND timestamp <= now() - INTERVAL 1 {unit}"
    assert one(sql(query))["n"] == "1"
    assert one(sql(query.replace("'3'", "'1'")))["n"] == "0"


def test_an_empty_window_gives_null_not_zero(sql: Run, staging: Staging, clock: ManualClock) -> None:
    """ClickHouse computes 0/0 = NaN and writes NaN as JSON null: an empty window is neither 0% nor
    healthy, and a check must treat it as missing data. TabSeparated shows the NaN itself."""
    served(staging, "HIT")
    clock.advance(3600)
    assert sql(RUNBOOK_QUERY).json() == {"meta": [{"name": "hit_rate", "type": "Float64"}], "data": [{"hit_rate": None}], "rows": 1}
    assert sql(RUNBOOK_QUERY + " FORMAT TabSeparated").text == "nan\n"
    fresh = "SELECT count() AS n, sum(double1) AS s, avg(double1) AS a FROM books_api_cache_metrics"
    assert one(sql(fresh)) == {"n": "0", "s": 0.0, "a": None}


def test_integer_division_is_float_division(sql: Run) -> None:
    row = one(sql("SELECT 1 / 2 AS half, 7 / 2 AS q, 1 / 0 AS inf, 0 / 0 AS nan, (2 * 3) / 4 AS r"))
    assert row == {"half": 0.5, "q": 3.5, "inf": None, "nan": None, "r": 1.5}
    assert sql("SELECT 1 / 0, -1 / 0, 0 / 0 FORMAT TabSeparated").text == "inf\t-inf\tnan\n"


# ---------------------------------------------------------------------------- ingestion lag, time


def test_a_point_is_invisible_until_the_ingestion_lag_has_passed(sql: Run, staging: Staging, clock: ManualClock) -> None:
    staging.config = staging.config.with_overrides(ingestion_lag_s=30.0)
    served(staging, "HIT")
    count = f"SELECT count() AS n FROM {PERF}"
    assert one(sql(count))["n"] == "0"
    assert one(sql(RUNBOOK_QUERY))["hit_rate"] is None  # what a naive check must not read as healthy
    clock.advance(29.5)
    assert one(sql(count))["n"] == "0"
    clock.advance(0.5)  # now == written + lag
    assert one(sql(count))["n"] == "1"
    assert one(sql(RUNBOOK_QUERY))["hit_rate"] == 100.0


def test_a_lag_change_applies_to_points_written_after_it(sql: Run, staging: Staging, clock: ManualClock) -> None:
    served(staging)  # lag 0: visible at once
    staging.config = staging.config.with_overrides(ingestion_lag_s=60.0)
    served(staging)
    count = f"SELECT count() AS n FROM {PERF}"
    assert one(sql(count))["n"] == "1"
    clock.advance(60)
    assert one(sql(count))["n"] == "2"


def test_now_is_the_staging_clock_as_a_datetime(sql: Run, staging: Staging, clock: ManualClock) -> None:
    clock.advance(0.75)  # DateTime has whole seconds
    assert sql("SELECT now() AS t, NOW() AS u").json() == {
        "meta": [{"name": "t", "type": "DateTime"}, {"name": "u", "type": "DateTime"}],
        "data": [{"t": "2025-11-29 09:53:20", "u": "2025-11-29 09:53:20"}],
        "rows": 1,
    }
    served(staging)
    assert one(sql(f"SELECT timestamp, timestamp = now() AS same FROM {PERF}")) == {"timestamp": "2025-11-29 09:53:20", "same": 1}


def test_to_start_of_interval_buckets_from_the_epoch(sql: Run, staging: Staging, clock: ManualClock) -> None:
    for step in (0, 30, 45, 100, 400):  # 09:53:20 +0s, +30s, +45s, +100s, +400s
        clock.advance(step - (clock.now() - 1_764_410_000.0))
        served(staging)
    by_minute = sql(
        f"SELECT toStartOfInterval(timestamp, INTERVAL '1' MINUTE) AS minute, count() AS n FROM {PERF} "
        "GROUP BY minute ORDER BY minute"
    )
    assert rows(by_minute) == [
        {"minute": "2025-11-29 09:53:00", "n": "2"},
        {"minute": "2025-11-29 09:54:00", "n": "1"},
        {"minute": "2025-11-29 09:55:00", "n": "1"},
        {"minute": "2025-11-29 10:00:00", "n": "1"},
    ]
    by_five = sql(f"SELECT toStartOfInterval(timestamp, INTERVAL 5 MINUTE) AS t, count() AS n FROM {PERF} GROUP BY t ORDER BY t")
    assert rows(by_five) == [
        {"t": "2025-11-29 09:50:00", "n": "3"},
        {"t": "2025-11-29 09:55:00", "n": "1"},
        {"t": "2025-11-29 10:00:00", "n": "1"},
    ]
    assert by_five.json()["meta"][0] == {"name": "t", "type": "DateTime"}


# ------------------------------------------------------------------------------------- sampling


def test_sampled_points_count_with_sum_of_sample_interval(sql: Run, staging: Staging) -> None:
    served(staging, "HIT", ms=100.0, interval=10)
    served(staging, "MISS", ms=400.0, interval=1)
    served(staging, "MISS", ms=400.0, interval=1)
    answer = sql(
        f"SELECT count() AS points, SUM(_sample_interval) AS requests, "
        f"SUM(_sample_interval * double2) / SUM(_sample_interval) AS mean_ms, avg(double2) AS naive_mean_ms FROM {PERF}"
    ).json()
    assert answer["data"] == [{"points": "3", "requests": "12", "mean_ms": 150.0, "naive_mean_ms": 300.0}]
    assert [m["type"] for m in answer["meta"]] == ["UInt64", "UInt64", "Float64", "Float64"]


# ------------------------------------------------------------------------ quantileExactWeighted


def clickhouse_quantile_exact_weighted(level: float, pairs: list[tuple[float, int]]) -> float:
    """ClickHouse's QuantileExactWeighted::get, transcribed: NaN skipped, weights summed per value,
    threshold ceil(total * level), first value whose cumulative weight reaches it, else the last."""
    weights: dict[float, int] = {}
    for value, weight in pairs:
        if not math.isnan(value):
            weights[value] = weights.get(value, 0) + weight
    if not weights:
        return math.nan
    threshold = math.ceil(sum(weights.values()) * level)
    accumulated = 0.0
    ordered = sorted(weights.items())
    for value, weight in ordered:
        accumulated += weight
        if accumulated >= threshold:
            return value
    return ordered[-1][0]


@pytest.mark.parametrize("level, expected", [(0.95, 400.0), (0.5, 300.0), (0.4, 200.0), (0.0, 100.0), (1.0, 400.0)])
def test_quantile_exact_weighted_matches_a_hand_computed_value(sql: Run, staging: Staging, level: float, expected: float) -> None:
    # weights 1, 3, 1, 5 (total 10): cumulative 1, 4, 5, 10
    for ms, weight in [(300.0, 1), (100.0, 1), (400.0, 5), (200.0, 3)]:
        served(staging, ms=ms, interval=weight)
    served(staging, ms=math.nan, interval=100)  # NaN is skipped, its weight too
    answer = sql(f"SELECT quantileExactWeighted({level})(double2, _sample_interval) AS q FROM {PERF}").json()
    assert answer["data"] == [{"q": expected}]
    assert answer["meta"] == [{"name": "q", "type": "Float64"}]
    legacy = one(sql(f"SELECT quantileWeighted({level}, double2, _sample_interval) AS q FROM {PERF}"))
    assert legacy["q"] == expected


def test_quantile_exact_weighted_agrees_with_clickhouse_per_group(sql: Run, staging: Staging) -> None:
    rng = random.Random(7)
    points: dict[str, list[tuple[float, int]]] = {"HIT": [], "MISS": []}
    for _ in range(400):
        cache = rng.choice(["HIT", "MISS"])
        ms, weight = float(rng.randint(1, 60) * 10), rng.choice([1, 1, 2, 10])
        points[cache].append((ms, weight))
        served(staging, cache, ms=ms, interval=weight)
    answer = sql(
        f"SELECT blob3, quantileExactWeighted(0.95)(double2, _sample_interval) AS p95, "
        f"quantileExactWeighted(0.5)(double2, _sample_interval) AS p50 FROM {PERF} GROUP BY blob3 ORDER BY blob3"
    )
    assert rows(answer) == [
        {"blob3": cache, "p95": clickhouse_quantile_exact_weighted(0.95, pts), "p50": clickhouse_quantile_exact_weighted(0.5, pts)}
        for cache, pts in sorted(points.items())
    ]


def test_quantile_of_no_rows_is_nan(sql: Run) -> None:
    query = f"SELECT quantileExactWeighted(0.95)(double2, _sample_interval) AS p95 FROM {PERF}"
    assert one(sql(query)) == {"p95": None}
    assert sql(query + " FORMAT TabSeparated").text == "nan\n"


# --------------------------------------------------------------------------- functions, clauses


@pytest.fixture
def traffic(staging: Staging) -> None:
    """8 requests: 5 HIT (100..500 ms), 3 MISS (600..800 ms), one of them a 500 on /v1/search/isbn."""
    for i in range(8):
        path = "/v1/search/isbn" if i == 7 else "/v1/search/title"
        served(staging, "HIT" if i < 5 else "MISS", ms=100.0 * (i + 1), status=500.0 if i == 7 else 200.0, path=path)


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize(
    "expression, value, ch_type",
    [
        ("count()", "8", "UInt64"),
        ("COUNT(*)", "8", "UInt64"),
        ("count(blob1)", "8", "UInt64"),
        ("count(DISTINCT blob1)", "2", "UInt64"),
        ("sum(double2)", 3600.0, "Float64"),
        ("sum(DISTINCT double1)", 700.0, "Float64"),
        ("SUM(_sample_interval)", "8", "UInt64"),
        ("sum(blob3 = 'HIT')", "5", "UInt64"),
        ("avg(double2)", 450.0, "Float64"),
        ("min(double2)", 100.0, "Float64"),
        ("max(double2)", 800.0, "Float64"),
        ("min(blob3)", "HIT", "String"),
        ("max(timestamp)", "2025-11-29 09:53:20", "DateTime"),
        ("countIf(blob3 = 'MISS')", "3", "UInt64"),
        ("sumIf(double2, blob3 = 'MISS')", 2100.0, "Float64"),
        ("avgIf(double2, double1 >= 500)", 800.0, "Float64"),
        ("minIf(double2, blob3 = 'MISS')", 600.0, "Float64"),
        ("maxIf(double2, blob3 = 'HIT')", 500.0, "Float64"),
        ("sum(if(double1 >= 500, 1, 0)) / count() * 100", 12.5, "Float64"),
        ("sum(CASE WHEN double2 > 650 THEN _sample_interval ELSE 0 END)", "2", "UInt64"),
        ("quantileExactWeighted(0.95)(double2, _sample_interval)", 800.0, "Float64"),
        ("max(_sample_interval)", 1, "UInt32"),
    ],
)
def test_aggregate_functions(sql: Run, expression: str, value: object, ch_type: str) -> None:
    answer = sql(f"SELECT {expression} AS v FROM {PERF}").json()
    assert answer["data"] == [{"v": value}]
    assert answer["meta"] == [{"name": "v", "type": ch_type}]


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize(
    "where, expected",
    [
        ("blob3 = 'HIT'", 5),
        ("blob3 == 'HIT' AND double2 > 200", 3),
        ("blob3 != 'HIT' OR double1 = 500", 3),
        ("blob3 <> 'HIT'", 3),
        ("NOT (double2 < 300)", 6),
        ("double2 >= 300 AND double2 <= 400", 2),
        ("double2 BETWEEN 300 AND 400", 2),
        ("double2 NOT BETWEEN 300 AND 400", 6),
        ("blob1 IN ('/v1/search/isbn', '/nope')", 1),
        ("blob1 NOT IN ('/v1/search/isbn')", 7),
        ("blob1 LIKE '%isbn'", 1),
        ("blob1 NOT LIKE '/v1/search/%'", 0),
        ("blob1 ILIKE '%ISBN'", 1),
        ("index1 = '/v1/search/title'", 7),
        ("double1 = '500'", 1),
        ("if(double1 >= 500, 1, 0)", 1),
        ("timestamp > '2025-11-29 09:53:19'", 8),
        ("timestamp >= now()", 8),
        ("blob4 = '' AND double3 = 0", 8),
        ("-double2 < -700", 1),
        ("double2 % 300 = 0", 2),
        ("(double2 + 1) * 2 - 2 = 1600", 1),
    ],
)
def test_where_operators(sql: Run, where: str, expected: int) -> None:
    assert one(sql(f"SELECT count() AS n FROM {PERF} WHERE {where}"))["n"] == str(expected)


@pytest.mark.usefixtures("traffic")
def test_group_by_having_order_by_limit(sql: Run) -> None:
    query = (
        f"SELECT blob3 AS cache, count() AS n, avg(double2) AS mean_ms FROM {PERF} "
        "WHERE double1 = 200 GROUP BY cache HAVING n > 1 ORDER BY mean_ms DESC"
    )
    assert rows(sql(query)) == [{"cache": "MISS", "n": "2", "mean_ms": 650.0}, {"cache": "HIT", "n": "5", "mean_ms": 300.0}]
    assert rows(sql(query + " LIMIT 1")) == [{"cache": "MISS", "n": "2", "mean_ms": 650.0}]
    assert rows(sql(query + " LIMIT 1 OFFSET 1")) == [{"cache": "HIT", "n": "5", "mean_ms": 300.0}]
    assert rows(sql(query + " LIMIT 1, 1")) == [{"cache": "HIT", "n": "5", "mean_ms": 300.0}]
    positional = f"SELECT blob1, count() FROM {PERF} GROUP BY 1 ORDER BY 2 ASC"
    assert rows(sql(positional)) == [{"blob1": "/v1/search/isbn", "count()": "1"}, {"blob1": "/v1/search/title", "count()": "7"}]


@pytest.mark.usefixtures("traffic")
def test_plain_rows_distinct_order_limit(sql: Run) -> None:
    assert rows(sql(f"SELECT double2 FROM {PERF} ORDER BY double2 DESC LIMIT 2")) == [{"double2": 800.0}, {"double2": 700.0}]
    assert rows(sql(f"SELECT DISTINCT blob3 FROM {PERF} ORDER BY blob3")) == [{"blob3": "HIT"}, {"blob3": "MISS"}]
    assert rows(sql(f"SELECT blob3 AS c FROM {PERF} WHERE c = 'MISS' AND double2 > 650 ORDER BY double2")) == [{"c": "MISS"}] * 2


@pytest.mark.usefixtures("traffic")
def test_if_and_case(sql: Run) -> None:
    query = (
        f"SELECT if(double2 > 450, 'slow', 'fast') AS speed, "
        "CASE WHEN double1 >= 500 THEN 'error' WHEN double1 >= 400 THEN 'client' ELSE 'ok' END AS outcome, "
        "CASE blob3 WHEN 'HIT' THEN 1 WHEN 'MISS' THEN 0 END AS hit, "
        f"count() AS n FROM {PERF} GROUP BY speed, outcome, hit ORDER BY speed, outcome, hit"
    )
    answer = sql(query).json()
    assert answer["data"] == [
        {"speed": "fast", "outcome": "ok", "hit": 1, "n": "4"},
        {"speed": "slow", "outcome": "error", "hit": 0, "n": "1"},
        {"speed": "slow", "outcome": "ok", "hit": 0, "n": "2"},
        {"speed": "slow", "outcome": "ok", "hit": 1, "n": "1"},
    ]
    assert [m["type"] for m in answer["meta"]] == ["String", "String", "Nullable(UInt8)", "UInt64"]


def test_nan_never_passes_a_comparison(sql: Run) -> None:
    empty_rate = f"SELECT 1 AS x FROM {CACHE} HAVING sum(double1) / count() "
    assert rows(sql(empty_rate + "> 50")) == []
    assert rows(sql(empty_rate + "< 50")) == []
    assert rows(sql(empty_rate + "!= 50")) == [{"x": 1}]


def test_min_and_max_of_no_rows_are_the_type_defaults(sql: Run) -> None:
    query = f"SELECT min(double2) AS a, max(timestamp) AS b, min(blob1) AS c, max(_sample_interval) AS d FROM {PERF}"
    assert one(sql(query)) == {"a": 0.0, "b": "1970-01-01 00:00:00", "c": "", "d": 0}


def test_select_star_and_column_defaults(sql: Run, staging: Staging) -> None:
    staging.analytics.write(CACHE, index1="kv_hit", blobs=("kv_hit",), doubles=(12.5,))
    answer = sql(f"SELECT * FROM {CACHE}").json()
    names = [m["name"] for m in answer["meta"]]
    assert names == ["dataset", "timestamp", "_sample_interval", "index1"] + [f"blob{i}" for i in range(1, 21)] + [
        f"double{i}" for i in range(1, 21)
    ]
    (row,) = answer["data"]
    assert row["dataset"] == CACHE and row["index1"] == "kv_hit" and row["blob1"] == "kv_hit" and row["double1"] == 12.5
    assert all(row[f"blob{i}"] == "" for i in range(2, 21)) and all(row[f"double{i}"] == 0 for i in range(2, 21))
    assert row["_sample_interval"] == 1 and row["timestamp"] == "2025-11-29 09:53:20"


def test_any_dataset_written_to_becomes_a_table(sql: Run, staging: Staging) -> None:
    staging.analytics.write("books_api_performance_staging", index1="x", blobs=("a",))
    assert one(sql("SELECT dataset, count() AS n FROM books_api_performance_staging GROUP BY dataset")) == {
        "dataset": "books_api_performance_staging",
        "n": "1",
    }


def test_select_without_from(sql: Run) -> None:
    answer = sql("SELECT 'Hello Workers Analytics Engine' AS message, 1 + 1 AS two, 300 - 500 AS neg").json()
    assert answer["data"] == [{"message": "Hello Workers Analytics Engine", "two": 2, "neg": -200}]
    assert [m["type"] for m in answer["meta"]] == ["String", "UInt16", "Int32"]  # minus(UInt16, UInt16)


def test_unaliased_columns_are_named_as_clickhouse_names_them(sql: Run, staging: Staging) -> None:
    served(staging)
    meta = sql(f"SELECT count(), SUM(_sample_interval), sum(double2) / count() FROM {PERF}").json()["meta"]
    assert [m["name"] for m in meta] == ["count()", "SUM(_sample_interval)", "divide(sum(double2), count())"]
    meta = sql(f"SELECT blob3 = 'HIT', -double1, double2 IN (1, 2) FROM {PERF}").json()["meta"]
    assert [m["name"] for m in meta] == ["equals(blob3, 'HIT')", "negate(double1)", "in(double2, tuple(1, 2))"]


# ------------------------------------------------------------------------------------- formats


@pytest.mark.usefixtures("traffic")
def test_formats(sql: Run) -> None:
    query = f"SELECT blob3, count() AS n, avg(double2) AS ms FROM {PERF} GROUP BY blob3 ORDER BY blob3"
    as_json = sql(query + " FORMAT JSON")
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == sql(query).json() == {
        "meta": [{"name": "blob3", "type": "String"}, {"name": "n", "type": "UInt64"}, {"name": "ms", "type": "Float64"}],
        "data": [{"blob3": "HIT", "n": "5", "ms": 300.0}, {"blob3": "MISS", "n": "3", "ms": 700.0}],
        "rows": 2,
    }
    each_row = sql(query + " FORMAT JSONEachRow")
    assert each_row.text == '{"blob3": "HIT", "n": "5", "ms": 300.0}\n{"blob3": "MISS", "n": "3", "ms": 700.0}\n'
    tsv = sql(query + " FORMAT TabSeparated;")
    assert tsv.headers["content-type"].startswith("text/tab-separated-values")
    assert tsv.text == "HIT\t5\t300\nMISS\t3\t700\n"


def test_tab_separated_escapes_strings(sql: Run, staging: Staging) -> None:
    staging.analytics.write(CACHE, index1="k", blobs=("tab\there", "line\nbreak", "back\\slash"))
    assert sql(f"SELECT blob1, blob2, blob3, NULL FROM {CACHE} FORMAT TabSeparated").text == (
        "tab\\there\tline\\nbreak\tback\\\\slash\t\\N\n"
    )


def test_any_content_type_carries_the_query(sql: Run) -> None:
    """The cloudflare SDK sends the raw SQL as application/json (shared/notes/real-clients.md)."""
    for content_type in ("application/json", "text/plain;charset=UTF-8", "application/octet-stream"):
        assert one(sql("SELECT 1 AS one", content_type=content_type)) == {"one": 1}


def test_sql_with_comments_and_quoting(sql: Run, staging: Staging) -> None:
    staging.analytics.write(CACHE, index1="k", blobs=("it's",))
    query = f"""-- which keys
        SELECT "blob1" AS `the key`, count() /* points */ AS n
        FROM {CACHE} WHERE blob1 = 'it''s' OR blob1 = 'it\\'s' GROUP BY blob1"""
    assert one(sql(query)) == {"the key": "it's", "n": "1"}
