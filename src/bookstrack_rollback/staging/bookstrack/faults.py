"""Fault injection: small composable units built from a fault profile (DESIGN.md, "Faults").

The profile in force for one request is the serving version's ``FAULT_PROFILE`` (deployed with a
test change, gone at once when a rollback deploys a version without it) composed with the runtime
profile (the KV flag ``base.RUNTIME_FAULT_KEY``, which no rollback touches); a request of the
staging's own users (users.py) also has the users' ``fault``, or only that one when they are
exempt. Each profile stops by itself ``duration_s`` after it became active (the deployment that put
its version in service, or the moment the flag was set). A version whose ``FAULT_PROFILE`` cannot
be parsed crashes on every request, as a worker whose start-up code throws does; so does an
unparsable runtime flag.

Units and what they touch (each a tiny class; nothing sleeps here, every draw is from the staging's
seeded random source)::

    Outage              every request, /health and the socket included -> 500 "Error 1101" HTML
    ErrorInjection      API requests (searches, batch) -> 500 INTERNAL_ERROR or 400 INVALID_QUERY
    InjectedLatency     a log-normal delay per endpoint ("*": the API endpoints)
    WsHandshakeFailure  /ws/progress upgrades -> 500
    CacheOff            the edge cache never hits
    ProviderTimeout     searches -> 200, empty lists, provider "none", after provider_timeout_ms
    DataLoss            own-KV keys deleted once, when the profile becomes active
    HealthConstant      /health answers production's constant shape
    TelemetryQuirk      books_api_performance written as production writes it (REALITY.md)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ...faults import (
    API_ENDPOINTS,
    FaultProfile,
    FaultProfileError,
    Latency,
    compose_profiles,
    effective_latency,
    parse_fault_profile,
)
from ..base import RUNTIME_FAULT_KEY, Clock, SeededRandom
from ..cloudflare.kv import KVStore
from ..cloudflare.workers import Deployment, Version, WorkersModel
from ..users_traffic import UsersTraffic

SEARCH_ENDPOINTS = ("title", "isbn", "advanced")
_Z95 = 1.6448536269514722  # the standard normal's 95th percentile


@dataclass(frozen=True)
class InjectedError:
    """An error answer an ErrorInjection unit decided on."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class PerformanceRow:
    """One ``books_api_performance`` data point before it is written (contract, "Telemetry")."""

    path: str
    error_code: str
    cache_status: str  # HIT | MISS
    status: float
    processing_ms: float


def draw_latency_ms(latency: Latency, rng: SeededRandom) -> float:
    """A log-normal draw whose median is ``p50_ms`` and 95th percentile ``p95_ms``."""
    if latency.p50_ms <= 0.0:
        return 0.0
    if latency.p95_ms <= latency.p50_ms:
        return latency.p50_ms
    sigma = (math.log(latency.p95_ms) - math.log(latency.p50_ms)) / _Z95
    return rng.lognormvariate(math.log(latency.p50_ms), sigma)


class FaultUnit:
    """A fault's hooks; the defaults do nothing."""

    def crash_message(self) -> str | None:
        return None

    def latency_ms(self, endpoint: str, rng: SeededRandom) -> float:
        return 0.0

    def injected_error(self, endpoint: str, rng: SeededRandom) -> InjectedError | None:
        return None

    def handshake_fails(self, rng: SeededRandom) -> bool:
        return False

    def cache_enabled(self) -> bool:
        return True

    def provider_timeout_ms(self, endpoint: str, rng: SeededRandom) -> float | None:
        return None

    def health_constant(self) -> bool:
        return False

    def performance_row(self, row: PerformanceRow) -> PerformanceRow:
        return row

    def on_activate(self, kv: KVStore) -> None:
        return None


@dataclass(frozen=True)
class Outage(FaultUnit):
    message: str = "Worker threw exception (injected outage)"

    def crash_message(self) -> str | None:
        return self.message


@dataclass(frozen=True)
class ErrorInjection(FaultUnit):
    rate: float
    share_5xx: float

    def injected_error(self, endpoint: str, rng: SeededRandom) -> InjectedError | None:
        if endpoint not in API_ENDPOINTS or rng.random() >= self.rate:
            return None
        if rng.random() < self.share_5xx:
            return InjectedError(500, "INTERNAL_ERROR", "Internal server error")
        return InjectedError(400, "INVALID_QUERY", "Invalid query parameters")


