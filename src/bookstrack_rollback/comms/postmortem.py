"""The post-mortem skeleton (ROLLBACK_PROCEDURE.md, "Post-Rollback Actions", "Long-term (Within 1 week)":
"Post-mortem document": Timeline of events, Root cause, Impact assessment, Action items, Lessons learned).

What the suite knows is filled in: the timeline (one row per phase of the drill record, or of an
incident's journal), the measured time to detect, time to rollback and total recovery against the
runbook's budgets ("Testing Rollback Procedure": <5, <5 and <10 minutes), the figures before and after
the rollback. What only people know (why the deployment failed, who was affected) is asked for with
the runbook's own questions, in italics, never as a ``{placeholder}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..measures import Measure
from .templates import (
    IncidentFacts,
    RecoveryFacts,
    checked_text,
    checked_time,
    utc_stamp,
)

_DASH = "—"


def duration_text(seconds: float) -> str:
    """4.25 -> '4.2 s'; 210 -> '3 min 30 s'; 5400 -> '1 h 30 min'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60:02d} min"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


@dataclass(frozen=True)
class TimelineEntry:
    """One phase of the timeline: preflight, baseline, inject, detect, decide, roll back, verify..."""

    phase: str
    started: datetime
    ended: datetime | None  # None: the phase had not ended when the document was written
    outcome: str  # "passed", "failed", "interrupted", "ROLLBACK NOW", ...
    detail: str = ""

    def __post_init__(self) -> None:
        checked_text(self.phase, "timeline phase")
        checked_text(self.outcome, f"outcome of phase {self.phase!r}")
        checked_time(self.started, f"start of phase {self.phase!r}")
        if not isinstance(self.detail, str):
            raise TypeError(f"detail of phase {self.phase!r} must be a text, got {self.detail!r}")
        if self.ended is not None:
            checked_time(self.ended, f"end of phase {self.phase!r}")
            if self.ended < self.started:
                raise ValueError(f"phase {self.phase!r} ends ({self.ended.isoformat()}) before it starts "
                                 f"({self.started.isoformat()})")

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started).total_seconds()


def _timeline_table(timeline: Sequence[TimelineEntry]) -> list[str]:
    lines = ["| # | Phase | Started (UTC) | Ended (UTC) | Duration | Outcome | Detail |",
             "|---|---|---|---|---|---|---|"]
    for number, entry in enumerate(timeline, 1):
        started = utc_stamp(entry.started, seconds=True).removesuffix(" UTC")
        ended = _DASH if entry.ended is None else utc_stamp(entry.ended, seconds=True).removesuffix(" UTC")
        duration = _DASH if entry.duration_s is None else duration_text(entry.duration_s)
        lines.append(f"| {number} | {_cell(entry.phase)} | {started} | {ended} | {duration} | "
                     f"{_cell(entry.outcome)} | {_cell(entry.detail) or _DASH} |")
    return lines


def _measure_table(measures: Sequence[Measure]) -> list[str]:
    scaled = measures[0].time_scale != 1.0
    head = "| Measure | Measured | Budget | Within budget |"
    rule = "|---|---|---|---|"
    if scaled:
        head += " Measured (runbook scale) | Budget (runbook scale) |"
        rule += "---|---|"
    lines = [head, rule]
    for measure in measures:
        measured = "not reached" if measure.seconds is None else duration_text(measure.seconds)
        row = (f"| {measure.label} | {measured} | {duration_text(measure.budget_s)} | "
               f"{'yes' if measure.within_budget else 'NO'} |")
        if scaled:
            runbook_measured = ("not reached" if measure.seconds is None
                                else duration_text(measure.seconds / measure.time_scale))
            row += f" {runbook_measured} | {duration_text(measure.budget_s / measure.time_scale)} |"
        lines.append(row)
    return lines


