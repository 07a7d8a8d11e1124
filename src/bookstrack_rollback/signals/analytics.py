"""The named Analytics Engine queries, one definition of each measure (``traffic.Counts``).

Windows are written relative to the query's own ``NOW()`` (as the runbook writes them), in whole
seconds: ``since_s`` back, optionally ending ``until_s`` back; or from a moment on (``from_epoch``: Unix
seconds, which a DateTime compares with), for a window that must start exactly after an event. Counts are weighted by
``_sample_interval`` (Analytics Engine samples busy datasets), and 64-bit integers may arrive as strings.
"""

from __future__ import annotations

import math
from typing import Any

from ..clients.cloudflare import CloudflareApi
from .traffic import EXCLUDED_PATHS, Counts

RUNBOOK_CACHE_QUERY = ("SELECT (SUM(CASE WHEN blob3 = 'HIT' THEN 1 ELSE 0 END) / COUNT(*)) * 100 as hit_rate "
                       "FROM books_api_performance WHERE timestamp > NOW() - INTERVAL 10 MINUTE")
_MEASURES = {  # Counts field -> its one definition
    "requests": "SUM(_sample_interval)",
    "errors": "sumIf(_sample_interval, blob2 != 'N/A')",
    "server_errors": "sumIf(_sample_interval, blob2 != 'N/A' AND double1 >= 500)",
    "hits": "sumIf(_sample_interval, blob2 = 'N/A' AND blob3 = 'HIT')",
    "misses": "sumIf(_sample_interval, blob2 = 'N/A' AND blob3 != 'HIT')",
    "mislabelled": "sumIf(_sample_interval, blob2 = 'N/A' AND double1 >= 400)",
}


def as_count(value: Any) -> int:
    """Analytics Engine sends 64-bit integers as strings; sums of nothing as null."""
    if value is None:
        return 0
    return int(float(value))


def window(since_s: float, until_s: float = 0.0) -> str:
    """``timestamp`` in the window from ``since_s`` to ``until_s`` seconds before NOW()."""
    clause = f"timestamp > NOW() - INTERVAL '{max(1, math.ceil(since_s))}' SECOND"
    if until_s >= 1:
        clause += f" AND timestamp <= NOW() - INTERVAL '{math.floor(until_s)}' SECOND"
    return clause


def traffic_sql(dataset: str, since_s: float = 0.0, until_s: float = 0.0, *, from_epoch: int | None = None) -> str:
    """The window's requests path by path, each measure by its one definition (the progress socket and
    the job-creating batch endpoint left out: the WebSocket checks judge them)."""
    columns = ", ".join(f"{sql} AS {name}" for name, sql in _MEASURES.items())
    excluded = " AND ".join(f"blob1 != '{path}'" for path in EXCLUDED_PATHS)
    where = f"timestamp >= {int(from_epoch)}" if from_epoch is not None else window(since_s, until_s)
    return f"SELECT blob1 AS path, {columns} FROM {dataset} WHERE {where} AND {excluded} GROUP BY blob1"


async def traffic(api: CloudflareApi, dataset: str, since_s: float = 0.0, until_s: float = 0.0, *,
                  from_epoch: int | None = None) -> dict[str, Counts]:
    """Run :func:`traffic_sql`: the window's ``Counts`` by path."""
    rows = (await api.sql(traffic_sql(dataset, since_s, until_s, from_epoch=from_epoch))).rows
    return {str(r["path"]): Counts(*(as_count(r.get(name)) for name in _MEASURES)) for r in rows}


def runbook_cache_query(dataset: str, window_s: float) -> str:
    """The runbook's query as written; only the dataset and, at a time scale, the interval change."""
    sql = RUNBOOK_CACHE_QUERY.replace("FROM books_api_performance", f"FROM {dataset}")
    if abs(window_s - 600) > 0.5:
        sql = sql.replace("INTERVAL 10 MINUTE", f"INTERVAL {max(1, math.ceil(window_s))} SECOND")
    return sql


def cache_tiers_sql(dataset: str, since_s: float) -> str:
    """``books_api_cache_metrics`` by tier (index1: edge_hit_fresh, edge_hit_stale, kv_hit, api_miss...)."""
    return f"SELECT index1 AS tier, SUM(_sample_interval) AS n FROM {dataset} WHERE {window(since_s)} GROUP BY index1"
