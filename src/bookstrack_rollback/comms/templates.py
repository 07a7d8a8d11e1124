"""The runbook's messages, rendered with real figures (ROLLBACK_PROCEDURE.md, "Communication Procedures").

- "1. Notify Stakeholders (During Rollback)": the Slack message ``🚨 **ROLLBACK IN PROGRESS**``;
- "2. Update Status Page": ``[INVESTIGATING]`` → ``[IDENTIFIED]`` → ``[MONITORING]`` → ``[RESOLVED]``
  (the runbook writes INVESTIGATING and RESOLVED out; IDENTIFIED and MONITORING follow their style);
- "3. Post-Rollback Communication": the Slack message ``✅ **ROLLBACK COMPLETE**`` and ``[RESOLVED]``.

The post-mortem skeleton ("Post-Rollback Actions", "Long-term") is in :mod:`.postmortem`.

Inputs are frozen records checked when they are built: no empty or missing text (``"None"``,
``"nan"``), no NaN or infinite figure, no naive time (every time is shown in UTC). A rendered message
therefore never carries a placeholder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from ..stats import Rate, percent

ON_CALL = "On-Call Engineer"
DEFAULT_TITLE = "API Error Rate Elevated"
DEFAULT_SYMPTOM = "elevated error rates"
DEFAULT_NEXT_STEPS = "Root cause analysis, fix-forward plan"
POSTMORTEM_WITHIN_H = 48  # "Post-mortem will be published within 48 hours"
_MISSING = {"", "none", "null", "nan", "n/a", "tbd", "todo", "..."}


# --- checks shared by every record ---------------------------------------------------------------
def checked_text(value: object, field: str, *, multiline: bool = False) -> str:
    """``value`` as a non-empty text that is not a stand-in for a missing figure."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a text, got {type(value).__name__} {value!r}")
    if value.strip().lower() in _MISSING:
        raise ValueError(f"{field} is missing (got {value!r}): a message needs the real figure")
    if not multiline and ("\n" in value or "\r" in value):
        raise ValueError(f"{field} must be one line, got {value!r}")
    return value


