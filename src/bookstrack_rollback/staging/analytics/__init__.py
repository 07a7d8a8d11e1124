"""Workers Analytics Engine: data points written per request, read back through SQL on DuckDB.

- ``store.py``: ``AnalyticsStore`` (``write``, ``query``, ``close``): buffers, DuckDB tables, ingestion lag;
- ``sql.py`` → ``syntax.py``: the ClickHouse-flavoured dialect read into a syntax tree (refusals:
  ``AnalyticsSqlError``, answered 422);
- ``translate.py`` (query shape) + ``expressions.py`` (expressions) + ``chtypes.py`` (ClickHouse types):
  the tree as DuckDB SQL with ClickHouse's semantics;
- ``formats.py``: JSON, JSONEachRow, TabSeparated answers;
- ``routes.py``: ``POST /client/v4/accounts/{account_id}/analytics_engine/sql``.
"""
