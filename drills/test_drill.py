"""`pytest -m drill`: the quarterly rollback drill (ROLLBACK_PROCEDURE.md, "Testing Rollback
Procedure"), parametrized over the scenarios of fixtures/drill_scenarios.toml and the runbook's three
rollback methods: every scenario with Method 1, and the error spike with Methods 2 and 3.

Each drill deploys a test change carrying FAULT_PROFILE (on an emulated target, a commit of the drill's
own worker repository; on a real worker, a copy of its known stable version with FAULT_PROFILE set), detects, walks the checklist and the decision
tree, rolls back (or, for the negative controls, must not), verifies, and cleans up; it fails when the
decision is not the expected one or a budget (time to detect, time to rollback, total) is exceeded.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import allure
import pytest

from bookstrack_rollback.drill.record import PASSED
from bookstrack_rollback.drill.runner import method_unavailable, run_drill
from bookstrack_rollback.drill.scenarios import load_scenarios
from bookstrack_rollback.pytest_plugin.settings import DRILL_RECORDS

pytestmark = [pytest.mark.drill, pytest.mark.xdist_group(name="drill-target")]

SCENARIOS = load_scenarios()
CASES = [pytest.param(s, "api_rollback", id=f"{s.name}-api_rollback") for s in SCENARIOS]
CASES += [pytest.param(s, m, id=f"{s.name}-{m}") for s in SCENARIOS if s.name == "error-spike"
          for m in ("git_revert", "emergency_deploy")]
RUNBOOK_DRILL = "https://github.com/jukasdrj/bookstrack-backend/blob/main/docs/ROLLBACK_PROCEDURE.md#testing-rollback-procedure"


@pytest.mark.parametrize("scenario, method", CASES)
def test_drill(scenario, method, drill_settings, drill_options, request):
    not_here = method_unavailable(drill_settings.target, method)
    if not_here:
        pytest.skip(not_here)
    allure.dynamic.epic("Testing Rollback Procedure")
    allure.dynamic.feature("Quarterly Rollback Drill")
    allure.dynamic.story(scenario.description)
    allure.dynamic.severity(allure.severity_level.CRITICAL)
    allure.dynamic.link(RUNBOOK_DRILL, name="runbook: Testing Rollback Procedure")
    allure.dynamic.parameter("scenario", scenario.name)
    allure.dynamic.parameter("rollback method", method)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def say(text: str) -> None:
        if reporter is not None:
            reporter.write_line(f"drill {scenario.name}/{method}: {text}")

    record = run_drill(drill_settings, scenario, method, drill_options, progress=say)
    request.config.stash.setdefault(DRILL_RECORDS, []).append(record)
    m = record.measures
    for name, value in (("time to detect (s)", m.time_to_detect_s), ("time to rollback (s)", m.time_to_rollback_s),
                        ("total recovery (s)", m.total_recovery_s)):
        allure.dynamic.parameter(name, None if value is None else round(value, 2), excluded=True)
    allure.dynamic.parameter("decision", record.decision, excluded=True)
    allure.attach(json.dumps(record.as_json(), indent=2, default=str), name="drill record.json",
                  attachment_type=allure.attachment_type.JSON)
    timeline = "\n".join(f"{p.name:<20} {p.outcome:<8} {p.duration_s or 0:7.2f}s  {p.detail}" for p in record.phases)
    allure.attach(timeline, name="timeline.txt", attachment_type=allure.attachment_type.TEXT)
    write_perf(request.config, record)
    assert record.status == PASSED, f"drill {record.drill_id} {record.status}: {record.failure}"


def write_perf(config: pytest.Config, record) -> None:
    """Allure 3's numeric metrics (``*-perf.json``): time to detect, to rollback and total recovery, with
    trends across runs (shared/notes/ecosystem.md §2.4)."""
    results = config.getoption("allure_report_dir", default=None)
    if not results:
        return
    m = record.measures
    start, stop = int(record.started_at * 1000), int((record.ended_at or record.started_at) * 1000)
    rows = [{"id": f"{record.scenario}/{record.method}", "key": key, "value": round(value, 3), "start": start,
             "stop": stop} for key, value in (("time_to_detect_s", m.time_to_detect_s),
                                              ("time_to_rollback_s", m.time_to_rollback_s),
                                              ("total_recovery_s", m.total_recovery_s)) if value is not None]
    if rows:
        path = Path(results) / f"{uuid.uuid4()}-perf.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
