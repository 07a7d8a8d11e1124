"""The drill record: what the journal (``journal.py``) writes of one drill (DESIGN.md, "The drill runner").

Every phase is recorded with start, end, outcome and detail. The record store writes it to disk when
the drill starts (status "running") and after every phase, so a drill that is killed leaves a record
with every finished phase, which the next drill finds and marks "interrupted". When it ends, one line
is appended to the history (``reports/history/drills.jsonl``), which is never rewritten.
"""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ..atomic_file import write_atomically
from ..config import runbook_minutes
from ..measures import TIME_TO_DETECT, TIME_TO_ROLLBACK, TOTAL_RECOVERY, Measure

RUNNING, PASSED, FAILED, INTERRUPTED, ERROR = "running", "passed", "failed", "interrupted", "error"


T = TypeVar("T")


def from_json(cls: type[T], data: Any) -> T:
    """A record (a dataclass) from its JSON object: the fields it knows, nested records typed as well. A
    field missing from an older or torn record takes its default."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    return cls(**{f.name: _typed(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


def _typed(hint: Any, value: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _typed(inner[0], value) if len(inner) == 1 else value
    if origin is list and args and is_dataclass(args[0]):
        return [from_json(args[0], item) for item in value]
    if isinstance(hint, type) and is_dataclass(hint):
        return from_json(hint, value)
    return value


def utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class PhaseRecord:
    name: str
    started_at: float
    ended_at: float | None = None
    outcome: str = RUNNING  # ok | failed | skipped | interrupted | running
    detail: str = ""

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass
class Measures:
    """TTD, TTR and total recovery, in seconds at the run's time scale, with their budgets."""

    time_to_detect_s: float | None = None
    time_to_rollback_s: float | None = None
    total_recovery_s: float | None = None
    budget_detect_s: float = 0.0
    budget_rollback_s: float = 0.0
    budget_total_s: float = 0.0
    time_scale: float = 1.0

    def runbook_minutes(self, seconds: float | None) -> float | None:
        return None if seconds is None else runbook_minutes(seconds, self.time_scale)

    def each(self) -> tuple[Measure, Measure, Measure]:
        """The three measures, each against its budget (measures.py: the one model of them)."""
        return tuple(Measure(name, short, value, budget, self.time_scale, phase)  # type: ignore[return-value]
                     for (name, short, phase), value, budget in (
                         (TIME_TO_DETECT, self.time_to_detect_s, self.budget_detect_s),
                         (TIME_TO_ROLLBACK, self.time_to_rollback_s, self.budget_rollback_s),
                         (TOTAL_RECOVERY, self.total_recovery_s, self.budget_total_s)))

    def over_budget(self) -> list[str]:
        """The measures over their budget, as sentences naming the slow phase."""
        return [m.over_budget_sentence() for m in self.each() if m.over_budget]


@dataclass
class VersionRef:
    """A version of the worker: its id and its ``workers/tag``."""

    id: str
    tag: str | None = None


@dataclass
class BadVersionRef(VersionRef):
    """The drill's test change: the version carrying FAULT_PROFILE, its commit (a synthetic worker's)."""

    commit: str | None = None
    fault_profile: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollbackStepRecord:
    name: str
    outcome: str
    detail: str = ""
    duration_s: float = 0.0


@dataclass
class RollbackRecord:
    """What the rollback method did (methods.py), step by step."""

    method: str
    method_id: str
    version_id: str
    version_tag: str | None = None
    deployment_id: str | None = None
    duration_s: float = 0.0
    steps: list[RollbackStepRecord] = field(default_factory=list)


@dataclass
class ApprovalRecord:
    """Who granted approval for an approval-required trigger, when, and for what."""

    approver: str
    granted_at: float
    reason: str = ""


@dataclass
class ChecklistRecord:
    item: str  # the runbook's words
    tick: str  # yes | no | unknown
    sentence: str = ""


@dataclass
class TriggerRecord:
    id: str
    name: str
    table: str  # immediate | approval
    fires: bool
    sentence: str = ""
    detected_after_s: float | None = None  # this trigger's time to detect: the fault live -> its first confirmation
    expected: bool = False  # the scenario names it as a trigger the drill must confirm


@dataclass
class CheckRecord:
    check: str
    verdict: str  # PASS | FAIL | INCONCLUSIVE | ERROR
    sentence: str = ""


@dataclass
class MessageRecord:
    """A Slack message or status page update, as rendered and as posted (or why not)."""

    channel: str
    kind: str
    text: str
    at: str
    posted: str = ""