def checked_number(value: object, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "a positive" if positive else "a non-negative"
        raise ValueError(f"{field} must be {kind} finite number, got {value!r}")
    return float(value)


def checked_time(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must carry a time zone (messages show UTC), got the naive {value!r}")
    return value


def utc_stamp(moment: datetime, *, seconds: bool = False) -> str:
    """'2025-11-15 14:30 UTC', as the runbook's status page writes times."""
    at = checked_time(moment, "time").astimezone(timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _number(value: float) -> str:
    """5.0 -> '5', 2.5 -> '2.5'."""
    return f"{value:.6g}"


# --- inputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    """A deployment as the messages name it: ``v2.0 API changes (abc123)`` (tag or message, then the
    version id or commit)."""

    name: str
    ref: str

    def __post_init__(self) -> None:
        checked_text(self.name, "release name")
        checked_text(self.ref, "release ref (version id or commit)")

    @property
    def label(self) -> str:
        return f"{self.name} ({self.ref})"


@dataclass(frozen=True)
class IncidentFacts:
    """What is known while rolling back ("1. Notify Stakeholders", "2. Update Status Page")."""

    incident_id: str  # "INC-2025-123", shown as "#INC-2025-123"
    deployment: Release  # the failed deployment
    reason: str  # "Error rate spiked to 31.2% (95% CI 27.0-35.8%) after deployment"
    rollback_target: Release  # the last known stable version
    eta_min: float  # "ETA: 5 minutes" (runbook.toml communications.rollback_eta_min)
    status_page_url: str
    dashboard_url: str
    title: str = DEFAULT_TITLE  # the status page's headline
    symptom: str = DEFAULT_SYMPTOM  # "We are investigating <symptom> on the BooksTrack API."
    signed: str = ON_CALL

    def __post_init__(self) -> None:
        checked_text(self.incident_id, "incident id")
        if self.incident_id.startswith("#"):
            raise ValueError(f"incident id is written without '#', got {self.incident_id!r}")
        for name in ("reason", "status_page_url", "dashboard_url", "title", "symptom", "signed"):
            checked_text(getattr(self, name), name.replace("_", " "))
        for name in ("deployment", "rollback_target"):
            if not isinstance(getattr(self, name), Release):
                raise TypeError(f"{name} must be a Release, got {getattr(self, name)!r}")
        checked_number(self.eta_min, "ETA (minutes)", positive=True)

    @property
    def eta(self) -> str:
        """'5 minutes', '1 minute', '2.5 minutes'."""
        return f"{_number(self.eta_min)} minute{'' if self.eta_min == 1 else 's'}"


@dataclass(frozen=True)
class RecoveryFacts:
    """What verification measured after the rollback ("3. Post-Rollback Communication")."""

    error_rate: str  # "Back to normal (1.2%)": see :func:`back_to_normal`
    p95_ms: float  # "Response Time: P95 400ms"
    verification: str  # "All checks passed", or which did not
    next_steps: str = DEFAULT_NEXT_STEPS

    def __post_init__(self) -> None:
        checked_text(self.error_rate, "error rate")
        checked_text(self.verification, "verification summary")
        checked_text(self.next_steps, "next steps")
        checked_number(self.p95_ms, "P95 (ms)")


def spike_reason(rate: Rate, *, name: str = "Error rate", confidence: float = 0.95) -> str:
    """'Error rate spiked to 31.2% (95% CI 27.0-35.8%) after deployment' from a measured rate."""
    if rate.total == 0:
        raise ValueError(f"{name} has no samples: there is no spike to report")
    low, high = rate.interval(confidence)
    return (f"{name} spiked to {percent(rate.value)} ({confidence * 100:g}% CI {percent(low)[:-1]}-"
            f"{percent(high)}) after deployment")


def back_to_normal(rate: Rate) -> str:
    """'Back to normal (1.2%)', as the runbook's "Error Rate: Back to normal (2%)"."""
    if rate.total == 0:
        raise ValueError("the error rate after the rollback has no samples: it cannot be called normal")
    return f"Back to normal ({percent(rate.value)})"


# --- outputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlackMessage:
    """A Slack message for ``#bookstrack-alerts`` and ``#engineering`` (runbook: "Slack Channels")."""

    headline: str  # "🚨 **ROLLBACK IN PROGRESS**"
    text: str


class StatusState(Enum):
    """The runbook's status page states, in order: "Investigating" → "Identified" → "Monitoring" →
    "Resolved" (also Atlassian Statuspage's incident states)."""

    INVESTIGATING = "Investigating"
    IDENTIFIED = "Identified"
    MONITORING = "Monitoring"
    RESOLVED = "Resolved"

    @property
    def tag(self) -> str:
        return f"[{self.value.upper()}]"


@dataclass(frozen=True)
class StatusPageUpdate:
    """One status page update: ``[STATE] title`` then the body lines."""

    state: StatusState
    title: str
    body: str
    at: datetime

    @property
    def text(self) -> str:
        return f"{self.state.tag} {self.title}\n{self.body}"


def render_rollback_in_progress(facts: IncidentFacts) -> SlackMessage:
    """Runbook "1. Notify Stakeholders (During Rollback)", Message Template."""
    headline = "🚨 **ROLLBACK IN PROGRESS**"
    text = "\n".join([
        headline,
        "",
        f"Deployment: {facts.deployment.label}",
        f"Reason: {facts.reason}",
        f"Action: Rolling back to {facts.rollback_target.label}",
        f"ETA: {facts.eta}",
        f"Status Page: {facts.status_page_url} (updated)",
        "",
        f"– {facts.signed}",
    ])
    return SlackMessage(headline, text)


def render_rollback_complete(facts: IncidentFacts, recovery: RecoveryFacts) -> SlackMessage:
    """Runbook "3. Post-Rollback Communication", Slack."""
    headline = "✅ **ROLLBACK COMPLETE**"
    text = "\n".join([
        headline,
        "",
        f"Deployment: Rolled back to {facts.rollback_target.label}",
        f"Verification: {recovery.verification}",
        f"Error Rate: {recovery.error_rate}",
        f"Response Time: P95 {recovery.p95_ms:.0f}ms",
        f"Next Steps: {recovery.next_steps}",
        "",
        f"Dashboard: {facts.dashboard_url}",
        f"Incident: #{facts.incident_id}",
    ])
    return SlackMessage(headline, text)


def render_status_update(
    facts: IncidentFacts,
    state: StatusState,
    at: datetime,
    *,
    postmortem_within_h: float = POSTMORTEM_WITHIN_H,
) -> StatusPageUpdate:
    """Runbook "2. Update Status Page" (INVESTIGATING) and "3. Post-Rollback Communication" (RESOLVED);
    IDENTIFIED and MONITORING are written in the same style. ``at`` is shown in UTC."""
    stamp = utc_stamp(checked_time(at, "status update time"))
    symptom = facts.symptom
    if state is StatusState.INVESTIGATING:
        lines = [
            f"We are investigating {symptom} on the BooksTrack API.",
            f"Mitigation in progress. ETA: {facts.eta}.",
            f"Last Update: {stamp}",
        ]
    elif state is StatusState.IDENTIFIED:
        lines = [
            f"We have identified a recent deployment as the cause of {symptom} on the BooksTrack API.",
            f"We are rolling back to a previous stable version. ETA: {facts.eta}.",
            f"Last Update: {stamp}",
        ]
    elif state is StatusState.MONITORING:
        lines = [
            "A rollback to a previous stable version has been completed.",
            f"We are monitoring the BooksTrack API to confirm that {symptom} have ended.",
            f"Last Update: {stamp}",
        ]
    else:
        hours = checked_number(postmortem_within_h, "post-mortem delay (hours)", positive=True)
        lines = [
            "The issue has been resolved by rolling back to a previous stable version.",
            "All systems operating normally.",
            f"Post-mortem will be published within {_number(hours)} hours.",
            f"Resolved: {stamp}",
        ]
    return StatusPageUpdate(state, facts.title, "\n".join(lines), at)

