"""`pytest -m verify` run as users run it (pytester), against an embedded staging with each fault
of the staging injected: the detection matrix. Each check must fail exactly where it should."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from matrix import CHECKS, load_scenarios, inner_conftest, verdicts_from_junit

# pytester runs that each start a staging and probe it hard: one at a time (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
VERIFY_TESTS = (ROOT / "tests" / "test_verify.py").read_text()
SCENARIOS = load_scenarios()


def run_verify(suite: pytest.Pytester, conftest: str, *args: str) -> tuple[dict[str, tuple[str, str]], pytest.RunResult]:
    suite.makeconftest(conftest)
    suite.makepyfile(test_verify=VERIFY_TESTS)
    junit = suite.path / "junit.xml"
    # at time scale 0.01 the run's window (10 runbook minutes) is 6 s
    result = suite.runpytest_subprocess("-m", "verify", f"--junitxml={junit}", "-p", "no:cacheprovider",
                                        "-p", "no:randomly", "--time-scale", "0.01", *args)
    assert junit.exists(), result.stdout.str()[-3000:]
    return verdicts_from_junit(junit), result


@pytest.fixture
def suite_with_matrix(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    import os
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "selftests"), os.environ["PYTHONPATH"]]))
    return suite


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_check_fails_exactly_where_it_should(suite_with_matrix: pytest.Pytester, scenario):
    seen, result = run_verify(suite_with_matrix, inner_conftest(scenario))
    got = {check: seen.get(check, ("MISSING", ""))[0] for check in CHECKS}
    wrong = {check: (want, got[check], seen.get(check, ("", ""))[1][:300])
             for check, want in scenario.expected().items() if got[check] != want}
    assert not wrong, f"scenario {scenario.name}: check -> (expected, got, message): {wrong}"


def test_parallel_runs_give_the_same_verdicts_and_one_merged_report(suite_with_matrix: pytest.Pytester):
    scenario = next(s for s in SCENARIOS if s.name == "data-loss")
    serial, _ = run_verify(suite_with_matrix, inner_conftest(scenario))
    results = suite_with_matrix.path / "allure-results"
    parallel, _ = run_verify(suite_with_matrix, inner_conftest(scenario), "-n", "2", "--dist", "loadgroup",
                             f"--alluredir={results}")
    assert {k: v for k, (v, _) in parallel.items()} == {k: v for k, (v, _) in serial.items()}
    assert sorted(json.loads(p.read_text())["name"] for p in results.glob("*-result.json")) == sorted(
        f"test_{check}" for check in CHECKS)  # one result per check, from both workers, in one folder
    assert (results / "environment.properties").exists() and (results / "categories.json").exists()
