"""The single-file drill report (reporting/drill_report.py) from drill records built here with the
record module's own classes and realistic figures (no drill is run): the report shows the records'
real figures and sentences, names the slow phase of a failed drill, draws one trend point per past
drill, references nothing outside itself, escapes every text, stays small, and the index lists the
reports newest first. The command (``python -m bookstrack_rollback.reporting``) picks the latest run."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

import pytest

from bookstrack_rollback.drill.record import (
    FAILED,
    PASSED,
    ApprovalRecord,
    BadVersionRef,
    ChecklistRecord,
    CheckRecord,
    DrillRecord,
    Measures,
    MessageRecord,
    PhaseRecord,
    RecordStore,
    RollbackRecord,
    RollbackStepRecord,
    SeriesPoint,
    TriggerRecord,
    VersionRef,
)
from bookstrack_rollback.reporting.__main__ import main
from bookstrack_rollback.reporting.decision_tree import (
    APPROVAL_OUTCOME,
    SIDE_OUTCOMES,
    parse_path,
)
from bookstrack_rollback.reporting.drill_report import (
    render_drill_report,
    write_drill_report,
    write_index,
)
from bookstrack_rollback.reporting.drill_runs import group_runs, load_records, run_id_at

T0 = 1_795_966_827.4  # 2026-11-29T15:40:27Z, as in a real run
SCALE = 0.02  # the embedded staging: 5 runbook minutes = 6 s
STABLE = {"id": "119faa47-86f8-4e42-a159-6e5a29f2a857", "tag": "1.9.0"}
PATHS = {
    "ROLLBACK NOW": ["Issue detected?", "yes", "Issue started after deploy?", "yes", "Not transient?", "yes",
                     "CRITICAL?", "yes"],
    "GET APPROVAL": ["Issue detected?", "yes", "Issue started after deploy?", "yes", "Not transient?", "yes",
                     "CRITICAL?", "no"],
    "NO ACTION": ["Issue detected?", "yes", "Issue started after deploy?", "yes", "Not transient?", "no"],
}


def series(rows: int, fault_from: float = 0.0, fault_to: float = 6.0) -> list[SeriesPoint]:
    """Signals per interval as the runner writes them: bad while the test change serves."""
    out = []
    for i in range(rows):
        t = round(-3.0 + i * 0.25, 3)
        bad = fault_from <= t < fault_to
        out.append(SeriesPoint(t, 8, 0.3 if bad else 0.0, 0.0, 6.4 if i % 7 else None, 0.0 if i % 2 else None))
    return out


def record(scenario: str, *, start: float, method: str = "api_rollback", expect: str = "ROLLBACK NOW",
           decision: str | None = None, ttd: float | None = 1.2102637, ttr: float | None = 2.7178750,
           rows: int = 60, message: str = "") -> DrillRecord:
    """A finished drill record with the shape and figures of a real one (reports/drills/<id>.json)."""
    decision = decision or expect
    drill_id = f"{scenario}-{method}-{int(start)}"
    live = start + 3.0
    rec = DrillRecord(drill_id=drill_id, scenario=scenario, scenario_description=f"{scenario}: a fault after the deploy",
                      method=method, target="embedded", environment="staging", time_scale=SCALE, seed=967658328,
                      started_at=start, status=PASSED, ended_at=start + 12.5, expected_decision=expect)
    rolls_back = decision in ("ROLLBACK NOW", "GET APPROVAL")
    total = None if ttd is None or ttr is None or not rolls_back else ttd + 5.1 + ttr
    rec.measures = Measures(time_to_detect_s=ttd, time_to_rollback_s=ttr if rolls_back else None,
                            total_recovery_s=total, budget_detect_s=6.0, budget_rollback_s=6.0, budget_total_s=12.0,
                            time_scale=SCALE)
    rec.decision = decision
    rec.decision_sentence = (f"ROLLBACK NOW to 1.9.0 ({STABLE['id']}): Error Rate Spike (error rate 27.2% (95% CI "
                             f"20.9-34.5%) over 162 requests exceeds the >10% threshold) [{scenario}]."
                             if rolls_back else f"No action: it cleared after 5.3s (4.4 runbook minutes): a transient "
                             f"blip [{scenario}].")
    rec.decision_path = list(PATHS[decision])
    rec.checklist = [
        ChecklistRecord("Issue is not transient (lasted >5 minutes)", "yes" if rolls_back else "no",
                        f"it has lasted 6.0s (5.0 runbook minutes) and has not ended in the recent window [{scenario}]"),
        ChecklistRecord("Issue is deployment-related (started after recent deploy)", "yes",
                        "it began 0.1s after the deployment, and none of its triggers fired in the baseline before it"),
        ChecklistRecord("Rollback target identified (previous stable deployment)", "yes",
                        f"1.9.0 ({STABLE['id']}), the known stable version that passed verification")]
    rec.triggers = [TriggerRecord("error_rate_spike", "Error Rate Spike", "immediate", True,
                                  "error rate 27.2% (95% CI 20.9-34.5%) over 162 requests exceeds the >10% threshold")]
    rec.known_stable = VersionRef(**STABLE)
    rec.bad_version = BadVersionRef("dd068bcb-c0fe-4cb4-8b0f-f17c27987793", "2.0.0-drill",
                                    fault_profile={"label": "Error Rate Spike: 30% of API requests fail"})
    rec.markers = {"fault live": live, "detected": live + (ttd or 0)}
    rec.phases = [PhaseRecord("preflight", start, live, "ok", "known stable 1.9.0; baseline healthy over 90 probes"),
                  PhaseRecord("detect", live, live + 6.0, "ok", "Error Rate Spike confirmed after 1.21s")]
    if rolls_back and ttr is not None:
        started = live + 6.1
        rec.markers.update({"decided": started - 0.04, "rollback started": started, "serving": started + 0.08,
                            "verified": started + ttr})
        rec.rollback = RollbackRecord(
            "Method 1: Wrangler Rollback", method, STABLE["id"], "1.9.0", "71362605-143a-4fe6-a721-6bead7a3a509",
            0.0113, [RollbackStepRecord("execute rollback: deploy version 119faa47 at 100%", "ok",
                                        "deployment 71362605 serves version 119faa47 at 100%", 0.0031)])
        rec.wrangler_command = f"wrangler rollback {STABLE['id']} --message 'Rollback due to error rate' --name api"
        rec.verification = [CheckRecord("error rate (probes)", "PASS",
                                        "error rate 0.0% (95% CI 0.0-4.3%) over 86 requests is below the 5% threshold.")]
        rec.serving_after = VersionRef(**STABLE)
    else:
        rec.markers["decided"] = live + 5.3
    if decision == "GET APPROVAL":
        rec.approval = ApprovalRecord("lead on call (drill)", live + 6.0, rec.decision_sentence)
    rec.messages = [MessageRecord("bookstrack-alerts", "slack: rollback in progress",
                                  message or f"🚨 **ROLLBACK IN PROGRESS**\n\nReason: Error rate spiked [{scenario}]",
                                  "2026-11-29T15:41:38+00:00", "HTTP 200 after 1 attempt(s)"),
                    MessageRecord("status-page", "status page: Investigating", "[INVESTIGATING] API Error Rate Elevated",
                                  "2026-11-29T15:41:36+00:00", "not posted: no webhook configured for this channel")]
    rec.series = series(rows)
    rec.failure = "; ".join(rec.measures.over_budget())
    rec.status = FAILED if rec.failure else PASSED
    return rec


def run_of(start: float, count: int, **kwargs: Any) -> list[DrillRecord]:
    names = ["error-spike", "server-errors", "complete-outage", "websocket-failures", "data-loss", "latency-spike",
             "cache-failure", "provider-timeouts", "errors-before-deploy", "blip", "error-spike", "error-spike"]
    methods = ["api_rollback"] * 10 + ["git_revert", "emergency_deploy"]
    return [record(names[i % 12], method=methods[i % 12], start=start + 12.6 * i, **kwargs) for i in range(count)]


def from_disk(records: list[DrillRecord]) -> list[DrillRecord]:
    """The records exactly as the report reads them back from reports/drills/<id>.json."""
    return [DrillRecord.from_json(json.loads(json.dumps(r.as_json(), default=str))) for r in records]


def section(html: str, drill_id: str) -> str:
    match = re.search(rf'<section [^>]*id="drill-{re.escape(drill_id)}">.*?</section>', html, re.S)
    assert match, f"no section for drill {drill_id}"
    return match.group(0)


def banner(html: str) -> str:
    match = re.search(r'<div class="banner[^"]*" id="verdict">.*?</div>', html, re.S)
    assert match, "no verdict banner"
    return match.group(0)


def test_the_report_shows_the_records_real_figures_and_sentences() -> None:
    records = [record("error-spike", start=T0), record("latency-spike", start=T0 + 13, expect="GET APPROVAL",
                                                     ttd=3.6242063, ttr=2.9417219),
               record("blip", start=T0 + 26, expect="NO ACTION")]
    html = render_drill_report(from_disk(records), [], title="Quarterly drill")
    assert banner(html).count("All 3 drills passed") == 1
    for rec in records:
        m = rec.measures
        part = section(html, rec.drill_id)
        assert f"<b>{m.time_to_detect_s:.2f}s ({m.runbook_minutes(m.time_to_detect_s):.1f} runbook min)</b>" in part
        assert f"{m.time_to_detect_s:.2f}s · {m.runbook_minutes(m.time_to_detect_s):.1f} min" in html  # scenario table
        assert escape(rec.decision_sentence) in part
        for item in rec.checklist:
            assert escape(item.item) in part and escape(item.sentence) in part
        assert f">{rec.scenario}</a>" in html
    spike, approval, blip = (section(html, r.drill_id) for r in records)
    assert "<b>1.21s (1.0 runbook min)</b>" in spike and "<b>2.72s (2.3 runbook min)</b>" in spike
    total = records[0].measures.total_recovery_s
    assert total is not None and f"{total:.2f}s" == "9.03s"
    assert "<b>9.03s (7.5 runbook min)</b> of a 12.00s (10.0 runbook min) budget" in spike
    assert "<b>3.62s (3.0 runbook min)</b>" in approval and "lead on call (drill)" in approval
    assert "Method 1: Wrangler Rollback" in spike and STABLE["id"] in spike and "wrangler rollback" in spike
    assert "not measured: this scenario must not roll back" in blip and "No rollback in this drill." in blip
    assert "🚨 **ROLLBACK IN PROGRESS**" in spike and "not posted: no webhook configured" in spike
    assert "Issue detected? yes → Issue started after deploy? yes → Not transient? yes → CRITICAL? no" in approval
    assert len(re.findall(r'<g class="marker">', spike)) == 6  # fault live ... verified
    assert "detected <b>+1.21s</b> (+1.0 runbook min)" in spike
    visible = re.sub(r"<[^>]+>", "|", html)
    assert not re.search(r"\|\s*(None|nan|null|undefined)\s*\|", visible), "a placeholder instead of a figure"


def test_a_failed_drill_names_its_slow_phase_in_the_banner_and_its_section() -> None:
    good, slow = record("error-spike", start=T0), record("server-errors", start=T0 + 13, ttd=7.4)
    assert slow.status == FAILED and "the slow phase was detect" in slow.failure
    html = render_drill_report(from_disk([good, slow]), [], title="Quarterly drill")
    sentence = escape(slow.measures.over_budget()[0])
    assert sentence.startswith("time to detect 7.4s (6.2 runbook minutes) exceeded its budget of 6.0s")
    top = banner(html)
    assert "1 of 2 drills did not pass" in top and sentence in top and "server-errors / api_rollback" in top
    part = section(html, slow.drill_id)
    assert sentence in part and '<div class="measure over">' in part
    assert '<div class="measure over">' not in section(html, good.drill_id)
    assert '<td class="fig over">7.40s · 6.2 min</td>' in html


def test_three_past_drills_are_three_points_in_the_trend() -> None:
    past = [record("error-spike", start=T0 - 3000 + 500 * i, ttd=1.0 + i / 10) for i in range(3)]
    current = record("error-spike", start=T0)
    history = [r.summary() for r in past]
    html = render_drill_report(from_disk([current]), history, title="Quarterly drill")
    trend = re.search(r'<svg class="chart trend".*?</svg>', html, re.S)
    assert trend, "no trend chart"
    for name in ("time to detect", "time to rollback", "total recovery"):
        assert len(re.findall(rf'<circle class="point" data-series="{name}"', trend.group(0))) == 3
    assert "past drills, oldest to newest (3)" in trend.group(0)
    assert f"time to detect {past[2].measures.runbook_minutes(1.2):.1f} runbook min" in trend.group(0)


def test_the_report_references_nothing_outside_itself() -> None:
    html = render_drill_report(from_disk(run_of(T0, 12)), [r.summary() for r in run_of(T0 - 900, 12)], title="Drill")
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b[^>]*stylesheet", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:)?//", html, re.I)
    assert not re.search(r"<(img|iframe|object|embed|video|audio|source)\b", html, re.I)
    assert not re.search(r"\bsrc\s*=", html, re.I)
    for tag in re.findall(r"<(\w+)\b[^>]*\bhref\s*=\s*[\"']?https?://", html, re.I):
        assert tag.lower() == "a", f"an external href on <{tag}>: only plain links are allowed"
    assert "<script" not in html.lower()


def test_every_text_is_escaped_and_credentials_are_redacted() -> None:
    hostile = "<script>alert('x')</script>"
    rec = record(hostile, start=T0, message="Authorization: Bearer sk-live-0123456789abcdef posted")
    html = render_drill_report(from_disk([rec]), [rec.summary()], title=f"Drill {hostile}")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "sk-live-0123456789abcdef" not in html and "Authorization: Bearer [redacted] posted" in html


def test_twelve_drills_with_sixty_row_series_stay_under_one_mebibyte() -> None:
    records = run_of(T0, 12, rows=60)
    html = render_drill_report(from_disk(records), [r.summary() for r in run_of(T0 - 3600, 12) + records], title="Drill")
    assert len(html.encode("utf-8")) < 1024 * 1024
    assert html.count('<section class="drill') == 12


def test_the_index_lists_the_reports_newest_first(tmp_path: Path) -> None:
    newer = from_disk(run_of(T0, 3))
    older = from_disk(run_of(T0 - 86400, 2, ttd=7.0))  # over budget: a failed run
    newest_path = write_drill_report(tmp_path, newer, [], title="Newer run")
    older_path = write_drill_report(tmp_path, older, [], title="Older run")  # written last on purpose
    assert newest_path.name == "report-20261129T154027Z.html" and older_path.name == "report-20261128T154027Z.html"
    index = write_index(tmp_path).read_text("utf-8")
    links = re.findall(r'<a href="(report-[^"]+\.html)">([^<]+)</a>', index)
    assert links == [(newest_path.name, "Newer run"), (older_path.name, "Older run")]
    assert index.index(">passed<") < index.index(">failed<")
    assert "3 of 3 drills passed" in index and "0 of 2 drills passed" in index


def test_decision_paths_map_onto_the_runbook_tree() -> None:
    assert parse_path(PATHS["ROLLBACK NOW"]).outcome == SIDE_OUTCOMES["critical"]
    assert parse_path(PATHS["GET APPROVAL"]).outcome == APPROVAL_OUTCOME
    assert parse_path(PATHS["NO ACTION"]).outcome == SIDE_OUTCOMES["not_transient"]
    assert parse_path(["Issue detected?", "yes", "Issue started after deploy?", "no"]).outcome == \
        SIDE_OUTCOMES["after_deploy"]
    gate = ["Issue detected?", "yes", "Issue started after deploy?", "yes", "Not transient?", "yes",
            "No ongoing migration (database, schema changes)? no"]
    assert parse_path(gate).outcome == SIDE_OUTCOMES["gates"]
    assert parse_path([]).outcome is None


def save(reports: Path, records: list[DrillRecord]) -> None:
    store = RecordStore(reports)
    for rec in records:
        store.save(rec)
        store.append_history(rec)


def test_runs_are_blocks_of_back_to_back_drills_without_a_repeated_pair(tmp_path: Path) -> None:
    first = run_of(T0 - 900, 3)
    again = [record("error-spike", start=first[-1].ended_at + 5)]  # the same pair once more: a new run
    last = run_of(again[0].ended_at + 300, 2)  # after a pause longer than the gap: a new run
    save(tmp_path, first + again + last)
    runs = group_runs(load_records(tmp_path))
    assert [len(r.records) for r in runs] == [3, 1, 2]
    assert runs[-1].run_id == run_id_at(last[0].started_at) and runs[0].run_id == "20261129T152527Z"


def test_the_command_writes_the_latest_runs_report_and_the_index(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    old, latest = run_of(T0 - 900, 2), run_of(T0, 3)
    save(tmp_path, old + latest)
    assert main(["--reports", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = tmp_path / "drills" / "report-20261129T154027Z.html"
    assert f"wrote {report}" in out and report.resolve().as_uri() in out and "3 of 3 drills passed" in out
    html = report.read_text("utf-8")
    assert html.count('<section class="drill') == 3 and latest[0].drill_id in html and old[0].drill_id not in html
    assert (tmp_path / "drills" / "index.html").exists()
    assert main(["--reports", str(tmp_path), "--records", old[1].drill_id]) == 0
    picked = (tmp_path / "drills" / f"report-{run_id_at(old[1].started_at)}.html").read_text("utf-8")
    assert picked.count('<section class="drill') == 1 and old[1].drill_id in picked
    assert main(["--reports", str(tmp_path), "--since", "2026-11-29T15:40:00Z"]) == 0
    assert main(["--reports", str(tmp_path), "--records", "no-such-drill"]) == 2
    assert "no drill record with id no-such-drill" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and "--since" in capsys.readouterr().out