@dataclass(frozen=True)
class InjectedLatency(FaultUnit):
    profile: FaultProfile

    def latency_ms(self, endpoint: str, rng: SeededRandom) -> float:
        latency = effective_latency(self.profile, endpoint)
        return draw_latency_ms(latency, rng) if latency else 0.0


@dataclass(frozen=True)
class WsHandshakeFailure(FaultUnit):
    rate: float

    def handshake_fails(self, rng: SeededRandom) -> bool:
        return rng.random() < self.rate


@dataclass(frozen=True)
class CacheOff(FaultUnit):
    def cache_enabled(self) -> bool:
        return False


@dataclass(frozen=True)
class ProviderTimeout(FaultUnit):
    rate: float
    timeout_ms: float

    def provider_timeout_ms(self, endpoint: str, rng: SeededRandom) -> float | None:
        if endpoint in SEARCH_ENDPOINTS and rng.random() < self.rate:
            return self.timeout_ms
        return None


@dataclass(frozen=True)
class DataLoss(FaultUnit):
    keys: tuple[str, ...]

    def on_activate(self, kv: KVStore) -> None:
        for key in self.keys:
            kv.delete_own(key)


@dataclass(frozen=True)
class HealthConstant(FaultUnit):
    def health_constant(self) -> bool:
        return True


@dataclass(frozen=True)
class TelemetryQuirk(FaultUnit):
    """REALITY.md: blob3 always MISS; double1 500 for every routed request. HTTP answers unchanged."""

    blob3_always_miss: bool
    double1_500: bool

    def performance_row(self, row: PerformanceRow) -> PerformanceRow:
        if self.blob3_always_miss:
            row = replace(row, cache_status="MISS")
        if self.double1_500 and row.error_code != "NOT_FOUND":
            row = replace(row, status=500.0)
        return row


def build_units(profile: FaultProfile) -> tuple[FaultUnit, ...]:
    """The units that act out ``profile``, in the order their draws are made."""
    units: list[FaultUnit] = []
    if profile.outage:
        units.append(Outage())
    if profile.latency:
        units.append(InjectedLatency(profile))
    if profile.error_rate > 0.0:
        units.append(ErrorInjection(profile.error_rate, profile.share_5xx))
    if profile.ws_failure_rate > 0.0:
        units.append(WsHandshakeFailure(profile.ws_failure_rate))
    if profile.cache_off:
        units.append(CacheOff())
    if profile.provider_timeouts > 0.0:
        units.append(ProviderTimeout(profile.provider_timeouts, profile.provider_timeout_ms))
    if profile.data_loss:
        units.append(DataLoss(profile.data_loss))
    if "health_constant" in profile.quirks:
        units.append(HealthConstant())
    if profile.quirks & {"blob3_always_miss", "double1_500"}:
        units.append(TelemetryQuirk("blob3_always_miss" in profile.quirks, "double1_500" in profile.quirks))
    return tuple(units)


@dataclass(frozen=True)
class ActiveFaults:
    """The faults in force for one request: the units of the composed profile."""

    version: Version
    profile: FaultProfile
    units: tuple[FaultUnit, ...] = field(default=())

    def crash_message(self) -> str | None:
        return next((m for u in self.units if (m := u.crash_message())), None)

    def latency_ms(self, endpoint: str, rng: SeededRandom) -> float:
        return max((u.latency_ms(endpoint, rng) for u in self.units), default=0.0)

    def injected_error(self, endpoint: str, rng: SeededRandom) -> InjectedError | None:
        return next((e for u in self.units if (e := u.injected_error(endpoint, rng))), None)

    def handshake_fails(self, rng: SeededRandom) -> bool:
        return any(u.handshake_fails(rng) for u in self.units)

    def cache_enabled(self) -> bool:
        return all(u.cache_enabled() for u in self.units)

    def provider_timeout_ms(self, endpoint: str, rng: SeededRandom) -> float | None:
        return next((t for u in self.units if (t := u.provider_timeout_ms(endpoint, rng)) is not None), None)

    def health_constant(self) -> bool:
        return any(u.health_constant() for u in self.units)

    def performance_row(self, row: PerformanceRow) -> PerformanceRow:
        for unit in self.units:
            row = unit.performance_row(row)
        return row


Parsed = FaultProfile | FaultProfileError


