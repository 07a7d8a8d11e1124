"""`pytest -m drill` against a staging that runs Worker code in workerd (``--runtime workerd``): the reference
Worker of drills/reference-worker, drilled as a real staging is (its known stable version copied with
FAULT_PROFILE, Method 1). The hook acts in the real runtime, and a rollback heals it; an interrupted drill
and a refused production drill leave it healed; and "drill your own worker" deploys a worker with wrangler
and refuses one without the hook, saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from outer_targets import targets_toml
from test_drill_suite import TOKEN, assert_healed, interrupt_a_drill, records

from bookstrack_rollback.pytest_plugin.settings import EMBEDDED_USERS
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread

pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
DRILL_TESTS = (ROOT / "drills" / "test_drill.py").read_text()


@pytest.fixture
def outer() -> Iterator[RunningStaging]:
    try:
        running = start_in_thread(StagingConfig(seed=99, token=TOKEN, users=EMBEDDED_USERS, runtime="workerd"))
    except Exception as exc:
        pytest.skip(f"the workerd runtime cannot start here: {exc}")
    yield running
    running.stop()


@pytest.fixture
def drill_suite(suite: pytest.Pytester, outer: RunningStaging, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    suite.makepyfile(test_drill=DRILL_TESTS)
    suite.makefile(".toml", targets=targets_toml(outer, synthetic_worker=False))  # real code: drilled by copies
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", outer.config.account_id)
    monkeypatch.setenv("BOOKSTRACK_SLACK_WEBHOOK_URL", f"{outer.base_url}/__staging/webhooks/slack")
    monkeypatch.setenv("BOOKSTRACK_STATUS_WEBHOOK_URL", f"{outer.base_url}/__staging/webhooks/status-page")
    return suite


def test_the_reference_worker_in_workerd_is_drilled_detected_rolled_back_and_healed(drill_suite, outer):
    result = drill_suite.runpytest_subprocess(
        "-m", "drill", "--target", "local", "--reports-dir", str(drill_suite.path / "reports"), "-p", "no:cacheprovider",
        "-k", "error-spike-api_rollback or websocket-failures-api_rollback or data-loss-api_rollback "
              "or errors-before-deploy-api_rollback")
    result.assert_outcomes(passed=4)
    assert_healed(outer)
    found = {r["scenario"]: r for r in records(drill_suite.path)}
    for name in ("error-spike", "websocket-failures", "data-loss"):
        drill = found[name]
        m = drill["measures"]
        assert drill["decision"] == "ROLLBACK NOW" and drill["status"] == "passed", (name, drill["status"])
        assert 0 < m["time_to_detect_s"] <= m["budget_detect_s"], (name, m)
        assert 0 < m["time_to_rollback_s"] <= m["budget_rollback_s"], (name, m)
        assert m["total_recovery_s"] <= m["budget_total_s"], (name, m)
        # the test change is a copy of the Worker's own code: the hook in workerd acted it out
        assert drill["bad_version"]["id"] != drill["serving_after"]["id"]
    assert found["errors-before-deploy"]["rollback"] is None
    spike = found["error-spike"]
    events = [json.loads(line) for line in Path(spike["artifacts"]["tail_logs"]).read_text().splitlines()]
    assert events and {e["scriptVersion"]["id"] for e in events} == {spike["bad_version"]["id"]}
    # real trace items of the Worker: its own console.log lines, and the injected 4xx the hook answered
    assert any(log["message"] for e in events for log in e["logs"]), events[:2]
    assert any(e["event"]["response"]["status"] == 400 for e in events)


def test_an_interrupted_drill_in_workerd_leaves_the_staging_healed(drill_suite, outer):
    interrupt_a_drill(drill_suite, outer)


def test_production_in_workerd_is_refused_without_the_override(drill_suite, outer):
    drill_suite.makefile(".toml", targets=targets_toml(outer, environment="production"))
    result = drill_suite.runpytest_subprocess("-m", "drill", "--target", "local", "-k", "error-spike-api_rollback",
                                              "--reports-dir", str(drill_suite.path / "reports"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refusing to drill production*--drill-allow-production*"])
    assert_healed(outer)


def test_drill_your_own_worker_refuses_one_without_the_hook_and_says_what_is_missing(suite, tmp_path):
    worker = tmp_path / "my-worker"
    (worker / "src").mkdir(parents=True)
    (worker / "wrangler.toml").write_text('name = "my-worker"\nmain = "src/index.js"\ncompatibility_date = "2025-09-01"\n')
    (worker / "src" / "index.js").write_text('export default { fetch: () => new Response("mine") };\n')
    suite.makepyfile(test_x="def test_x():\n    pass\n")
    result = suite.runpytest_subprocess("--drill-worker-dir", str(worker), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--drill-worker-dir*never reads FAULT_PROFILE*does not carry the staging hook*"
                                 "withFaultProfile*drills/staging-hook/fault-hook.mjs*"])


def test_drill_your_own_worker_deploys_it_with_wrangler_and_verifies_it(suite):
    suite.makepyfile(test_drill=DRILL_TESTS)
    result = suite.runpytest_subprocess("-m", "drill", "--drill-worker-dir", str(ROOT / "drills" / "reference-worker"),
                                        "-k", "error-spike-api_rollback", "-p", "no:cacheprovider",
                                        "--reports-dir", str(suite.path / "reports"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*bookstrack rehearsal: deployed rehearsal*from your worker with wrangler*"
                                 "carries the staging hook*"])
    (record,) = records(suite.path)
    assert record["known_stable"]["tag"] == "rehearsal", record["known_stable"]


def test_methods_2_and_3_are_drilled_on_the_reference_workers_own_code_from_the_drills_repository(suite):
    """The embedded staging in workerd mode: the drill's repository starts from the known stable version's
    code and bindings, so git revert and the emergency deploy of the stable commit redeploy real Worker code."""
    suite.makepyfile(test_drill=DRILL_TESTS)
    result = suite.runpytest_subprocess("-m", "drill", "--staging-runtime", "workerd", "-p", "no:cacheprovider",
                                        "-k", "error-spike-git_revert or error-spike-emergency_deploy",
                                        "--reports-dir", str(suite.path / "reports"))
    result.assert_outcomes(passed=2)
    for record in records(suite.path):
        assert record["status"] == "passed" and record["bad_version"]["tag"] == "2.0.0-drill", record["method"]
        assert record["serving_after"]["tag"] == "1.9.0", record["serving_after"]
        assert record["measures"]["time_to_rollback_s"] <= record["measures"]["budget_rollback_s"]
