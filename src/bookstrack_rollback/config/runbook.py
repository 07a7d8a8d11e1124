"""The runbook's numbers (``runbook.toml``) as typed, immutable settings.

Every threshold, window and budget of ROLLBACK_PROCEDURE.md lives in the TOML file; nothing in the
code repeats them. Durations stay in the runbook's units here; :meth:`Runbook.scaled` turns runbook
minutes into seconds at a time scale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

DEFAULT_RUNBOOK = "runbook.toml"


@dataclass(frozen=True)
class Statistics:
    confidence: float
    min_samples: int


@dataclass(frozen=True)
class ImmediateTriggers:
    error_rate_above: float
    server_error_rate_above: float
    health_check_fails: bool
    websocket_failure_rate_above: float
    data_loss_any: bool


@dataclass(frozen=True)
class ApprovalTriggers:
    error_rate_from: float
    error_rate_to: float
    p95_latency_above_s: float
    cache_hit_rate_below: float
    provider_timeouts_any: bool
    provider_empty_share_above: float


@dataclass(frozen=True)
class Triggers:
    post_deploy_window_min: float
    immediate: ImmediateTriggers
    approval: ApprovalTriggers


@dataclass(frozen=True)
class Checklist:
    not_transient_min: float
    deployment_related_window_min: float
    error_history_window_min: float


@dataclass(frozen=True)
class Method:
    expected_min: tuple[float, float]
    downtime_max_s: float


@dataclass(frozen=True)
class Methods:
    wrangler_rollback: Method
    git_revert: Method
    emergency_deploy: Method


@dataclass(frozen=True)
class Verification:
    health_status: str
    error_rate_window_min: float
    error_rate_below: float
    response_time_window_min: float
    p95_below_s: float
    cache_hit_rate_above: float
    cache_query_window_min: float
    tail_monitor_min: float


@dataclass(frozen=True)
class Communications:
    rollback_eta_min: float
    postmortem_within_h: float
    slack_channels: tuple[str, ...]
    status_page_states: tuple[str, ...]


@dataclass(frozen=True)
class PostRollback:
    immediate_within_h: float
    short_term_within_h: float
    long_term_within_days: float


@dataclass(frozen=True)
class Platform:
    deployments_retained: int
    rollbackable_versions: int


@dataclass(frozen=True)
class Drill:
    time_to_detect_budget_min: float
    time_to_rollback_budget_min: float
    total_recovery_budget_min: float
    every_months: int


@dataclass(frozen=True)
class Runbook:
    statistics: Statistics
    triggers: Triggers
    checklist: Checklist
    methods: Methods
    verification: Verification
    communications: Communications
    post_rollback: PostRollback
    platform: Platform
    drill: Drill
    source: str = DEFAULT_RUNBOOK


T = TypeVar("T")


def _build(cls: type[T], data: Any, where: str, source: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    names = {f.name for f in fields(cls)} - {"source"}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        place = f"in [{where}]" if where else "at the top level"
        raise ConfigError(f"{source}: unknown key(s) {unknown} {place}; expected {sorted(names)}")
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name == "source":
            continue
        key = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            raise ConfigError(f"{source}: missing {key}")
        kwargs[f.name] = _coerce(f.type, data[f.name], key, source)
    return cls(**kwargs)


_NESTED: dict[str, type] = {}


def _coerce(annotation: Any, value: Any, key: str, source: str) -> Any:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if kind in _NESTED:
        return _build(_NESTED[kind], value, key, source)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{source}: {key} must be a non-negative number, got {value!r}")
        return float(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{source}: {key} must be a non-negative integer, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
        return value
    if kind == "tuple[float, float]":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or value[0] > value[1]):
            raise ConfigError(f"{source}: {key} must be [low, high] minutes, got {value!r}")
        return (float(value[0]), float(value[1]))
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: {key} must be a list of strings, got {value!r}")
        return tuple(value)
    raise AssertionError(f"no coercion for {kind} ({key})")


for _cls in (Statistics, ImmediateTriggers, ApprovalTriggers, Triggers, Checklist, Method, Methods,
             Verification, Communications, PostRollback, Platform, Drill):
    _NESTED[_cls.__name__] = _cls


def _validate(runbook: Runbook) -> None:
    s, t = runbook.statistics, runbook.triggers
    if not 0.5 <= s.confidence < 1:
        raise ConfigError(f"{runbook.source}: statistics.confidence must be in [0.5, 1), got {s.confidence}")
    for key, value in (
        ("triggers.immediate.error_rate_above", t.immediate.error_rate_above),
        ("triggers.immediate.server_error_rate_above", t.immediate.server_error_rate_above),
        ("triggers.immediate.websocket_failure_rate_above", t.immediate.websocket_failure_rate_above),
        ("triggers.approval.error_rate_from", t.approval.error_rate_from),
        ("triggers.approval.error_rate_to", t.approval.error_rate_to),
        ("triggers.approval.cache_hit_rate_below", t.approval.cache_hit_rate_below),
        ("triggers.approval.provider_empty_share_above", t.approval.provider_empty_share_above),
        ("verification.error_rate_below", runbook.verification.error_rate_below),
        ("verification.cache_hit_rate_above", runbook.verification.cache_hit_rate_above),
    ):
        if not 0 <= value <= 1:
            raise ConfigError(f"{runbook.source}: {key} is a fraction from 0 to 1, got {value}")
    if t.approval.error_rate_from > t.approval.error_rate_to:
        raise ConfigError(f"{runbook.source}: triggers.approval.error_rate_from must not exceed error_rate_to")
    d = runbook.drill
    if d.total_recovery_budget_min < max(d.time_to_detect_budget_min, d.time_to_rollback_budget_min):
        raise ConfigError(f"{runbook.source}: drill.total_recovery_budget_min is shorter than a phase budget")


def parse_runbook(text: str, source: str) -> Runbook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    data = dict(data)
    data.pop("source", None)
    runbook = _build(Runbook, data, "", source)
    runbook = Runbook(**{f.name: getattr(runbook, f.name) for f in fields(Runbook) if f.name != "source"}, source=source)
    _validate(runbook)
    return runbook


def load_runbook(path: str | Path | None = None) -> Runbook:
    """The packaged ``runbook.toml``, or the file at ``path``."""
    if path is None:
        text = resources.files("bookstrack_rollback").joinpath(DEFAULT_RUNBOOK).read_text("utf-8")
        return parse_runbook(text, f"<package>/{DEFAULT_RUNBOOK}")
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the runbook file {file}: {exc.strerror or exc}") from exc
    return parse_runbook(text, str(file))
