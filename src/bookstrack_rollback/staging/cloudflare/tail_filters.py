"""Tail filters: which trace-v1 events a tail receives (contract/cloudflare-api.md, "Tail").

``POST .../tails`` takes ``{"filters": [...]}``, each element one filter (what ``wrangler tail`` sends):
``{"outcome": [...]}``, ``{"sampling_rate": 0.1}``, ``{"method": ["GET"]}``, ``{"query": "text"}``,
``{"client_ip": ["self", ...]}``, ``{"header": {"key", "query"?}}``, ``{"scriptVersion": uuid}``.
An event is sent when every filter matches (and, within one filter's list, any value does);
sampling is drawn last, from a random source seeded from the staging's, so runs replay.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from . import errors

KNOWN = ("outcome", "sampling_rate", "method", "query", "client_ip", "header", "scriptVersion")


@dataclass(frozen=True)
class HeaderFilter:
    key: str  # lower case
    query: str | None


@dataclass(frozen=True)
class TailFilters:
    outcomes: frozenset[str] | None = None
    sampling_rate: float | None = None
    methods: frozenset[str] | None = None
    query: str | None = None
    client_ips: frozenset[str] | None = None
    header: HeaderFilter | None = None
    script_version: str | None = None

    def matches(self, event: dict[str, Any], text: str, rng: random.Random) -> bool:
        """Whether ``event`` (serialised as ``text``) passes; draws from ``rng`` only for sampling."""
        request = _request_of(event)
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        if self.outcomes is not None and event.get("outcome") not in self.outcomes:
            return False
        if self.methods is not None and str(request.get("method", "")).upper() not in self.methods:
            return False
        if self.client_ips is not None and headers.get("cf-connecting-ip") not in self.client_ips:
            return False
        if self.header is not None:
            value = headers.get(self.header.key)
            if value is None or (self.header.query is not None and self.header.query not in value):
                return False
        if self.query is not None and self.query not in text:
            return False
        if self.script_version is not None:
            version = event.get("scriptVersion")
            if not isinstance(version, dict) or version.get("id") != self.script_version:
                return False
        if self.sampling_rate is not None and not rng.random() < self.sampling_rate:
            return False
        return True


def _request_of(event: dict[str, Any]) -> dict[str, Any]:
    inner = event.get("event")
    request = inner.get("request") if isinstance(inner, dict) else None
    return request if isinstance(request, dict) else {}


def _strings(kind: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise errors.invalid_tail(f"{{{kind!r}: ...}} needs a non-empty list of strings, got {value!r}")
    return frozenset(value)


def parse_filters(raw: Any, requester_ip: str) -> TailFilters:
    """The filters of a ``POST .../tails`` body; ``client_ip: ["self"]`` means ``requester_ip``."""
    if raw is None:
        return TailFilters()
    if not isinstance(raw, list):
        raise errors.invalid_tail(f"filters must be a list of filter objects, got {raw!r}")
    found: dict[str, Any] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or len(item) != 1:
            raise errors.invalid_tail(f"filters[{index}] must be an object with exactly one of {list(KNOWN)}, got {item!r}")
        ((kind, value),) = item.items()
        if kind not in KNOWN:
            raise errors.invalid_tail(f"filters[{index}]: unknown filter {kind!r}; known: {list(KNOWN)}")
        if kind in found:
            raise errors.invalid_tail(f"filters[{index}]: the {kind!r} filter is given twice")
        found[kind] = value
    fields: dict[str, Any] = {}
    if "outcome" in found:
        fields["outcomes"] = _strings("outcome", found["outcome"])
    if "method" in found:
        fields["methods"] = frozenset(m.upper() for m in _strings("method", found["method"]))
    if "client_ip" in found:
        fields["client_ips"] = frozenset(
            requester_ip if ip == "self" else ip for ip in _strings("client_ip", found["client_ip"])
        )
    if "sampling_rate" in found:
        rate = found["sampling_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and 0 <= rate <= 1):
            raise errors.invalid_tail(f"sampling_rate must be a number from 0 to 1, got {rate!r}")
        fields["sampling_rate"] = float(rate)
    if "query" in found:
        if not isinstance(found["query"], str) or not found["query"]:
            raise errors.invalid_tail(f"query must be a non-empty string, got {found['query']!r}")
        fields["query"] = found["query"]
    if "header" in found:
        header = found["header"]
        key = header.get("key") if isinstance(header, dict) else None
        query = header.get("query") if isinstance(header, dict) else None
        if not isinstance(key, str) or not key or not (query is None or isinstance(query, str)):
            raise errors.invalid_tail(f"header must be {{\"key\": name, \"query\"?: text}}, got {header!r}")
        fields["header"] = HeaderFilter(key.lower(), query or None)
    if "scriptVersion" in found:
        if not isinstance(found["scriptVersion"], str) or not found["scriptVersion"]:
            raise errors.invalid_tail(f"scriptVersion must be a version id, got {found['scriptVersion']!r}")
        fields["script_version"] = found["scriptVersion"]
    return TailFilters(**fields)
