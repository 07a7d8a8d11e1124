"""Which drill records form a run (the records one report is about), and the history up to it.

Drill records carry no run id, so a run is found from the records themselves. **The rule**: sort the
records of ``reports/drills/`` by ``started_at``; a record starts a new run when

- it started more than ``gap_s`` seconds (default 120) after every earlier record of the current run
  ended (a pytest session runs its drills back to back: one drill's cleanup is followed within
  seconds by the next drill's preflight), or
- its (scenario, rollback method) pair already occurred in the current run (one ``make drill``
  drills each pair once; running the same drill again is a new run).

The latest run is the last block: the records written by the most recent pytest session. A run's id
is the UTC start of its first drill, in the drill ids' format (``20261129T154027Z``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..drill.record import DrillRecord

DEFAULT_GAP_S = 120.0


@dataclass(frozen=True)
class DrillRun:
    """The records of one run, oldest first."""

    run_id: str
    records: tuple[DrillRecord, ...]

    @property
    def started_at(self) -> float:
        return min(r.started_at for r in self.records)

    @property
    def ended_at(self) -> float:
        return max(_end(r) for r in self.records)


def run_id_at(epoch: float) -> str:
    """A run id from a time: the UTC timestamp in the drill ids' format."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _end(record: DrillRecord) -> float:
    return record.ended_at or record.started_at


def load_records(reports: Path) -> list[DrillRecord]:
    """Every readable drill record of ``reports/drills/`` (unreadable or torn files are skipped)."""
    records = []
    for path in sorted((reports / "drills").glob("*.json")):
        try:
            records.append(DrillRecord.from_json(json.loads(path.read_text("utf-8"))))
        except (OSError, UnicodeDecodeError, ValueError, TypeError):  # unreadable, torn, or not a drill record
            continue
    return sorted(records, key=lambda r: (r.started_at, r.drill_id))


def group_runs(records: Iterable[DrillRecord], gap_s: float = DEFAULT_GAP_S) -> list[DrillRun]:
    """The records split into runs by the module's rule, oldest run first."""
    runs: list[list[DrillRecord]] = []
    for record in sorted(records, key=lambda r: (r.started_at, r.drill_id)):
        current = runs[-1] if runs else None
        if current is not None:
            latest_end = max(_end(r) for r in current)
            pairs = {(r.scenario, r.method) for r in current}
            if record.started_at - latest_end <= gap_s and (record.scenario, record.method) not in pairs:
                current.append(record)
                continue
        runs.append([record])
    return [DrillRun(run_id_at(min(r.started_at for r in run)), tuple(run)) for run in runs]


def parse_since(text: str) -> float:
    """An epoch from ``text``: seconds since 1970, or an ISO 8601 time (naive times are UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--since expects an ISO 8601 time (2026-11-29T15:40:00Z) or epoch seconds, "
                         f"got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def select_since(records: Iterable[DrillRecord], since: float) -> DrillRun:
    """The records started at or after ``since``, as one run."""
    chosen = tuple(r for r in records if r.started_at >= since)
    if not chosen:
        raise LookupError(f"no drill record started at or after {run_id_at(since)}")
    return DrillRun(run_id_at(min(r.started_at for r in chosen)), chosen)


def select_ids(records: Iterable[DrillRecord], ids: Iterable[str]) -> DrillRun:
    """The records named by drill id (or by the file name ``<id>.json``), as one run."""
    by_id = {r.drill_id: r for r in records}
    wanted = [Path(i).name.removesuffix(".json") for i in ids]
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise LookupError(f"no drill record with id {', '.join(missing)} (known: {len(by_id)} records)")
    chosen = tuple(sorted((by_id[i] for i in dict.fromkeys(wanted)), key=lambda r: r.started_at))
    return DrillRun(run_id_at(min(r.started_at for r in chosen)), chosen)


def history_until(history: Iterable[Mapping[str, Any]], run: DrillRun) -> list[dict[str, Any]]:
    """History lines of drills that started no later than the run's last drill (an old run's report
    shows the trend as it was then). Lines without a start time are kept."""
    last = max(r.started_at for r in run.records)
    kept = []
    for line in history:
        started = line.get("started_utc")
        try:
            at = datetime.fromisoformat(str(started).replace("Z", "+00:00")).timestamp() if started else None
        except ValueError:
            at = None
        if at is None or at <= last + 1e-3:
            kept.append(dict(line))
    return kept
