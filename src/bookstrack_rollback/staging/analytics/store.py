"""Workers Analytics Engine data points, kept in DuckDB (contract/cloudflare-api.md, "Workers Analytics
Engine SQL"; contract/bookstrack-api.md, "Telemetry").

- ``write()`` is ``writeDataPoint``: called once per BooksTrack request on the event loop, it only
  appends a tuple to an in-memory buffer (about a microsecond). Buffered points reach DuckDB in one bulk
  INSERT when the next query runs (``_flush``), never one INSERT per point; past 50,000 buffered points
  a background thread flushes them, so a staging that nobody queries does not grow without bound.
- One table per dataset, created when first written to; the two configured datasets exist from the
  start (the worker has been writing them for a long time), so an empty window reads as empty, not as
  "unknown table". Columns: dataset, timestamp (DateTime, whole seconds), _sample_interval (UInt32),
  index1, blob1..blob20 ('' when not written), double1..double20 (0 when not written).
- Ingestion lag: a point written at ``t`` becomes visible to queries once ``now >= t + lag``, where
  ``lag`` is ``ingestion_lag()`` (``config.ingestion_lag_s``) when the point is written (it may change
  at runtime: like a delay in a pipeline, a change applies to points written after it, and never
  hides points already visible).
- ``query()`` runs on a DuckDB cursor of its own, so the route can run it in a worker thread; a lock
  orders flushes, the buffer has its own lock, and a query sees every point flushed before it starts.
- The database cannot touch the filesystem (``enable_external_access = false``), and the SQL it runs is
  generated from a parsed, whitelisted query (``sql.py`` → ``translate.py``), never passed through.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import duckdb

from ..base import Clock
from .sql import parse
from .syntax import AnalyticsSqlError
from .translate import ResultColumn, Source, translate

MAX_BLOBS = 20
MAX_DOUBLES = 20
_RECORD, _UNIT = "\x1e", "\x1f"  # separators of the bulk load text
_COMPACT_AFTER = 100_000  # points flushed at once past which the tables are compressed at once
FLUSH_IN_BACKGROUND_AT = 50_000  # buffered points
_DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}$")
_BLOB_COLUMNS = ", ".join(f"blob{i} VARCHAR NOT NULL DEFAULT ''" for i in range(1, MAX_BLOBS + 1))
_DOUBLE_COLUMNS = ", ".join(f"double{i} DOUBLE NOT NULL DEFAULT 0" for i in range(1, MAX_DOUBLES + 1))
_VISIBLE_COLUMNS = ", ".join(
    ['"timestamp"', "_sample_interval", "index1"]
    + [f"blob{i}" for i in range(1, MAX_BLOBS + 1)]
    + [f"double{i}" for i in range(1, MAX_DOUBLES + 1)]
)

Row = tuple[float, str, int, tuple[str, ...], tuple[float, ...]]  # written, index1, interval, blobs, doubles
Shape = tuple[str, int, int, float]  # dataset, number of blobs, number of doubles, ingestion lag


class AnalyticsUnavailable(RuntimeError):
    """The store was closed (the staging was reset) before or while the query ran."""


@dataclass(frozen=True)
class QueryResult:
    """Rows as DuckDB returned them, with each column's ClickHouse name and type; ``formats.py``
    writes them out in the query's ``FORMAT``."""

    columns: tuple[ResultColumn, ...]
    rows: list[tuple[Any, ...]]
    format: str


