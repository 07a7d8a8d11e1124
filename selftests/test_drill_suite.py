"""`pytest -m drill` run as users run it (pytester), against a staging started here and named in a
targets.toml: decisions, measures, records, and a target always left healed, even when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from outer_targets import targets_toml
from waiting import wait_until

from bookstrack_rollback.config.targets import resolve_target
from bookstrack_rollback.drill.methods import METHODS
from bookstrack_rollback.drill.runner import method_unavailable
from bookstrack_rollback.faults import RUNTIME_FLAG_KEY
from bookstrack_rollback.pytest_plugin.settings import EMBEDDED_USERS
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.state import CANARY_RECORDS

pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "drill-suite-token-8a7b6c5d4e"
DRILL_TESTS = (ROOT / "drills" / "test_drill.py").read_text()


@pytest.fixture
def outer() -> Iterator[RunningStaging]:
    running = start_in_thread(StagingConfig(seed=99, token=TOKEN, users=EMBEDDED_USERS))
    yield running
    running.stop()


@pytest.fixture
def drill_suite(suite: pytest.Pytester, outer: RunningStaging, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    suite.makepyfile(test_drill=DRILL_TESTS)
    suite.makefile(".toml", targets=targets_toml(outer, synthetic_worker=True))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", outer.config.account_id)
    monkeypatch.setenv("BOOKSTRACK_SLACK_WEBHOOK_URL", f"{outer.base_url}/__staging/webhooks/slack")
    monkeypatch.setenv("BOOKSTRACK_STATUS_WEBHOOK_URL", f"{outer.base_url}/__staging/webhooks/status-page")
    return suite


def assert_healed(staging: RunningStaging) -> None:
    state = staging.staging
    serving = state.workers.get_version(state.workers.serving_deployment().versions[0][0])
    assert serving is not None and serving.var("FAULT_PROFILE") is None, f"{serving} still serves a fault"
    assert state.kv.get_own(RUNTIME_FLAG_KEY) is None, "a runtime fault was left behind"
    assert state.kv.get_own("drill/lock") is None, "the drill lock was not released"
    for key, value in CANARY_RECORDS.items():
        assert state.kv.get_own(key) == value.encode(), f"canary {key} not restored"


def records(path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((path / "reports" / "drills").glob("*.json"))]


def test_drills_decide_measure_record_and_heal(drill_suite: pytest.Pytester, outer: RunningStaging):
    result = drill_suite.runpytest_subprocess(
        "-m", "drill", "--target", "local", "--reports-dir", str(drill_suite.path / "reports"), "-p", "no:cacheprovider",
        "-k", "error-spike-api_rollback or data-loss-api_rollback or blip-api_rollback or errors-before-deploy")
    result.assert_outcomes(passed=4)
    assert_healed(outer)
    found = {r["scenario"]: r for r in records(drill_suite.path)}
    assert set(found) == {"error-spike", "data-loss", "blip", "errors-before-deploy"}
    spike = found["error-spike"]
    assert spike["decision"] == "ROLLBACK NOW" and spike["status"] == "passed"
    m = spike["measures"]
    assert 0 < m["time_to_detect_s"] <= m["budget_detect_s"] == pytest.approx(6.0)
    assert 0 < m["time_to_rollback_s"] <= m["budget_rollback_s"]
    assert m["total_recovery_s"] <= m["budget_total_s"] == pytest.approx(12.0)
    assert [p["name"] for p in spike["phases"]] == ["preflight", "deploy test change", "detect", "decide",
                                                     "roll back", "verify", "cleanup"]
    assert all(p["outcome"] == "ok" for p in spike["phases"])
    assert spike["wrangler_command"].startswith("wrangler rollback ")
    postmortem = Path(spike["artifacts"]["postmortem"]).read_text()
    assert "## Timeline of events" in postmortem and spike["drill_id"] in postmortem
    assert f"| Time to detect (TTD) | {m['time_to_detect_s']:.1f} s |" in postmortem
    tail_log = Path(spike["artifacts"]["tail_logs"])  # the failed deployment's logs, one JSON event a line
    events = [json.loads(line) for line in tail_log.read_text().splitlines()]
    assert events and {e["scriptVersion"]["id"] for e in events} == {spike["bad_version"]["id"]}
    kinds = [m["kind"] for m in spike["messages"]]
    assert kinds[:2] == ["status page: Investigating", "status page: Identified"]
    assert "slack: rollback in progress" in kinds and "slack: rollback complete" in kinds
    assert all(m["posted"].startswith("HTTP 200") for m in spike["messages"])
    sink = httpx.get(f"{outer.base_url}/__staging/webhooks", timeout=5).json()
    assert any("ROLLBACK COMPLETE" in json.dumps(m) for m in sink["messages"])
    assert "Data Recovery restored canary/library/1" in " ".join(p["detail"] for p in found["data-loss"]["phases"])
    for negative in ("blip", "errors-before-deploy"):
        assert found[negative]["rollback"] is None, f"{negative} rolled back"
    assert found["blip"]["decision"] == "NO ACTION"
    assert found["errors-before-deploy"]["decision"] == "INVESTIGATE ROOT CAUSE"
    history = (drill_suite.path / "reports" / "history" / "drills.jsonl").read_text().splitlines()
    assert len(history) == 4


def interrupt_a_drill(drill_suite: pytest.Pytester, outer: RunningStaging) -> None:
    """Start the error-spike drill as a user does, press Ctrl-C while its test change serves, and check that
    the staging was healed and the record says interrupted, its cleanup done."""
    reports = drill_suite.path / "reports"
    env = {**os.environ, "PYTHONPATH": os.environ["PYTHONPATH"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-m", "drill", "--target", "local", "--reports-dir", str(reports),
         "-p", "no:cacheprovider", "-k", "error-spike-api_rollback", "-q"],
        cwd=drill_suite.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def test_change_serves() -> bool:  # the drill is then detecting
            state = outer.staging
            serving = state.workers.get_version(state.workers.serving_deployment().versions[0][0])
            return serving is not None and bool(serving.var("FAULT_PROFILE"))

        wait_until(test_change_serves, timeout=60, what="the drill's test change to serve",
                   still_alive=lambda: None if proc.poll() is None else f"the drill ended: {proc.communicate()[0]}")
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, output  # pytest: interrupted
    assert_healed(outer)
    (record,) = records(drill_suite.path)
    assert record["status"] == "interrupted", record["status"]
    assert record["phases"][-1]["name"] == "cleanup" and record["phases"][-1]["outcome"] == "ok"


def test_an_interrupted_drill_leaves_the_staging_healed(drill_suite: pytest.Pytester, outer: RunningStaging):
    interrupt_a_drill(drill_suite, outer)


def test_production_is_refused_without_the_override(drill_suite: pytest.Pytester, outer: RunningStaging):
    drill_suite.makefile(".toml", targets=targets_toml(outer, environment="production", synthetic_worker=True))
    result = drill_suite.runpytest_subprocess("-m", "drill", "--target", "local", "-k", "error-spike-api_rollback",
                                              "--reports-dir", str(drill_suite.path / "reports"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refusing to drill production*--drill-allow-production*"])
    assert_healed(outer)


REAL_WORKER_MODULES = {  # a worker of several modules, one of them not JavaScript
    "index.js": b'import { handle } from "./lib/router.js";\nexport default { fetch: handle };\n',
    "lib/router.js": b"export async function handle(request, env) {\r\n  return new Response(env.ENVIRONMENT);\r\n}\n",
    "data/isbn-prefixes.txt": bytes(range(256)),
}
REAL_WORKER_BINDINGS = [
    {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
    {"type": "json", "name": "LIMITS", "json": {"batch": 10}},
    {"type": "kv_namespace", "name": "KV_CACHE", "namespace_id": "0f2ac74b498b48028cb68387c421e279"},
    {"type": "analytics_engine", "name": "PERF", "dataset": "books_api_performance_staging"},
    {"type": "secret_text", "name": "ISBNDB_API_KEY", "text": "isbndb-key-7f6e5d4c3b2a"},
]


def script_url(staging: RunningStaging) -> str:
    config = staging.config
    return f"{staging.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}"


def upload(http: httpx.Client, staging: RunningStaging, modules: dict[str, bytes], **metadata: object) -> str:
    files = [("metadata", (None, json.dumps({"main_module": "index.js", **metadata}).encode(), "application/json"))]
    files += [(name, (name, code, "application/octet-stream")) for name, code in modules.items()]
    uploaded = http.post(f"{script_url(staging)}/versions", files=files)
    assert uploaded.status_code == 200, uploaded.text
    return uploaded.json()["result"]["id"]


def release_real_worker(staging: RunningStaging, tag: str, *, builds_after: int) -> str:
    """Deploy a release of a 'real' worker (several modules, every kind of binding), then upload
    ``builds_after`` newer builds of other code, not deployed (a busy CI), all over HTTP."""
    with httpx.Client(headers={"Authorization": f"Bearer {staging.config.token}"}, timeout=10, trust_env=False) as http:
        version_id = upload(http, staging, REAL_WORKER_MODULES, bindings=REAL_WORKER_BINDINGS,
                            compatibility_date="2025-10-08", compatibility_flags=["nodejs_compat"],
                            annotations={"workers/tag": tag})
        deployed = http.post(f"{script_url(staging)}/deployments", json={
            "strategy": "percentage", "versions": [{"version_id": version_id, "percentage": 100}]})
        assert deployed.status_code == 200, deployed.text
        for build in range(builds_after):
            upload(http, staging, {"index.js": f"// build {build}\n".encode()}, annotations={"workers/tag": f"b{build}"})
    return version_id


def test_a_real_worker_is_drilled_through_copies_of_its_known_stable_version(drill_suite: pytest.Pytester,
                                                                             outer: RunningStaging):
    """synthetic_worker = false: no repository and no code of ours. The known stable version, about to
    leave the 10 rollbackable versions, is re-uploaded as a copy; the test change is a copy with
    FAULT_PROFILE; Method 1 rolls back to the copy of the known stable; Methods 2 and 3 skip."""
    stable_id = release_real_worker(outer, "1.9.1", builds_after=8)
    drill_suite.makefile(".toml", targets=targets_toml(outer, known_stable="1.9.1"))
    workers = outer.staging.workers
    before = {v.id for v in workers.versions}
    result = drill_suite.runpytest_subprocess("-m", "drill", "--target", "local", "-k", "error-spike", "-rs",
                                              "--reports-dir", str(drill_suite.path / "reports"))
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([
        "*Method 2: Git Revert + Redeploy reverts or checks out the test change's commit*(local) is a copy*Method 1 only*",
        "*Method 3: Emergency Manual Deploy reverts or checks out the test change's commit*(local) is a copy*Method 1 only*",
    ])
    stable = workers.get_version(stable_id)
    new = [v for v in workers.versions if v.id not in before]
    for version in new:  # the worker's code was never replaced: every version the drill made is the stable code
        assert (version.main_module, version.modules) == ("index.js", REAL_WORKER_MODULES), version.tag
        assert (version.compatibility_date, version.compatibility_flags) == ("2025-10-08", ("nodejs_compat",))
    copy, bad = new
    assert copy.tag == "1.9.1" and copy.bindings == stable.bindings  # secrets too, values included
    assert bad.tag == "1.9.1+drill"
    profile = json.loads(bad.var("FAULT_PROFILE"))
    assert profile["error_rate"] == 0.3, profile
    assert [b for b in bad.bindings if b["name"] != "FAULT_PROFILE"] == stable.bindings
    (record,) = records(drill_suite.path)
    assert any("uploaded a copy of it" in note for note in record["healed"]), record["healed"]
    assert record["bad_version"]["id"] == bad.id and record["bad_version"]["commit"] is None
    assert record["rollback"]["method_id"] == "api_rollback" and record["rollback"]["version_id"] == copy.id
    assert workers.serving_deployment().versions == [(copy.id, 100)]
    assert_healed(outer)


def test_only_method_1_is_drilled_on_a_real_worker_and_all_three_on_a_synthetic_one():
    real = resolve_target("staging", env={})
    assert not real.synthetic_worker
    assert method_unavailable(real, "api_rollback") is None
    for method in ("git_revert", "emergency_deploy"):
        reason = method_unavailable(real, method)
        assert reason is not None and METHODS[method].name in reason and "(staging) is a copy" in reason
        assert method_unavailable(replace(real, synthetic_worker=True), method) is None


def test_a_target_without_its_kv_namespace_is_refused_naming_what_is_missing(drill_suite: pytest.Pytester,
                                                                           outer: RunningStaging):
    line = f'kv_namespace_id = "{outer.config.kv_namespace_id}"\n'
    toml = targets_toml(outer)
    assert line in toml
    drill_suite.makefile(".toml", targets=toml.replace(line, ""))
    versions, before = len(outer.staging.workers.versions), outer.staging.workers.serving_deployment().id
    result = drill_suite.runpytest_subprocess("-m", "drill", "--target", "local", "-k", "error-spike-api_rollback",
                                              "--reports-dir", str(drill_suite.path / "reports"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*missing: kv_namespace_id (set them in *[[]targets.local[]] or the environment*"])
    assert len(outer.staging.workers.versions) == versions
    assert outer.staging.workers.serving_deployment().id == before


def test_a_concurrent_drill_is_refused(drill_suite: pytest.Pytester, outer: RunningStaging):
    lock = {"owner": "someone else", "drill_id": "other-drill", "expires_at": time.time() + 600}
    outer.staging.kv.put_own("drill/lock", json.dumps(lock).encode())
    result = drill_suite.runpytest_subprocess("-m", "drill", "--target", "local", "-k", "error-spike-api_rollback",
                                              "--reports-dir", str(drill_suite.path / "reports"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drill other-drill by someone else holds the drill lock*"])
    assert outer.staging.kv.get_own("drill/lock") is not None  # not ours to release
