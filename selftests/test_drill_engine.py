"""The drill engine: a journal whose phases close in ``finally`` and are saved after each, listeners
that subscribe to the drill, and the run's named random streams that replay a drill from its seed."""

from __future__ import annotations

import dataclasses
import re
import json
from collections import Counter
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from waiting import wait_until

from bookstrack_rollback.config import SuiteSettings, TargetOverrides, resolve_suite_settings
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.journal import DrillListener
from bookstrack_rollback.drill.record import ERROR, DrillRecord, PhaseRecord, RecordStore
from bookstrack_rollback.drill.preparation import DrillError
from bookstrack_rollback.drill.runner import DrillOptions, run_drill
from bookstrack_rollback.drill.scenarios import load_scenarios
from bookstrack_rollback.faults import RUNTIME_FLAG_KEY
from bookstrack_rollback.pytest_plugin.settings import EMBEDDED_USERS
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread

# each test drives real drills against a staging: one at a time (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
TOKEN = "drill-engine-token-3c4d5e6f"
ERROR_SPIKE = next(s for s in load_scenarios() if s.name == "error-spike")


@pytest.fixture
def staging() -> Iterator[RunningStaging]:
    running = start_in_thread(StagingConfig(seed=5, token=TOKEN, users=EMBEDDED_USERS))
    yield running
    running.stop()


def settings_for(running: RunningStaging, seed: int = 20251115) -> SuiteSettings:
    base = resolve_suite_settings(target=None, overrides=TargetOverrides(), seed=seed, targets_file=None,
                                  runbook_file=None, env={})
    target = base.target.bound(base_url=running.base_url, cloudflare_api_url=running.cloudflare_api_url,
                               account_id=running.config.account_id, worker=running.config.worker_name,
                               token=Secret(TOKEN), kv_namespace_id=running.config.kv_namespace_id)
    return SuiteSettings(target=target, runbook=base.runbook, seed=seed)


def saved(reports: Path) -> dict:
    (path,) = (reports / "drills").glob("*Z-*.json")
    return json.loads(path.read_text())


class FailIn(DrillListener):
    """A listener that breaks one phase, as a bug of the drill would."""

    def __init__(self, phase: str) -> None:
        self.phase = phase

    async def phase_started(self, record: DrillRecord, phase: PhaseRecord) -> None:
        if phase.name == self.phase:
            raise RuntimeError(f"boom in {phase.name}")


def test_a_phase_that_raises_is_closed_with_its_error_and_cleanup_still_runs(staging, tmp_path):
    with pytest.raises(RuntimeError, match="boom in detect"):
        run_drill(settings_for(staging), ERROR_SPIKE, "api_rollback", DrillOptions(reports=tmp_path),
                  [FailIn("detect")])
    record = saved(tmp_path)
    phases = {p["name"]: p for p in record["phases"]}
    assert [p["name"] for p in record["phases"]] == ["preflight", "deploy test change", "detect", "cleanup"]
    detect = phases["detect"]
    assert (detect["outcome"], detect["detail"]) == ("error", "RuntimeError: boom in detect")
    assert detect["ended_at"] >= detect["started_at"], "the phase that raised has its end time"
    assert phases["cleanup"]["outcome"] == "ok"
    assert record["status"] == ERROR and "boom in detect" in record["failure"]
    serving = staging.staging.workers.serving_deployment().versions
    version = staging.staging.workers.get_version(serving[0][0])
    assert version is not None and version.var("FAULT_PROFILE") is None, "cleanup put the known stable back"
    assert staging.staging.kv.get_own(RUNTIME_FLAG_KEY) is None