class AnalyticsStore:
    """The data points of every dataset (``datasets`` exist from the start), on ``clock``'s time."""

    def __init__(self, clock: Clock, datasets: Sequence[str], ingestion_lag: Callable[[], float]) -> None:
        self._clock = clock
        self._ingestion_lag = ingestion_lag
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[Shape, list[Row]] = {}
        self._buffered = 0
        self._background_flush_running = False
        self._datasets_seen: set[str] = set()
        self._tables: dict[str, str] = {}
        self._closed = False
        self._db = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "lock_configuration": True,
            },
        )
        # A compressed in-memory catalog: one million points take ~10 MB instead of ~430 MB.
        self._db.execute("ATTACH ':memory:' AS points (COMPRESS)")
        for dataset in datasets:
            self._check_dataset(dataset)
            self._create_table(dataset)

    # -- writing
    def write(
        self,
        dataset: str,
        *,
        index1: str,
        blobs: Sequence[str] = (),
        doubles: Sequence[float] = (),
        sample_interval: int = 1,
        at: float | None = None,
    ) -> None:
        """Write one data point (``writeDataPoint``) to ``dataset`` at the staging clock's now, or at
        ``at`` (epoch seconds) when the writer says when it wrote it (a Worker in workerd).

        Raises ValueError/TypeError at once for what the real binding refuses: more than 20 blobs or
        doubles, a non-string index or blob, a non-number double, a sample interval below 1.
        """
        blobs = tuple(blobs)
        doubles = tuple(doubles)
        if len(blobs) > MAX_BLOBS or len(doubles) > MAX_DOUBLES:
            raise ValueError(
                f"a data point has at most {MAX_BLOBS} blobs and {MAX_DOUBLES} doubles, "
                f"got {len(blobs)} and {len(doubles)}"
            )
        for text in (index1, *blobs):  # plain loops: cheaper than all() on this hot path
            if type(text) is not str:
                raise TypeError(f"index1 and blobs must be strings, got index1={index1!r}, blobs={blobs!r}")
        for number in doubles:
            if type(number) is not float and type(number) is not int:
                raise TypeError(f"doubles must be numbers, got {doubles!r}")
        if type(sample_interval) is not int or sample_interval < 1:
            raise ValueError(f"sample_interval must be an integer >= 1, got {sample_interval!r}")
        if dataset not in self._datasets_seen:
            self._check_dataset(dataset)
        row = (self._clock.now() if at is None else at, index1, sample_interval, blobs, doubles)
        key = (dataset, len(blobs), len(doubles), self._ingestion_lag())
        with self._buffer_lock:
            if self._closed:
                return  # the staging was reset: this point belongs to a world that no longer exists
            bucket = self._pending.get(key)
            if bucket is None:
                self._pending[key] = [row]
            else:
                bucket.append(row)
            self._buffered += 1
            if self._buffered < FLUSH_IN_BACKGROUND_AT or self._background_flush_running:
                return
            self._background_flush_running = True
        threading.Thread(target=self._flush_in_background, name="analytics-flush", daemon=True).start()

    def _flush_in_background(self) -> None:
        try:
            self.flush()
        finally:
            with self._buffer_lock:
                self._background_flush_running = False

    def _check_dataset(self, dataset: str) -> None:
        if type(dataset) is not str or not _DATASET_NAME.match(dataset):
            raise ValueError(f"a dataset name is letters, digits, '_' and '-', got {dataset!r}")
        self._datasets_seen.add(dataset)

    # -- reading
    def query(self, text: str) -> QueryResult:
        """Run one SQL API query; raises AnalyticsSqlError (422) or AnalyticsUnavailable (503).

        Blocking (it flushes and runs DuckDB): call it from a worker thread in async code.
        """
        statement = parse(text)
        with self._flush_lock:
            if self._closed:
                raise AnalyticsUnavailable("the Analytics Engine store was reset; run the query again")
            self._flush()
            source = None
            if statement.table is not None:
                table = self._tables.get(statement.table)
                if table is None:
                    known = ", ".join(sorted(self._tables))
                    raise AnalyticsSqlError(f"unknown table {statement.table!r}: the datasets are {known}")
                source = Source(statement.table, self._visible_rows_sql(statement.table, table))
            cursor = self._db.cursor()
        try:
            now = float(self._clock.now())
            plan = translate(statement, source, now)
            if source is None:
                rows = cursor.execute(plan.sql).fetchall()
            else:
                rows = cursor.execute(plan.sql, {"now": now}).fetchall()
        except duckdb.Error as exc:
            if self._closed:
                raise AnalyticsUnavailable("the Analytics Engine store was reset while the query ran") from exc
            raise AnalyticsSqlError(str(exc).strip().splitlines()[0]) from exc
        finally:
            cursor.close()
        return QueryResult(plan.columns, rows, statement.format)

    def close(self) -> None:
        """Drop everything (``Staging.reset``); later writes are ignored, later queries refused."""
        with self._flush_lock:
            with self._buffer_lock:
                if self._closed:
                    return
                self._closed = True
                self._pending, self._buffered = {}, 0
            self._db.close()

    # -- DuckDB
    def _create_table(self, dataset: str) -> str:
        table = f"points.dataset_{len(self._tables)}"
        self._db.execute(
            f"CREATE TABLE {table} (_visible_at DOUBLE NOT NULL, \"timestamp\" TIMESTAMP NOT NULL, "
            f"_sample_interval UINTEGER NOT NULL DEFAULT 1, index1 VARCHAR NOT NULL, "
            f"{_BLOB_COLUMNS}, {_DOUBLE_COLUMNS})"
        )
        self._tables[dataset] = table
        return table

    @staticmethod
    def _visible_rows_sql(dataset: str, table: str) -> str:
        """The dataset as queries see it: the points whose ingestion lag has passed."""
        name = "'" + dataset.replace("'", "''") + "'"
        return f"(SELECT {name} AS dataset, {_VISIBLE_COLUMNS} FROM {table} WHERE _visible_at <= $now)"

    def flush(self) -> None:
        """Move every buffered point into DuckDB now (a query does this by itself). Blocking."""
        with self._flush_lock:
            if not self._closed:
                self._flush()

    def _flush(self) -> None:
        """Move every buffered point into DuckDB; the caller holds ``_flush_lock``."""
        with self._buffer_lock:
            pending, self._pending, self._buffered = self._pending, {}, 0
        for (dataset, n_blobs, n_doubles, lag), rows in pending.items():
            table = self._tables.get(dataset) or self._create_table(dataset)
            self._insert(table, (n_blobs, n_doubles, float(lag)), rows)
        if sum(map(len, pending.values())) >= _COMPACT_AFTER:
            self._db.execute("CHECKPOINT points")  # smaller flushes are compressed as they go

    def _insert(self, table: str, shape: tuple[int, int, float], rows: list[Row]) -> None:
        """One INSERT for ``rows`` (all of one shape): the points travel as one string, split by DuckDB
        (Python lists cross into DuckDB one slow value at a time). Points whose strings hold the
        separators go through a parameterised INSERT instead. ``_visible_at`` is ``written + lag`` in
        DOUBLE arithmetic, the same sum Python would make."""
        n_blobs, n_doubles, lag = shape
        template = _UNIT.join(["%r", "%s", "%d"] + ["%s"] * n_blobs + ["%r"] * n_doubles)
        text = _RECORD.join(
            [template % (at, index1, interval, *blobs, *doubles) for at, index1, interval, blobs, doubles in rows]
        )
        fields = 3 + n_blobs + n_doubles
        if text.count(_UNIT) != len(rows) * (fields - 1) or text.count(_RECORD) != len(rows) - 1:
            clean: list[Row] = []
            awkward: list[Row] = []
            for row in rows:
                holds_separator = any(_UNIT in s or _RECORD in s for s in (row[1], *row[3]))
                (awkward if holds_separator else clean).append(row)
            self._insert_slowly(table, shape, awkward)
            if clean:
                self._insert(table, shape, clean)
            return
        columns = self._columns(n_blobs, n_doubles)
        values = [
            "CAST(f[1] AS DOUBLE) + $2",
            "make_timestamp(CAST(floor(CAST(f[1] AS DOUBLE)) AS BIGINT) * 1000000)",
            "CAST(f[3] AS UINTEGER)",
            "f[2]",
            *(f"f[{4 + i}]" for i in range(n_blobs)),
            *(f"CAST(f[{4 + n_blobs + i}] AS DOUBLE)" for i in range(n_doubles)),
        ]
        self._db.execute(
            f"INSERT INTO {table} ({columns}) SELECT {', '.join(values)} "
            f"FROM (SELECT string_split(unnest(string_split($1, chr(30))), chr(31)) AS f)",
            [text, lag],
        )

    def _insert_slowly(self, table: str, shape: tuple[int, int, float], rows: list[Row]) -> None:
        n_blobs, n_doubles, lag = shape
        marks = ", ".join(["?"] * (4 + n_blobs + n_doubles))
        self._db.executemany(
            f"INSERT INTO {table} ({self._columns(n_blobs, n_doubles)}) VALUES ({marks})",
            [
                [at + lag, _datetime(at), interval, index1, *blobs, *map(float, doubles)]
                for at, index1, interval, blobs, doubles in rows
            ],
        )

    @staticmethod
    def _columns(n_blobs: int, n_doubles: int) -> str:
        names = ["_visible_at", '"timestamp"', "_sample_interval", "index1"]
        names += [f"blob{i}" for i in range(1, n_blobs + 1)]
        names += [f"double{i}" for i in range(1, n_doubles + 1)]
        return ", ".join(names)


def _datetime(at: float) -> datetime:
    return datetime.fromtimestamp(math.floor(at), tz=timezone.utc).replace(tzinfo=None)
