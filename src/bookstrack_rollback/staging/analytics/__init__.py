"""Workers Analytics Engine: data points written per request, read back through SQL on DuckDB."""
