"""The drill's budgets as Allure 3 quality-gate rules (allurerc.mjs), through the real allure CLI as
``make drill`` runs it: ``allure run`` around pytest, then both reports generated from its archive. Two
drills written by the plugin's own Allure writer: one whose time to rollback broke its budget, one within
its own larger budget (another time scale), so the gate must read each drill's budget and may name only
the first; ``allure quality-gate`` says the same of the results alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLURE = ROOT / "node_modules" / ".bin" / "allure"
OVER = ("error-spike/api_rollback: time to rollback 7.30 s (6.1 runbook min) exceeds its 6.00 s budget "
        "(5 runbook min)")

DRILLS = '''
import asyncio
import time

import pytest

from bookstrack_rollback.drill.record import PASSED, DrillRecord, Measures
from bookstrack_rollback.pytest_plugin.drill import AllureRecorder


@pytest.mark.parametrize("scenario, time_scale, rollback_s", [("error-spike", 0.02, 7.3),
                                                              ("latency-spike", 0.05, 10.0)])
def test_drill(request, scenario, time_scale, rollback_s):
    def budget(minutes):  # the runbook's minutes at the time scale, as the runner scales them
        return minutes * 60 * time_scale

    now = time.time()
    record = DrillRecord(drill_id=scenario, scenario=scenario, scenario_description=scenario, method="api_rollback",
                         target="embedded", environment="staging", time_scale=time_scale, seed=1, started_at=now,
                         ended_at=now + 1.0 + rollback_s, status=PASSED, decision="ROLLBACK NOW",
                         measures=Measures(time_to_detect_s=1.0, time_to_rollback_s=rollback_s,
                                           total_recovery_s=1.0 + rollback_s, budget_detect_s=budget(5),
                                           budget_rollback_s=budget(5), budget_total_s=budget(10),
                                           time_scale=time_scale))
    asyncio.run(AllureRecorder(request.config).drill_ended(record))
'''


def allure(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not ALLURE.exists():
        pytest.fail("node_modules/.bin/allure is missing: make clients installs it")
    return subprocess.run([str(ALLURE), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The two drills under ``allure run`` with the quality gate, and both reports from its archive."""
    work = tmp_path_factory.mktemp("drills")
    (work / "test_drills.py").write_text(DRILLS)
    run = allure("run", "-c", str(ROOT / "allurerc.mjs"), "--ignore-logs", "--results-dir", "reports/allure-results",
                 "--dump", "reports/allure-drill", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "-p", "no:bookstrack", "--alluredir=reports/allure-results", "test_drills.py", cwd=work)
    for config in ("allurerc.mjs", "allurerc.single.mjs"):
        done = allure("generate", "--dump", "reports/allure-drill.zip", "-c", str(ROOT / config), cwd=work)
        assert done.returncode == 0, done.stdout + done.stderr
    return work, run


def test_the_run_prints_the_one_drill_over_its_budget_and_exits_with_the_gates_status(drilled):
    _, run = drilled
    assert "2 passed" in run.stdout, run.stdout + run.stderr
    assert OVER in run.stderr, run.stderr
    assert "latency-spike" not in run.stderr
    assert run.returncode == 1  # the gate's status, not the drills': make drill keeps pytest's apart


@pytest.mark.parametrize("report", ["allure-report", "allure-report-single"])
def test_each_report_names_the_drill_and_the_budget_it_broke(drilled, report):
    work, _ = drilled
    gate = {rule["rule"]: rule for rule in json.loads((work / "reports" / report / "quality-gate.json").read_text())}
    assert sorted(gate) == ["TTD/budget", "TTR/budget", "total/budget"]
    assert [name for name, rule in gate.items() if not rule["success"]] == ["TTR/budget"]
    assert gate["TTR/budget"]["message"] == f"{OVER} (1 of 2 drills over budget)"
    assert gate["TTD/budget"]["message"] == "2 drills, each time to detect within its budget"
    assert gate["total/budget"]["message"] == "2 drills, each total recovery within its budget"
    tests = json.loads((work / "reports" / report / "test-results.json").read_text())["byId"]
    assert [tests[i]["name"] for i in gate["TTR/budget"]["testResults"]] == ["test_drill[error-spike-0.02-7.3]"]


def test_the_multi_file_reports_quality_gates_tab_lists_the_drill(drilled):
    work, _ = drilled
    widget = json.loads((work / "reports" / "allure-report" / "widgets" / "quality-gate.json").read_text())
    failed = [rule for rule in widget["default"] if not rule["success"]]
    assert [rule["rule"] for rule in failed] == ["TTR/budget"]
    leaves = failed[0]["testResultsTree"]["leavesById"].values()
    assert [leaf["name"] for leaf in leaves] == ["test_drill[error-spike-0.02-7.3]"]


def test_allure_quality_gate_judges_the_results_alone(drilled):
    work, _ = drilled
    done = allure("quality-gate", "reports/allure-results", "-c", str(ROOT / "allurerc.mjs"), cwd=work)
    assert done.returncode == 1, done.stdout + done.stderr
    assert OVER in done.stderr and "TTR/budget" in done.stderr
    assert "latency-spike" not in done.stderr and "TTD/budget" not in done.stderr