KILLED_DRILL = """
import sys
from pathlib import Path
sys.path.insert(0, {selftests!r})
from test_drill_engine import ERROR_SPIKE, settings_for
from bookstrack_rollback.drill.runner import DrillOptions, run_drill
from bookstrack_rollback.staging.server import RunningStaging

class Outer:  # the staging of the test, by its URLs
    base_url = {base!r}
    cloudflare_api_url = {base!r} + "/client/v4"
    class config:
        account_id, worker_name, kv_namespace_id = {account!r}, {worker!r}, {namespace!r}

# a short lease: the lock of a drill that dies expires soon, and the next drill takes it over
run_drill(settings_for(Outer), ERROR_SPIKE, "api_rollback", DrillOptions(reports=Path({reports!r}), lock_lease_s=3))
"""


def test_a_drill_killed_between_phases_leaves_every_finished_phase_saved(staging, tmp_path):
    config = staging.config
    code = KILLED_DRILL.format(selftests=str(Path(__file__).parent), base=staging.base_url,
                               account=config.account_id, worker=config.worker_name,
                               namespace=config.kv_namespace_id, reports=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)

    def deployed() -> bool:
        try:
            return any(p["name"] == "deploy test change" and p["ended_at"] for p in saved(tmp_path)["phases"])
        except (ValueError, OSError, KeyError):  # not written yet, or being replaced
            return False

    try:
        wait_until(deployed, timeout=60, what="the drill to finish deploying its test change",
                   still_alive=lambda: None if proc.poll() is None else f"the drill ended ({proc.returncode})")
        proc.send_signal(signal.SIGKILL)  # no cleanup, no last save: only what was saved after each phase
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    record = saved(tmp_path)
    finished = [(p["name"], p["outcome"]) for p in record["phases"] if p["ended_at"]]
    assert finished[:2] == [("preflight", "ok"), ("deploy test change", "ok")], record["phases"]
    assert record["status"] == "running"  # it died: the next drill's preflight marks it interrupted
    # and the next drill does, once the dead drill's lock has expired, healing the staging it left faulty
    lock = json.loads(staging.staging.kv.get_own("drill/lock") or b"{}")
    wait_until(lambda: time.time() > lock.get("expires_at", 0), timeout=10, what="the dead drill's lock to expire")
    healed = run_drill(settings_for(staging), next(s for s in load_scenarios() if s.name == "blip"), "api_rollback",
                       DrillOptions(reports=tmp_path))
    assert any("marked interrupted" in note for note in healed.healed), healed.healed
    assert any("redeployed" in note for note in healed.healed), healed.healed  # its faulty version was serving
    assert RecordStore(tmp_path).history_lines()[-1]["drill_id"] == healed.drill_id


def probe_schedule(running: RunningStaging, since: float, count: int = 120) -> list[tuple[str, str]]:
    """The first probe requests the staging saw (path and query), in the order they came (the staging's
    own users connect from addresses of their own)."""
    log = httpx.get(f"{running.base_url}/__staging/requests", params={"since": since, "api": "bookstrack"},
                    timeout=10).json()["requests"]
    return [(r["path"], r["query"]) for r in log
            if r["method"] == "GET" and r["path"] != "/ws/progress" and r["client"] == "127.0.0.1"][:count]


def drill_with_seed(running: RunningStaging, seed: int, reports: Path) -> tuple[list[tuple[str, str]], DrillRecord]:
    httpx.post(f"{running.base_url}/__staging/reset", json={"seed": 5}, timeout=10).raise_for_status()
    since = time.time()
    record = run_drill(settings_for(running, seed), ERROR_SPIKE, "api_rollback", DrillOptions(reports=reports))
    return probe_schedule(running, since), record


def test_the_same_seed_replays_the_probe_schedule_and_the_decisions(staging, tmp_path):
    first, one = drill_with_seed(staging, 42, tmp_path / "one")
    again, two = drill_with_seed(staging, 42, tmp_path / "two")
    other, three = drill_with_seed(staging, 43, tmp_path / "three")
    # the same probes (at 150 a second two neighbours may reach the staging in either order)
    assert len(first) == 120 and not Counter(first[:100]) - Counter(again), "the same --seed sends the same probes"
    assert other != first and len(set(other) & set(first)) < 60, "another seed, another schedule"
    decisions = [(r.decision, r.decision_path, [t.id for t in r.triggers if t.fires]) for r in (one, two)]
    assert decisions[0] == decisions[1] and one.decision == "ROLLBACK NOW"
    assert one.seed == two.seed == 42 and three.seed == 43


