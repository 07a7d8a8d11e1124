"""The SQL API's answer formats (Cloudflare's SQL reference, "FORMAT clause"), written as ClickHouse
writes them:

- ``JSON`` (default): ``{"meta": [{"name", "type"}], "data": [{...}], "rows": n}``;
- ``JSONEachRow``: one JSON object per line;
- ``TabSeparated``: one line per row, tab between values, no header; ``\\N`` for NULL.

In both JSON formats 64-bit integers (UInt64/Int64: ``count()``, ``sum`` of integers) are strings
(ClickHouse's ``output_format_json_quote_64bit_integers``), and NaN or infinity is ``null``
(``output_format_json_quote_denormals`` off): so an empty window's ``0/0`` hit rate arrives as ``null``,
not as a number a check could mistake for 0%. TabSeparated writes ``nan``/``inf``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Callable

from .chtypes import ChType
from .store import QueryResult

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
MEDIA_TYPES = {
    "JSON": "application/json",
    "JSONEachRow": "application/x-ndjson",
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
}


def _datetime_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _json_converter(t: ChType) -> Callable[[Any], Any]:
    if t.is_64bit_int:
        return lambda v: None if v is None else str(v)
    if t.is_float:
        return lambda v: v if v is not None and math.isfinite(v) else None
    if t.name == "DateTime":
        return lambda v: None if v is None else _datetime_text(v)
    return lambda v: v


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _tsv_converter(t: ChType) -> Callable[[Any], str]:
    def text(value: Any) -> str:
        if value is None:
            return "\\N"
        if t.is_float:
            return _float_text(value)
        if t.name == "DateTime":
            return _datetime_text(value)
        return str(value).translate(_TSV_ESCAPES)

    return text


def render(result: QueryResult) -> tuple[bytes, str]:
    """The answer body and its media type."""
    names = [c.name for c in result.columns]
    media_type = MEDIA_TYPES[result.format]
    if result.format == "TabSeparated":
        converters = [_tsv_converter(c.type) for c in result.columns]
        lines = ("\t".join(f(v) for f, v in zip(converters, row)) + "\n" for row in result.rows)
        return "".join(lines).encode("utf-8"), media_type
    converters = [_json_converter(c.type) for c in result.columns]
    objects = [{n: f(v) for n, f, v in zip(names, converters, row)} for row in result.rows]
    if result.format == "JSONEachRow":
        text = "".join(json.dumps(o, ensure_ascii=False, allow_nan=False) + "\n" for o in objects)
        return text.encode("utf-8"), media_type
    body = {
        "meta": [{"name": c.name, "type": c.type.label} for c in result.columns],
        "data": objects,
        "rows": len(objects),
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8"), media_type
