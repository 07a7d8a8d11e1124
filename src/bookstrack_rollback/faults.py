"""Fault profiles: what a test change (a version's ``FAULT_PROFILE`` variable) or a runtime KV flag
injects into the BooksTrack worker. Data only; the embedded staging applies it, the drill writes it.

A profile is JSON, every field optional (defaults: healthy)::

    {"error_rate": 0.12,          # share of API requests answered with an error
     "share_5xx": 1.0,            # of those, the share that are 500 INTERNAL_ERROR (the rest 400)
     "outage": false,             # every request, /health included, fails as a crashed worker does
     "latency": {"title": {"p50_ms": 300, "p95_ms": 2500}, "*": {"p50_ms": 20, "p95_ms": 60}},
     "ws_failure_rate": 0.0,      # share of /ws/progress handshakes that fail with 500
     "cache_off": false,          # the edge cache never hits
     "provider_timeouts": 0.0,    # share of searches whose providers time out (200, empty, "none")
     "provider_timeout_ms": 3000, # how long such a search takes
     "data_loss": ["canary:1"],   # KV keys deleted when the profile becomes active
     "quirks": ["health_constant", "blob3_always_miss", "double1_500"],   # REALITY.md telemetry
     "duration_s": null,          # the fault stops by itself this long after it became active
     "label": "error spike"}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# The KV key of a runtime fault profile (a fault a rollback does not remove): read by the embedded
# staging natively, and by the real staging worker's drill hook (README).
RUNTIME_FLAG_KEY = "__staging/runtime-fault-profile"

ENDPOINTS = ("health", "title", "isbn", "advanced", "batch", "*")
QUIRKS = {
    "health_constant": "/health answers production's constant version 1.0.0, not the serving tag",
    "blob3_always_miss": "books_api_performance.blob3 is always MISS, even for cache hits",
    "double1_500": "books_api_performance.double1 is 500 for every routed request, successes included",
}


class FaultProfileError(ValueError):
    """A fault profile that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Latency:
    """A log-normal latency distribution given by its median and 95th percentile, in ms."""

    p50_ms: float
    p95_ms: float

    def __post_init__(self) -> None:
        if not (self.p50_ms >= 0 and self.p95_ms >= self.p50_ms and math.isfinite(self.p95_ms)):
            raise FaultProfileError(
                f"latency needs 0 <= p50_ms <= p95_ms, got p50_ms={self.p50_ms}, p95_ms={self.p95_ms}"
            )


@dataclass(frozen=True)
class FaultProfile:
    error_rate: float = 0.0
    share_5xx: float = 1.0
    outage: bool = False
    latency: dict[str, Latency] = field(default_factory=dict)
    ws_failure_rate: float = 0.0
    cache_off: bool = False
    provider_timeouts: float = 0.0
    provider_timeout_ms: float = 3000.0
    data_loss: tuple[str, ...] = ()
    quirks: frozenset[str] = frozenset()
    duration_s: float | None = None
    label: str = ""

    @property
    def is_healthy(self) -> bool:
        return self == FaultProfile(label=self.label)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = {k: {"p50_ms": v.p50_ms, "p95_ms": v.p95_ms} for k, v in self.latency.items()}
        data["data_loss"] = list(self.data_loss)
        data["quirks"] = sorted(self.quirks)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _rate(data: dict[str, Any], name: str) -> float:
    value = data.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise FaultProfileError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise FaultProfileError(f"{name} must be true or false, got {value!r}")
    return value