def _verdict(measure: Measure) -> str:
    if measure.seconds is None:
        return f"{measure.label} was not reached (budget {duration_text(measure.budget_s)})."
    word = "within" if measure.within_budget else "over"
    return (f"{measure.label} was {duration_text(measure.seconds)}, {word} its budget of "
            f"{duration_text(measure.budget_s)}.")


def render_postmortem(
    facts: IncidentFacts,
    recovery: RecoveryFacts,
    timeline: Sequence[TimelineEntry],
    measures: Sequence[Measure],
    *,
    resolved_at: datetime,
    written_at: datetime | None = None,
) -> str:
    """The post-mortem document's skeleton in Markdown, with the runbook's five sections."""
    if not timeline:
        raise ValueError("a post-mortem needs at least one timeline entry")
    if [m.short for m in measures] != ["TTD", "TTR", "total"]:
        raise ValueError(f"a post-mortem needs TTD, TTR and total recovery, in that order, got {list(measures)!r}")
    for entry in timeline:
        if not isinstance(entry, TimelineEntry):
            raise TypeError(f"timeline entries must be TimelineEntry, got {entry!r}")
    resolved = utc_stamp(checked_time(resolved_at, "resolved at"))
    written = utc_stamp(checked_time(written_at or datetime.now(timezone.utc), "written at"))
    over = [m for m in measures if not m.within_budget]
    scale = measures[0].time_scale
    scale_note = ("" if scale == 1.0 else
                  f" Run at time scale {scale:g}: budgets are scaled, and the last two "
                  "columns give both figures at the runbook's scale.")
    lines = [
        f"# Post-mortem: {facts.title} (#{facts.incident_id})",
        "",
        "| | |",
        "|---|---|",
        f"| Incident | #{_cell(facts.incident_id)} |",
        f"| Failed deployment | {_cell(facts.deployment.label)} |",
        f"| Reason for rollback | {_cell(facts.reason)} |",
        f"| Rolled back to | {_cell(facts.rollback_target.label)} |",
        f"| Resolved | {resolved} |",
        f"| Written | {written} |",
        "",
        "## Timeline of events",
        "",
        *_timeline_table(timeline),
        "",
        "### Time to detect and recover",
        "",
        "The runbook's budgets (\"Testing Rollback Procedure\"): time to detect <5 min, time to rollback "
        "<5 min, total recovery time <10 min." + scale_note,
        "",
        *_measure_table(measures),
        "",
        "## Root cause",
        "",
        "_To be written by the incident owner, answering the runbook's questions:_",
        "",
        "- Why did the deployment fail?",
        "- Why didn't pre-production testing catch it?",
        "- What metrics would have detected it earlier?",
        "",
        "## Impact assessment",
        "",
        f"- During the incident: {facts.reason} ({facts.deployment.label}).",
        f"- {_verdict(measures[2])}",
        f"- After the rollback to {facts.rollback_target.label}: Error Rate: {recovery.error_rate}; "
        f"Response Time: P95 {recovery.p95_ms:.0f}ms; Verification: {recovery.verification}.",
        "- Data: a rollback changes code, not data (KV, R2 and Durable Objects retain state); "
        "_confirm that no data was lost._",
        "- _Users and requests affected: to be assessed by the incident owner._",
        "",
        "## Action items",
        "",
        "- [ ] Fix-forward plan: fix the root cause",
        "- [ ] Add tests to prevent recurrence",
        "- [ ] Deploy to staging first, then a gradual rollout to production",
        "- [ ] Improve CI/CD: add smoke tests, add canary deployment, improve staging parity",
        "- [ ] Process improvements: update deployment checklist, improve monitoring, add safeguards",
        *[f"- [ ] Bring {m.label} within its budget: {_verdict(m)}" for m in over],
        "",
        "## Lessons learned",
        "",
        *[f"- {_verdict(m)}" for m in measures],
        "- _To be written by the incident owner._",
        "",
    ]
    return "\n".join(lines)
