"""The drill's own listeners: the record store, which saves the record after every phase and appends
the history line at the end, and the post-mortem writer (the notifier is ``notify.Messenger``; the
Allure writer and the terminal's progress line are the pytest plugin's)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ..comms import IncidentFacts, RecoveryFacts, TimelineEntry, render_postmortem
from .journal import DrillListener
from .record import DrillRecord, PhaseRecord, RecordStore


class RecordKeeper(DrillListener):
    """``reports/drills/<id>.json`` written when the drill starts and after every phase, so a drill that
    is killed leaves every finished phase on disk; the history line appended once it has ended."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    async def drill_started(self, record: DrillRecord) -> None:
        self.store.save(record)

    async def phase_ended(self, record: DrillRecord, phase: PhaseRecord) -> None:
        self.store.save(record)

    async def drill_ended(self, record: DrillRecord) -> None:
        self.store.save(record)
        self.store.append_history(record)


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class PostmortemWriter(DrillListener):
    """The post-mortem skeleton ("Long-term: Post-mortem document") once the recovery is verified, its
    timeline from the journal: ``reports/drills/<id>-postmortem.md``."""

    def __init__(self, reports: Path) -> None:
        self.reports = reports

    async def verified(self, record: DrillRecord, facts: IncidentFacts, recovery: RecoveryFacts) -> None:
        timeline = [TimelineEntry(p.name, _moment(p.started_at), _moment(p.ended_at) if p.ended_at else None,
                                  p.outcome, p.detail) for p in record.phases]
        text = render_postmortem(facts, recovery, timeline, record.measures.each(),
                                 resolved_at=datetime.now(timezone.utc))
        path = self.reports / "drills" / f"{record.drill_id}-postmortem.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        record.artifacts["postmortem"] = str(path)
