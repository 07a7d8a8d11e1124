"""The runbook's messages rendered with real figures (ROLLBACK_PROCEDURE.md, "Communication Procedures";
"Post-Rollback Actions", "Long-term: Post-mortem document"): full texts compared line by line, no
placeholder, "None" or "nan" left, bad inputs refused when the facts are built."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from bookstrack_rollback.comms import (
    IncidentFacts,
    RecoveryFacts,
    Release,
    StatusState,
    TimelineEntry,
    back_to_normal,
    render_postmortem,
    render_rollback_complete,
    render_rollback_in_progress,
    render_status_update,
    spike_reason,
    utc_stamp,
)
from bookstrack_rollback.config import load_runbook, scaled
from bookstrack_rollback.drill.record import Measures
from bookstrack_rollback.measures import Measure
from bookstrack_rollback.stats import Rate

T0 = datetime(2025, 11, 15, 14, 30, 5, tzinfo=timezone.utc)
FACTS = IncidentFacts(
    incident_id="INC-2025-123",
    deployment=Release("v2.0 API changes", "abc123"),
    reason=spike_reason(Rate(156, 500)),
    rollback_target=Release("v1.9.0", "def456"),
    eta_min=5,
    status_page_url="https://status.oooefam.net",
    dashboard_url="https://dash.cloudflare.com/0123/workers/services/view/api-worker",
)
RECOVERY = RecoveryFacts(error_rate=back_to_normal(Rate(6, 300)), p95_ms=412.4, verification="All checks passed")
LEFTOVERS = re.compile(r"[{}]|\bNone\b|\bnan\b|\bnull\b", re.I)


def assert_complete(text: str) -> None:
    leftover = LEFTOVERS.search(text)
    assert leftover is None, f"a rendered message still holds {leftover.group()!r}:\n{text}"


def test_figures_are_sentences_with_their_interval():
    assert FACTS.reason == "Error rate spiked to 31.2% (95% CI 27.3-35.4%) after deployment"
    assert RECOVERY.error_rate == "Back to normal (2.0%)"
    with pytest.raises(ValueError, match="no samples"):
        spike_reason(Rate(0, 0))
    with pytest.raises(ValueError, match="cannot be called normal"):
        back_to_normal(Rate(0, 0))


def test_rollback_in_progress_has_the_runbooks_layout():
    message = render_rollback_in_progress(FACTS)
    assert message.headline == "🚨 **ROLLBACK IN PROGRESS**"
    assert message.text == (
        "🚨 **ROLLBACK IN PROGRESS**\n"
        "\n"
        "Deployment: v2.0 API changes (abc123)\n"
        "Reason: Error rate spiked to 31.2% (95% CI 27.3-35.4%) after deployment\n"
        "Action: Rolling back to v1.9.0 (def456)\n"
        "ETA: 5 minutes\n"
        "Status Page: https://status.oooefam.net (updated)\n"
        "\n"
        "– On-Call Engineer"
    )
    assert_complete(message.text)
    assert "ETA: 1 minute\n" in render_rollback_in_progress(replace(FACTS, eta_min=1)).text
    assert "ETA: 2.5 minutes\n" in render_rollback_in_progress(replace(FACTS, eta_min=2.5)).text


def test_rollback_complete_has_the_runbooks_layout():
    message = render_rollback_complete(FACTS, RECOVERY)
    assert message.text == (
        "✅ **ROLLBACK COMPLETE**\n"
        "\n"
        "Deployment: Rolled back to v1.9.0 (def456)\n"
        "Verification: All checks passed\n"
        "Error Rate: Back to normal (2.0%)\n"
        "Response Time: P95 412ms\n"
        "Next Steps: Root cause analysis, fix-forward plan\n"
        "\n"
        "Dashboard: https://dash.cloudflare.com/0123/workers/services/view/api-worker\n"
        "Incident: #INC-2025-123"
    )
    assert_complete(message.text)


def test_status_page_walks_the_four_states_with_utc_times():
    cet = timezone(timedelta(hours=1))
    times = [T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=4), (T0 + timedelta(minutes=5)).astimezone(cet)]
    updates = [render_status_update(FACTS, state, at) for state, at in zip(StatusState, times)]
    assert [u.state.value for u in updates] == ["Investigating", "Identified", "Monitoring", "Resolved"]
    assert [u.text for u in updates] == [
        "[INVESTIGATING] API Error Rate Elevated\n"
        "We are investigating elevated error rates on the BooksTrack API.\n"
        "Mitigation in progress. ETA: 5 minutes.\n"
        "Last Update: 2025-11-15 14:30 UTC",
        "[IDENTIFIED] API Error Rate Elevated\n"
        "We have identified a recent deployment as the cause of elevated error rates on the BooksTrack API.\n"
        "We are rolling back to a previous stable version. ETA: 5 minutes.\n"
        "Last Update: 2025-11-15 14:32 UTC",
        "[MONITORING] API Error Rate Elevated\n"
        "A rollback to a previous stable version has been completed.\n"
        "We are monitoring the BooksTrack API to confirm that elevated error rates have ended.\n"
        "Last Update: 2025-11-15 14:34 UTC",
        "[RESOLVED] API Error Rate Elevated\n"
        "The issue has been resolved by rolling back to a previous stable version.\n"
        "All systems operating normally.\n"
        "Post-mortem will be published within 48 hours.\n"
        "Resolved: 2025-11-15 14:35 UTC",  # given in UTC+1, shown in UTC
    ]
    for update in updates:
        assert_complete(update.text)
        assert update.text == f"{update.state.tag} {update.title}\n{update.body}"


def test_status_page_speaks_of_the_symptom_it_is_given():
    latency = replace(FACTS, title="API Latency Elevated", symptom="elevated response times")
    text = render_status_update(latency, StatusState.INVESTIGATING, T0).text
    assert text.startswith("[INVESTIGATING] API Latency Elevated\nWe are investigating elevated response times on")


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"reason": ""}, ValueError, "reason is missing"),
        ({"reason": "None"}, ValueError, "reason is missing"),
        ({"reason": "nan"}, ValueError, "reason is missing"),
        ({"reason": "two\nlines"}, ValueError, "reason must be one line"),
        ({"eta_min": float("nan")}, ValueError, "ETA (minutes) must be a positive finite number"),
        ({"eta_min": 0}, ValueError, "ETA (minutes) must be a positive finite number"),
        ({"eta_min": True}, TypeError, "ETA (minutes) must be a number"),
        ({"incident_id": "#INC-1"}, ValueError, "without '#'"),
        ({"status_page_url": None}, TypeError, "status page url must be a text"),
        ({"deployment": "v2.0"}, TypeError, "deployment must be a Release"),
    ],
)
def test_incomplete_facts_are_refused_when_built(change, error, words):
    with pytest.raises(error) as caught:
        replace(FACTS, **change)
    assert words in str(caught.value)


def test_recovery_and_times_are_checked():
    with pytest.raises(ValueError, match=r"P95 \(ms\) must be a non-negative finite number"):
        RecoveryFacts(error_rate="Back to normal (2%)", p95_ms=float("nan"), verification="All checks passed")
    with pytest.raises(ValueError, match="release ref"):
        Release("v1.9.0", "")
    with pytest.raises(ValueError, match="must carry a time zone"):
        render_status_update(FACTS, StatusState.MONITORING, datetime(2025, 11, 15, 14, 30))
    assert utc_stamp(T0) == "2025-11-15 14:30 UTC" and utc_stamp(T0, seconds=True) == "2025-11-15 14:30:05 UTC"


# --- post-mortem -----------------------------------------------------------------------------------
def timeline() -> list[TimelineEntry]:
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    return [
        TimelineEntry("inject", at(0), at(2), "passed", "deployed v2.0 | FAULT_PROFILE error_rate 0.3"),
        TimelineEntry("detect", at(2), at(6.3), "ROLLBACK NOW", "error rate >10% for 5 min (scaled)"),
        TimelineEntry("roll back", at(6.3), at(9), "passed"),
        TimelineEntry("verify", at(9), None, "interrupted"),
    ]


def test_postmortem_is_filled_from_the_timeline_and_measures():
    drill = load_runbook().drill
    measures = Measures(time_to_detect_s=4.3, time_to_rollback_s=7.1, total_recovery_s=11.4,
                        budget_detect_s=scaled(drill.time_to_detect_budget_min, 0.02),
                        budget_rollback_s=scaled(drill.time_to_rollback_budget_min, 0.02),
                        budget_total_s=scaled(drill.total_recovery_budget_min, 0.02), time_scale=0.02).each()
    text = render_postmortem(FACTS, RECOVERY, timeline(), measures, resolved_at=T0 + timedelta(minutes=5),
                             written_at=T0 + timedelta(hours=1))
    assert_complete(text)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# Post-mortem: API Error Rate Elevated (#INC-2025-123)", "## Timeline of events",
                        "### Time to detect and recover", "## Root cause", "## Impact assessment",
                        "## Action items", "## Lessons learned"]
    section = text.split("## Timeline of events\n\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == [
        "| # | Phase | Started (UTC) | Ended (UTC) | Duration | Outcome | Detail |",
        "|---|---|---|---|---|---|---|",
        "| 1 | inject | 2025-11-15 14:30:05 | 2025-11-15 14:30:07 | 2.0 s | passed | "
        "deployed v2.0 \\| FAULT_PROFILE error_rate 0.3 |",
        "| 2 | detect | 2025-11-15 14:30:07 | 2025-11-15 14:30:11 | 4.3 s | ROLLBACK NOW | "
        "error rate >10% for 5 min (scaled) |",
        "| 3 | roll back | 2025-11-15 14:30:11 | 2025-11-15 14:30:14 | 2.7 s | passed | — |",
        "| 4 | verify | 2025-11-15 14:30:14 | — | — | interrupted | — |",
    ]
    assert ("| Measure | Measured | Budget | Within budget | Measured (runbook scale) | Budget (runbook scale) |\n"
            "|---|---|---|---|---|---|\n"
            "| Time to detect (TTD) | 4.3 s | 6.0 s | yes | 3 min 35 s | 5 min 00 s |\n"
            "| Time to rollback (TTR) | 7.1 s | 6.0 s | NO | 5 min 55 s | 5 min 00 s |\n"
            "| Total recovery | 11.4 s | 12.0 s | yes | 9 min 30 s | 10 min 00 s |\n") in text
    for question in ("Why did the deployment fail?", "Why didn't pre-production testing catch it?",
                     "What metrics would have detected it earlier?"):
        assert f"- {question}\n" in text
    assert ("- After the rollback to v1.9.0 (def456): Error Rate: Back to normal (2.0%); "
            "Response Time: P95 412ms; Verification: All checks passed.") in text
    assert ("- [ ] Bring Time to rollback (TTR) within its budget: Time to rollback (TTR) was 7.1 s, "
            "over its budget of 6.0 s.") in text
    assert "| Resolved | 2025-11-15 14:35 UTC |" in text and "| Written | 2025-11-15 15:30 UTC |" in text


def test_postmortem_at_full_scale_and_an_undetected_fault():
    measures = (Measure("time to detect", "TTD", None, 300.0), Measure("time to rollback", "TTR", 150.0, 300.0),
                Measure("total recovery", "total", 420.0, 600.0))
    text = render_postmortem(FACTS, RECOVERY, timeline()[:1], measures, resolved_at=T0, written_at=T0)
    assert_complete(text)
    assert "| Time to detect (TTD) | not reached | 5 min 00 s | NO |\n" in text
    assert "| Total recovery | 7 min 00 s | 10 min 00 s | yes |\n" in text
    assert "runbook scale" not in text
    assert "- Time to detect (TTD) was not reached (budget 5 min 00 s).\n" in text


def test_postmortem_inputs_are_checked():
    with pytest.raises(ValueError, match="ends .* before it starts"):
        TimelineEntry("detect", T0, T0 - timedelta(seconds=1), "passed")
    with pytest.raises(ValueError, match="must carry a time zone"):
        TimelineEntry("detect", datetime(2025, 11, 15), None, "passed")
    with pytest.raises(ValueError, match="at least one timeline entry"):
        render_postmortem(FACTS, RECOVERY, [], Measures(budget_detect_s=2, budget_rollback_s=2, budget_total_s=4).each(),
                          resolved_at=T0)
    with pytest.raises(ValueError, match="needs TTD, TTR and total recovery, in that order"):
        render_postmortem(FACTS, RECOVERY, timeline(), (Measure("m", "m", 1.0, 2.0),) * 3, resolved_at=T0)
    with pytest.raises(ValueError, match="m: the budget must be a finite number of at least 0, got -1.0"):
        Measure("m", "m", 1.0, -1.0)
