"""Targets: where the suite points (the embedded staging, the real staging or production, or a URL).

``targets.toml`` names the targets; the command line and the environment override single values.
Precedence for every value: command line > environment > file > default. The Cloudflare token and
account id come only from the environment (``CLOUDFLARE_API_TOKEN``, ``CLOUDFLARE_ACCOUNT_ID``), or,
for the embedded staging, from the staging itself.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .secret import Secret

EMBEDDED = "embedded"
DEFAULT_TIME_SCALE_EMBEDDED = 0.02
ENV_TARGET = "BOOKSTRACK_TARGET"
ENV_TIME_SCALE = "BOOKSTRACK_TIME_SCALE"
ENV_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_ACCOUNT = "CLOUDFLARE_ACCOUNT_ID"
ENVIRONMENTS = ("staging", "production", "unknown")
DEFAULT_MAX_PROBE_RATE = 2.0  # a target nobody described gets the polite rate production gets
EMBEDDED_MAX_PROBE_RATE = 500.0


@dataclass(frozen=True)
class Datasets:
    performance: str = "books_api_performance"
    cache: str = "books_api_cache_metrics"


@dataclass(frozen=True)
class Target:
    """One resolved target. For the embedded staging the URLs are filled in once it has started."""

    name: str
    environment: str
    base_url: str | None
    cloudflare_api_url: str | None
    account_id: str | None
    worker: str | None
    token: Secret
    kv_namespace_id: str | None
    datasets: Datasets
    time_scale: float
    embedded: bool
    source: str
    # what verification needs to know about this target
    known_stable: str | None = None  # tag or version id of the last known stable version (a baseline)
    canaries: tuple[tuple[str, str], ...] = ()  # KV keys and the values they must keep
    request_ws_token: bool = False  # may verify create an enrichment job to get a socket token?
    analytics_lag_s: float = 30.0  # how long a data point takes to show in Analytics Engine SQL
    max_probe_rate: float = DEFAULT_MAX_PROBE_RATE  # the suite never probes this target faster (requests/s)
    # drills deploy a small synthetic worker (its own git repository): only for emulated targets
    synthetic_worker: bool = False
    # that repository starts from the known stable version's own code and bindings, not a placeholder
    # (the embedded staging running the code in workerd)
    repo_from_stable_code: bool = False

    @property
    def has_cloudflare(self) -> bool:
        return bool(self.cloudflare_api_url and self.account_id and self.worker and self.token)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def describe(self) -> str:
        where = self.base_url or "(not started)"
        kind = "embedded staging" if self.embedded else f"{self.environment} target {self.name!r}"
        cloudflare = (
            f"Cloudflare API {self.cloudflare_api_url}, worker {self.worker}"
            if self.has_cloudflare
            else "no Cloudflare API access (deployments, analytics and KV checks will be ERROR)"
        )
        return f"{kind} at {where}; {cloudflare}"

    def bound(self, **values: Any) -> "Target":
        return replace(self, **values)


@dataclass(frozen=True)
class TargetOverrides:
    """Single values from the command line (None: not given)."""

    base_url: str | None = None
    cloudflare_api_url: str | None = None
    time_scale: float | None = None


def _check_url(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a URL string, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{source}: {key} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _check_scale(value: Any, key: str, source: str) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not 0 < scale <= 10:
        raise ConfigError(f"{source}: {key} must be greater than 0 and at most 10, got {value!r}")
    return scale


def load_targets(path: str | Path | None = None) -> tuple[dict[str, dict[str, Any]], str, str]:
    """The target table: (entries by name, default name, source description)."""
    if path is None:
        local = Path("targets.toml")
        if local.is_file():
            path = local
    if path is None:
        text = resources.files("bookstrack_rollback").joinpath("targets.toml").read_text("utf-8")
        source = "<package>/targets.toml"
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the targets file {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    entries = data.get("targets", {})
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise ConfigError(f"{source}: [targets.NAME] tables expected")
    default = data.get("default", EMBEDDED)
    if default != EMBEDDED and default not in entries:
        raise ConfigError(f"{source}: default target {default!r} is not defined")
    return entries, default, source


_ENTRY_KEYS = {"base_url", "cloudflare_api_url", "worker", "environment", "kv_namespace_id",
               "datasets", "time_scale", "account_id", "known_stable", "canaries", "request_ws_token",
               "analytics_lag_s", "synthetic_worker", "max_probe_rate"}
_EMBEDDED_KEYS = {"time_scale", "known_stable", "canaries", "request_ws_token", "analytics_lag_s", "max_probe_rate"}


def _verification_values(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The optional keys that say what verification needs to know about a target."""
    values: dict[str, Any] = {}
    if "known_stable" in entry:
        if not isinstance(entry["known_stable"], str) or not entry["known_stable"]:
            raise ConfigError(f"{where}: known_stable must be a version tag or id, got {entry['known_stable']!r}")
        values["known_stable"] = entry["known_stable"]
    if "canaries" in entry:
        canaries = entry["canaries"]
        if not isinstance(canaries, dict) or not all(isinstance(v, str) for v in canaries.values()):
            raise ConfigError(f"{where}: canaries must be a table of KV key = expected value (strings)")
        values["canaries"] = tuple(sorted(canaries.items()))
    if "request_ws_token" in entry:
        if not isinstance(entry["request_ws_token"], bool):
            raise ConfigError(f"{where}: request_ws_token must be true or false")
        values["request_ws_token"] = entry["request_ws_token"]
    if "synthetic_worker" in entry:
        if not isinstance(entry["synthetic_worker"], bool):
            raise ConfigError(f"{where}: synthetic_worker must be true or false")
        values["synthetic_worker"] = entry["synthetic_worker"]
    if "analytics_lag_s" in entry:
        lag = entry["analytics_lag_s"]
        if isinstance(lag, bool) or not isinstance(lag, (int, float)) or not 0 <= lag <= 600:
            raise ConfigError(f"{where}: analytics_lag_s must be 0 to 600 seconds, got {lag!r}")
        values["analytics_lag_s"] = float(lag)
    if "max_probe_rate" in entry:
        rate = entry["max_probe_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1000:
            raise ConfigError(f"{where}: max_probe_rate must be above 0 and at most 1000 requests per second, "
                              f"got {rate!r}")
        values["max_probe_rate"] = float(rate)
    return values


def _from_entry(name: str, entry: dict[str, Any], source: str) -> Target:
    where = f"{source} [targets.{name}]"
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected {sorted(_ENTRY_KEYS)}")
    if "base_url" not in entry:
        raise ConfigError(f"{where}: base_url is required")
    environment = entry.get("environment", "unknown")
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"{where}: environment must be one of {list(ENVIRONMENTS)}, got {environment!r}")
    datasets_raw = entry.get("datasets", {})
    if not isinstance(datasets_raw, dict) or not set(datasets_raw) <= {"performance", "cache"}:
        raise ConfigError(f"{where}: datasets must be a table with performance and/or cache")
    return Target(
        name=name,
        environment=environment,
        base_url=_check_url(entry["base_url"], "base_url", where),
        cloudflare_api_url=(
            _check_url(entry["cloudflare_api_url"], "cloudflare_api_url", where)
            if "cloudflare_api_url" in entry else None
        ),
        account_id=entry.get("account_id"),
        worker=entry.get("worker"),
        token=Secret(""),
        kv_namespace_id=entry.get("kv_namespace_id") or None,
        datasets=Datasets(**datasets_raw),
        time_scale=_check_scale(entry.get("time_scale", 1.0), "time_scale", where),
        embedded=False,
        source=where,
        **_verification_values(entry, where),
    )