def profile_from_dict(data: Any) -> FaultProfile:
    if not isinstance(data, dict):
        raise FaultProfileError(f"a fault profile must be a JSON object, got {type(data).__name__}")
    known = set(FaultProfile.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise FaultProfileError(f"unknown fault profile field(s) {unknown}; known: {sorted(known)}")
    latency_raw = data.get("latency", {})
    if not isinstance(latency_raw, dict):
        raise FaultProfileError("latency must be an object of endpoint -> {p50_ms, p95_ms}")
    latency: dict[str, Latency] = {}
    for endpoint, spec in latency_raw.items():
        if endpoint not in ENDPOINTS:
            raise FaultProfileError(f"latency endpoint {endpoint!r} is not one of {list(ENDPOINTS)}")
        if not isinstance(spec, dict) or set(spec) != {"p50_ms", "p95_ms"}:
            raise FaultProfileError(f"latency[{endpoint!r}] must be {{'p50_ms': n, 'p95_ms': n}}, got {spec!r}")
        try:
            latency[endpoint] = Latency(float(spec["p50_ms"]), float(spec["p95_ms"]))
        except (TypeError, ValueError) as exc:
            raise FaultProfileError(f"latency[{endpoint!r}]: {exc}") from exc
    data_loss = data.get("data_loss", [])
    if not isinstance(data_loss, list) or not all(isinstance(k, str) and k for k in data_loss):
        raise FaultProfileError(f"data_loss must be a list of KV key names, got {data_loss!r}")
    quirks = data.get("quirks", [])
    if not isinstance(quirks, list) or not all(q in QUIRKS for q in quirks):
        raise FaultProfileError(f"quirks must be a list drawn from {sorted(QUIRKS)}, got {quirks!r}")
    duration = data.get("duration_s")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0):
        raise FaultProfileError(f"duration_s must be a positive number of seconds or null, got {duration!r}")
    timeout_ms = data.get("provider_timeout_ms", 3000.0)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or timeout_ms < 0:
        raise FaultProfileError(f"provider_timeout_ms must be a non-negative number, got {timeout_ms!r}")
    label = data.get("label", "")
    if not isinstance(label, str):
        raise FaultProfileError(f"label must be a string, got {label!r}")
    return FaultProfile(
        error_rate=_rate(data, "error_rate"),
        share_5xx=_rate(data, "share_5xx") if "share_5xx" in data else 1.0,
        outage=_flag(data, "outage"),
        latency=latency,
        ws_failure_rate=_rate(data, "ws_failure_rate"),
        cache_off=_flag(data, "cache_off"),
        provider_timeouts=_rate(data, "provider_timeouts"),
        provider_timeout_ms=float(timeout_ms),
        data_loss=tuple(data_loss),
        quirks=frozenset(quirks),
        duration_s=float(duration) if duration is not None else None,
        label=label,
    )


def parse_fault_profile(text: str) -> FaultProfile:
    """Parse a ``FAULT_PROFILE`` text; an empty text is the healthy profile."""
    if not text.strip():
        return FaultProfile()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaultProfileError(f"FAULT_PROFILE is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    return profile_from_dict(data)


# --- composition (a deployed profile and the runtime flag act at once) -------------------------
# Searches and the batch endpoint are the "API" endpoints a "*" latency covers; /health is slowed
# only when named, as a slow upstream never slows a worker's constant health answer.
API_ENDPOINTS = ("title", "isbn", "advanced", "batch")


def effective_latency(profile: FaultProfile, endpoint: str) -> Latency | None:
    """The latency ``profile`` injects into ``endpoint``: its own entry, else ``"*"`` for API endpoints."""
    if endpoint in profile.latency:
        return profile.latency[endpoint]
    if endpoint in API_ENDPOINTS:
        return profile.latency.get("*")
    return None


def _independent(a: float, b: float) -> float:
    """The chance that at least one of two independent failures happens."""
    return 1.0 - (1.0 - a) * (1.0 - b)


def compose_profiles(first: FaultProfile, second: FaultProfile) -> FaultProfile:
    """One profile acting as ``first`` and ``second`` together (DESIGN.md, Faults).

    Rates combine as independent failures (``first`` drawn first, so the 5xx share is the share
    of all injected errors that are 500s), booleans OR, latency per endpoint the larger p50 and
    p95, provider timeouts last the longer, data loss and quirks unite. ``duration_s`` is not
    carried: each profile's own expiry is applied before composing.
    """
    label = " + ".join(text for text in (first.label, second.label) if text)
    if first.is_healthy:
        return replace(second, duration_s=None, label=label)
    if second.is_healthy:
        return replace(first, duration_s=None, label=label)
    error_rate = _independent(first.error_rate, second.error_rate)
    if error_rate > 0.0:
        injected_5xx = first.error_rate * first.share_5xx + (1.0 - first.error_rate) * second.error_rate * second.share_5xx
        share_5xx = min(1.0, injected_5xx / error_rate)
    else:
        share_5xx = 1.0
    latency: dict[str, Latency] = {}
    for endpoint in sorted(set(first.latency) | set(second.latency)):
        candidates = [lat for lat in (effective_latency(first, endpoint), effective_latency(second, endpoint)) if lat]
        if endpoint == "*":
            candidates = [lat for lat in (first.latency.get("*"), second.latency.get("*")) if lat]
        latency[endpoint] = Latency(max(c.p50_ms for c in candidates), max(c.p95_ms for c in candidates))
    data_loss = tuple(dict.fromkeys(first.data_loss + second.data_loss))
    timeouts = [p.provider_timeout_ms for p in (first, second) if p.provider_timeouts > 0.0]
    return FaultProfile(
        error_rate=error_rate,
        share_5xx=share_5xx,
        outage=first.outage or second.outage,
        latency=latency,
        ws_failure_rate=_independent(first.ws_failure_rate, second.ws_failure_rate),
        cache_off=first.cache_off or second.cache_off,
        provider_timeouts=_independent(first.provider_timeouts, second.provider_timeouts),
        provider_timeout_ms=max(timeouts) if timeouts else first.provider_timeout_ms,
        data_loss=data_loss,
        quirks=first.quirks | second.quirks,
        duration_s=None,
        label=label,
    )
