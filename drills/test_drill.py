"""`pytest -m drill`: the quarterly rollback drill (ROLLBACK_PROCEDURE.md, "Testing Rollback
Procedure"), parametrized over the scenarios of src/bookstrack_rollback/drill/scenarios.toml and the
runbook's three rollback methods: every scenario with Method 1, and the error spike with Methods 2 and 3.

Each drill deploys a test change carrying FAULT_PROFILE (on an emulated target, a commit of the drill's
own worker repository; on a real worker, a copy of its known stable version with FAULT_PROFILE set),
detects, walks the checklist and the decision tree, rolls back (or, for the negative controls, must
not), verifies, and cleans up; it fails when the decision is not the expected one or a budget (time to
detect, time to rollback, total) is exceeded. Its progress, its Allure attachments and metrics come from
the plugin's drill listeners.
"""

from __future__ import annotations

import allure
import pytest

from bookstrack_rollback.drill.record import PASSED
from bookstrack_rollback.drill.runner import method_unavailable, run_drill
from bookstrack_rollback.drill.scenarios import load_scenarios

pytestmark = [pytest.mark.drill, pytest.mark.xdist_group(name="drill-target")]

SCENARIOS = load_scenarios()
CASES = [pytest.param(s, "api_rollback", id=f"{s.name}-api_rollback") for s in SCENARIOS]
CASES += [pytest.param(s, m, id=f"{s.name}-{m}") for s in SCENARIOS if s.name == "error-spike"
          for m in ("git_revert", "emergency_deploy")]
RUNBOOK_DRILL = "https://github.com/jukasdrj/bookstrack-backend/blob/main/docs/ROLLBACK_PROCEDURE.md#testing-rollback-procedure"


@pytest.mark.parametrize("scenario, method", CASES)
def test_drill(scenario, method, drill_settings, drill_options, drill_listeners):
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
    record = run_drill(drill_settings, scenario, method, drill_options, drill_listeners)
    assert record.status == PASSED, f"drill {record.drill_id} {record.status}: {record.failure}"