def resolve_target(
    spec: str | None,
    overrides: TargetOverrides = TargetOverrides(),
    *,
    env: Mapping[str, str] | None = None,
    targets_file: str | Path | None = None,
) -> Target:
    """Resolve ``--target`` (a name from targets.toml, ``embedded``, or an http(s) URL)."""
    env = os.environ if env is None else env
    entries, default, source = load_targets(targets_file)
    chosen_from = "--target"
    if spec is None and env.get(ENV_TARGET):
        spec, chosen_from = env[ENV_TARGET], ENV_TARGET
    if spec is None:
        spec, chosen_from = default, f"{source} default"
    if spec == EMBEDDED:
        target = Target(
            name=EMBEDDED, environment="staging", base_url=None, cloudflare_api_url=None,
            account_id=None, worker=None, token=Secret(""), kv_namespace_id=None,
            datasets=Datasets(), time_scale=DEFAULT_TIME_SCALE_EMBEDDED, embedded=True,
            source="the embedded staging, started by the suite", request_ws_token=True, analytics_lag_s=0.0,
            synthetic_worker=True, max_probe_rate=EMBEDDED_MAX_PROBE_RATE,
        )
        entry = entries.get(EMBEDDED, {})
        unknown = sorted(set(entry) - _EMBEDDED_KEYS)
        if unknown:
            raise ConfigError(f"{source} [targets.embedded]: unknown key(s) {unknown}; expected {sorted(_EMBEDDED_KEYS)}")
        if "time_scale" in entry:
            target = target.bound(time_scale=_check_scale(entry["time_scale"], "time_scale", source))
        target = target.bound(**_verification_values(entry, f"{source} [targets.embedded]"))
    elif spec in entries:
        target = _from_entry(spec, entries[spec], source)
    elif spec.startswith(("http://", "https://")):
        target = Target(
            name=spec, environment="unknown", base_url=_check_url(spec, chosen_from, chosen_from),
            cloudflare_api_url=None, account_id=None, worker=None, token=Secret(""),
            kv_namespace_id=None, datasets=Datasets(), time_scale=1.0, embedded=False, source=chosen_from,
        )
    else:
        known = sorted({EMBEDDED, *entries})
        raise ConfigError(f"{chosen_from}: unknown target {spec!r}; use one of {known} or an http(s) URL")

    changes: dict[str, Any] = {}
    if not target.embedded:
        if env.get(ENV_TOKEN):
            changes["token"] = Secret(env[ENV_TOKEN])
        if env.get(ENV_ACCOUNT):
            changes["account_id"] = env[ENV_ACCOUNT]
    if env.get(ENV_TIME_SCALE):
        changes["time_scale"] = _check_scale(env[ENV_TIME_SCALE], ENV_TIME_SCALE, "environment")
    if overrides.time_scale is not None:
        changes["time_scale"] = _check_scale(overrides.time_scale, "--time-scale", "command line")
    if overrides.base_url is not None:
        if target.embedded:
            raise ConfigError("--base-url cannot be combined with the embedded staging; pass --target URL instead")
        changes["base_url"] = _check_url(overrides.base_url, "--base-url", "command line")
    if overrides.cloudflare_api_url is not None:
        if target.embedded:
            raise ConfigError("--cloudflare-api-url cannot be combined with the embedded staging")
        changes["cloudflare_api_url"] = _check_url(overrides.cloudflare_api_url, "--cloudflare-api-url", "command line")
    return target.bound(**changes) if changes else target