# --- issue 11: the trigger a scenario names, and a verification that judges what verify judges ----------

def test_a_drill_fails_when_its_named_trigger_never_confirms_and_another_confirms_first(staging, tmp_path):
    """The error spike's fault, named as a socket failure: detection, decision and rollback all work, and
    the drill still fails, saying which trigger confirmed and which never did."""
    misnamed = dataclasses.replace(ERROR_SPIKE, name="misnamed", triggers=("websocket_failures",))
    record = run_drill(settings_for(staging), misnamed, "api_rollback", DrillOptions(reports=tmp_path))
    assert record.status == "failed" and record.decision == "ROLLBACK NOW"
    assert "the websocket_failures trigger never confirmed" in record.failure
    # the error rate confirmed first: its 5-10% band on the way to the spike, or the spike itself
    assert re.search(r"(error_rate_spike|moderate_error_rate) confirmed first", record.failure), record.failure
    spike = next(t for t in record.triggers if t.id == "error_rate_spike")
    assert spike.detected_after_s is not None and not spike.expected  # TTD per trigger, named or not
    assert next(t for t in record.triggers if t.id == "websocket_failures").expected


def test_the_drills_verification_runs_every_check_of_verify(staging, tmp_path):
    record = run_drill(settings_for(staging), ERROR_SPIKE, "api_rollback", DrillOptions(reports=tmp_path))
    assert record.status == "passed", record.failure
    names = [c.check for c in record.verification]
    assert names == ["health check", "version identity", "error rate (probes)", "5xx rate (probes)",
                     "error rate (analytics)", "5xx rate (analytics)", "response time P95 [title:hamlet]",
                     "response time P95 [isbn:9780743273565]", "response time P95 [advanced:<known>]",
                     "known records found", "websocket connectivity", "websocket refuses a bogus token",
                     "cache hit rate", *(f"data integrity [{key}]" for key, _ in settings_for(staging).target.canaries),
                     "signal sanity"]
    assert all(c.verdict == "PASS" for c in record.verification)
    sockets = next(c for c in record.verification if c.check == "websocket connectivity")
    assert "real-token handshakes connected" in sockets.sentence
    detect = next(t for t in record.triggers if t.id == "error_rate_spike")
    assert detect.expected and detect.detected_after_s == pytest.approx(record.measures.time_to_detect_s)


class CacheStaysOff(DrillListener):
    """As the rollback begins to serve, the cache breaks on its own (a runtime fault no rollback removes)."""

    def __init__(self, running: RunningStaging) -> None:
        self.running = running

    async def rollback_serving(self, record: DrillRecord, facts: object) -> None:
        self.running.staging.kv.put_own(RUNTIME_FLAG_KEY, b'{"cache_off": true, "label": "cache still off"}')


def test_the_cache_failure_drill_is_not_verified_while_the_cache_is_still_off(staging, tmp_path):
    cache_failure = next(s for s in load_scenarios() if s.name == "cache-failure")
    with pytest.raises(DrillError, match="verification did not pass within 5 runbook minutes"):
        run_drill(settings_for(staging), cache_failure, "api_rollback", DrillOptions(reports=tmp_path),
                  [CacheStaysOff(staging)])
    record = saved(tmp_path)
    verdicts = {c["check"]: c["verdict"] for c in record["verification"]}
    assert verdicts["cache hit rate"] == "FAIL", record["verification"]
    assert record["measures"]["time_to_rollback_s"] is None  # never verified: no TTR
    assert staging.staging.kv.get_own(RUNTIME_FLAG_KEY) is None  # cleanup healed it