@dataclass
class SeriesPoint:
    """The drill's signals over one interval, for the report's timeline (seconds since fault live)."""

    t: float
    requests: int = 0
    error_rate: float | None = None
    server_error_rate: float | None = None
    p95_ms: float | None = None
    ws_failure_rate: float | None = None


@dataclass
class DrillRecord:
    drill_id: str
    scenario: str
    scenario_description: str
    method: str
    target: str
    environment: str
    time_scale: float
    seed: int
    started_at: float
    status: str = RUNNING
    ended_at: float | None = None
    expected_decision: str = ""
    decision: str | None = None
    decision_sentence: str = ""
    decision_path: list[str] = field(default_factory=list)
    checklist: list[ChecklistRecord] = field(default_factory=list)
    triggers: list[TriggerRecord] = field(default_factory=list)
    approval: ApprovalRecord | None = None
    known_stable: VersionRef | None = None
    bad_version: BadVersionRef | None = None
    serving_after: VersionRef | None = None
    rollback: RollbackRecord | None = None
    wrangler_command: str | None = None
    verification: list[CheckRecord] = field(default_factory=list)
    phases: list[PhaseRecord] = field(default_factory=list)
    markers: dict[str, float] = field(default_factory=dict)  # fault live, detected, decided, ...
    measures: Measures = field(default_factory=Measures)
    series: list[SeriesPoint] = field(default_factory=list)  # per-interval signals for the timeline
    messages: list[MessageRecord] = field(default_factory=list)  # Slack and status page, as sent
    healed: list[str] = field(default_factory=list)  # what preflight or cleanup had to repair
    artifacts: dict[str, str] = field(default_factory=dict)  # tail logs, post-mortem
    failure: str = ""

    @classmethod
    def from_json(cls, data: Any) -> "DrillRecord":
        """A record as ``as_json`` wrote it (``reports/drills/<id>.json``)."""
        return from_json(cls, data)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_utc"], data["ended_utc"] = utc(self.started_at), utc(self.ended_at)
        data["markers_utc"] = {k: utc(v) for k, v in self.markers.items()}
        return data

    def summary(self) -> dict[str, Any]:
        """One history line: enough to draw the trend of past drills."""
        m = self.measures
        return {
            "drill_id": self.drill_id, "started_utc": utc(self.started_at), "scenario": self.scenario,
            "method": self.method, "target": self.target, "status": self.status, "decision": self.decision,
            "expected_decision": self.expected_decision, "time_scale": self.time_scale,
            "time_to_detect_s": m.time_to_detect_s, "time_to_rollback_s": m.time_to_rollback_s,
            "total_recovery_s": m.total_recovery_s, "budget_detect_s": m.budget_detect_s,
            "budget_rollback_s": m.budget_rollback_s, "budget_total_s": m.budget_total_s,
            "time_to_detect_min": m.runbook_minutes(m.time_to_detect_s),
            "time_to_rollback_min": m.runbook_minutes(m.time_to_rollback_s),
            "total_recovery_min": m.runbook_minutes(m.total_recovery_s),
            "verified_version_id": self.serving_after.id if self.serving_after and self.status == PASSED else None,
        }


class RecordStore:
    """``reports/drills/<id>.json`` per drill and ``reports/history/drills.jsonl`` (append only)."""

    def __init__(self, reports: Path) -> None:
        self.drills = reports / "drills"
        self.history = reports / "history" / "drills.jsonl"

    def save(self, record: DrillRecord) -> Path:
        path = self.drills / f"{record.drill_id}.json"
        write_atomically(path, json.dumps(record.as_json(), indent=2, default=str))
        return path

    def append_history(self, record: DrillRecord) -> None:
        self.history.parent.mkdir(parents=True, exist_ok=True)
        with self.history.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record.summary(), default=str) + "\n")

    def history_lines(self) -> list[dict[str, Any]]:
        if not self.history.exists():
            return []
        lines = []
        for raw in self.history.read_text("utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a torn last line of a killed drill is skipped, never rewritten
        return lines

    def mark_abandoned(self, target: str) -> list[str]:
        """Records of this target still "running" belong to drills that died: mark them interrupted."""
        found = []
        if not self.drills.exists():
            return found
        for path in sorted(self.drills.glob("*.json")):
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("status") == RUNNING and data.get("target") == target:
                data["status"] = INTERRUPTED
                data["failure"] = (data.get("failure") or "") + " the drill died before it finished; the next " \
                                                                 "drill found this record and healed the target."
                write_atomically(path, json.dumps(data, indent=2, default=str))
                found.append(data["drill_id"])
        return found