class FaultResolver:
    """Which profile is in force, per request: the serving version's (asked of ``workers``), composed
    with the runtime flag (read from ``kv``)."""

    def __init__(self, clock: Clock, kv: KVStore, workers: WorkersModel) -> None:
        self._clock = clock
        self._kv = kv
        self._workers = workers
        self._by_version: dict[str, Parsed] = {}
        self._runtime_raw: bytes | None = None
        self._runtime: Parsed | None = None
        self._runtime_since = 0.0

    # --- the two sources --------------------------------------------------------------------
    def deployed(self, version: Version) -> Parsed:
        parsed = self._by_version.get(version.id)
        if parsed is None:
            text = version.var("FAULT_PROFILE")
            try:
                parsed = parse_fault_profile(text or "")
            except FaultProfileError as exc:
                parsed = exc
            self._by_version[version.id] = parsed
        return parsed

    def active_since(self, version_id: str) -> float:
        """When the version became active: the oldest deployment of its unbroken run of service."""
        since = self._clock.now()
        for deployment in self._workers.deployments:  # newest first
            if not any(v == version_id for v, _ in deployment.versions):
                break
            since = deployment.created_at
        return since

    def runtime(self) -> tuple[Parsed | None, float]:
        raw = self._kv.get_own(RUNTIME_FAULT_KEY)
        if raw != self._runtime_raw:
            self._activate_runtime(raw)
        return self._runtime, self._runtime_since

    def _activate_runtime(self, raw: bytes | None) -> None:
        self._runtime_raw = raw
        self._runtime_since = self._clock.now()
        if raw is None:
            self._runtime = None
            return
        try:
            self._runtime = parse_fault_profile(raw.decode("utf-8", errors="replace"))
        except FaultProfileError as exc:
            self._runtime = exc
            return
        for unit in build_units(self._runtime):
            unit.on_activate(self._kv)

    # --- per request ------------------------------------------------------------------------
    def for_request(self, users: UsersTraffic | None = None) -> ActiveFaults:
        """The faults of one request; ``users``: the users' traffic when the staging's users sent it.

        Exempt users see only their own ``fault``; the others the active faults composed with it.
        """
        version = self._workers.version_for_request()
        if users is not None and users.exempt:
            return ActiveFaults(version, users.fault, build_units(users.fault))
        now = self._clock.now()
        deployed = self.deployed(version)
        runtime, runtime_since = self.runtime()
        crash = self._crash(deployed, "this version's FAULT_PROFILE") or self._crash(runtime, "the runtime fault flag")
        if crash is not None:
            return ActiveFaults(version, FaultProfile(outage=True, label="crashed"), (Outage(crash),))
        assert isinstance(deployed, FaultProfile)
        profile = FaultProfile()
        if deployed.duration_s is None or not _expired(deployed, self.active_since(version.id), now):
            profile = deployed
        if isinstance(runtime, FaultProfile) and not _expired(runtime, runtime_since, now):
            profile = compose_profiles(profile, runtime)
        if users is not None:
            profile = compose_profiles(profile, users.fault)
        return ActiveFaults(version, profile, build_units(profile))

    @staticmethod
    def _crash(parsed: Parsed | None, where: str) -> str | None:
        if isinstance(parsed, FaultProfileError):
            return f"Worker threw exception: {where} cannot be used: {parsed}"
        return None

    # --- hooks ------------------------------------------------------------------------------
    def on_deployment(self, deployment: Deployment) -> None:
        """Data loss of a deployed profile happens once, when its version enters service."""
        workers = self._workers
        previous = workers.deployments[1].versions if len(workers.deployments) > 1 else []
        was_serving = {version_id for version_id, _ in previous}
        for version_id, _ in deployment.versions:
            version = workers.get_version(version_id)
            if version is None or version_id in was_serving:
                continue
            parsed = self.deployed(version)
            if isinstance(parsed, FaultProfile):
                for unit in build_units(parsed):
                    unit.on_activate(self._kv)

    def on_runtime_fault(self) -> None:
        """The flag was (re)set just now: it becomes active now, even if its text is unchanged."""
        self._activate_runtime(self._kv.get_own(RUNTIME_FAULT_KEY))


def _expired(profile: FaultProfile, since: float, now: float) -> bool:
    return profile.duration_s is not None and now - since >= profile.duration_s
