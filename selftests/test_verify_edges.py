"""`pytest -m verify` at its edges: read-only, secret-free, too little traffic, analytics down, and a
target that accepts connections but never answers. Each runs the real suite (pytester) against a
staging started here, named in a targets.toml as a user would name a real target."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bookstrack_rollback.clients.cloudflare import CloudflareApi
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.preparation import copy
from bookstrack_rollback.faults import RUNTIME_FLAG_KEY, FaultProfile
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.users import UsersTraffic
from matrix import verdicts_from_junit
from waiting import wait_until
from outer_targets import targets_toml

# pytester runs that each start a staging and probe it hard: one at a time (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
VERIFY_TESTS = (ROOT / "tests" / "test_verify.py").read_text()
SECRET_TOKEN = "edge-case-token-5f3b9c1d7e"


@pytest.fixture
def outer() -> Iterator[RunningStaging]:
    """A staging with users of its own, as a real target has."""
    running = start_in_thread(StagingConfig(seed=77, token=SECRET_TOKEN, users=UsersTraffic(rate=20.0)))
    yield running
    running.stop()


def run_verify(suite: pytest.Pytester, toml: str, *args: str, token: str = SECRET_TOKEN):
    suite.makepyfile(test_verify=VERIFY_TESTS)
    suite.makefile(".toml", targets=toml)
    junit = suite.path / "junit.xml"
    alluredir = suite.path / "allure-results"
    os.environ["CLOUDFLARE_API_TOKEN"] = token
    os.environ["CLOUDFLARE_ACCOUNT_ID"] = StagingConfig().account_id
    try:
        started = time.monotonic()
        result = suite.runpytest_subprocess("-m", "verify", "--target", "local", f"--junitxml={junit}",
                                            f"--alluredir={alluredir}", "-p", "no:cacheprovider", *args)
        elapsed = time.monotonic() - started
    finally:
        del os.environ["CLOUDFLARE_API_TOKEN"], os.environ["CLOUDFLARE_ACCOUNT_ID"]
    assert junit.exists(), result.stdout.str()[-2000:]
    return verdicts_from_junit(junit), result, elapsed


def test_verify_changes_nothing_and_leaks_no_token(suite: pytest.Pytester, outer: RunningStaging):
    before = outer.staging.workers.serving_deployment().id
    since = time.time()
    verdicts, result, _ = run_verify(suite, targets_toml(outer))
    assert {v for v, _ in verdicts.values()} == {"PASS"}, verdicts
    log = httpx.get(f"{outer.base_url}/__staging/requests", params={"since": since}, timeout=5).json()["requests"]
    writes = {(r["method"], r["path"]) for r in log
              if r["method"] not in ("GET", "WEBSOCKET") and r["api"] != "admin"}
    sql = f"/client/v4/accounts/{outer.config.account_id}/analytics_engine/sql"
    assert writes <= {("POST", "/v1/enrichment/batch"), ("POST", sql)}, f"verify wrote to the target: {writes}"
    assert outer.staging.workers.serving_deployment().id == before
    assert len(log) > 500  # it did probe
    # the token is in no output, report or attachment
    leaks = [str(p) for p in suite.path.rglob("*") if p.is_file() and SECRET_TOKEN.encode() in p.read_bytes()]
    assert not leaks, f"the Cloudflare token leaked into {leaks}"
    assert SECRET_TOKEN not in result.stdout.str() + result.stderr.str()


def test_too_little_traffic_is_inconclusive_never_pass(suite: pytest.Pytester, outer: RunningStaging):
    verdicts, _, _ = run_verify(suite, targets_toml(outer), "--probe-rate", "3")
    for check in ("error_rate[probes-error rate]", "error_rate[probes-5xx rate]", "response_time[title:hamlet]",
                  "response_time[title:<faker>]"):
        assert verdicts[check][0] == "INCONCLUSIVE", (check, verdicts[check])
        assert "Next:" in verdicts[check][1]
    # the users' own traffic is enough for the analytics-based checks, whatever the probes
    assert verdicts["cache_performance"][0] == "PASS", verdicts["cache_performance"]


def test_analytics_down_is_a_checker_error_not_a_service_failure(suite: pytest.Pytester, outer: RunningStaging):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/client/v4"
    verdicts, _, _ = run_verify(suite, targets_toml(outer, cloudflare_api_url=dead))
    for check in ("version_identity", "error_rate[analytics-error rate]", "cache_performance", "signal_sanity",
                  "data_integrity[canary/library/1]"):
        assert verdicts[check][0] == "ERROR", (check, verdicts[check])
    assert verdicts["error_rate[probes-error rate]"][0] == "PASS"
    assert "Unreachable" in verdicts["version_identity"][1] or "ConnectError" in verdicts["version_identity"][1]


def test_refused_credentials_are_a_checker_error(suite: pytest.Pytester, outer: RunningStaging):
    verdicts, result, _ = run_verify(suite, targets_toml(outer), token="wrong-token-123456789")
    assert verdicts["version_identity"][0] == "ERROR"
    assert "Authentication error" in verdicts["version_identity"][1]
    assert "CLOUDFLARE_API_TOKEN" in verdicts["version_identity"][1]  # says what to do
    assert "wrong-token-123456789" not in result.stdout.str()


def test_a_target_that_never_answers_fails_within_its_timeout(suite: pytest.Pytester, outer: RunningStaging):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(512)  # accepts connections (the kernel does), never answers
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        hung.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(hung.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        verdicts, _, elapsed = run_verify(suite, targets_toml(outer, base_url=url), "--probe-rate", "20")
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        hung.close()
    assert verdicts["health_check"][0] == "FAIL"
    assert "no answer within the timeout" in verdicts["health_check"][1]
    assert verdicts["response_time[title:hamlet]"][0] == "FAIL"
    assert verdicts["websocket_connectivity"][0] == "INCONCLUSIVE"  # no token could be had: socket untested
    assert elapsed < 60, f"a hung target took {elapsed:.0f}s to fail"


def run_triage(suite: pytest.Pytester, outer: RunningStaging, *args: str) -> pytest.RunResult:
    suite.makepyfile(test_triage=(ROOT / "tests" / "test_triage.py").read_text())
    suite.makefile(".toml", targets=targets_toml(outer))
    os.environ["CLOUDFLARE_API_TOKEN"] = SECRET_TOKEN
    os.environ["CLOUDFLARE_ACCOUNT_ID"] = StagingConfig().account_id
    try:
        return suite.runpytest_subprocess("-m", "triage", "--target", "local", "-p", "no:cacheprovider", *args)
    finally:
        del os.environ["CLOUDFLARE_API_TOKEN"], os.environ["CLOUDFLARE_ACCOUNT_ID"]


def test_triage_changes_nothing_either(suite: pytest.Pytester, outer: RunningStaging):
    before = outer.staging.workers.serving_deployment().id
    since = time.time()
    result = run_triage(suite, outer)
    result.stdout.fnmatch_lines(["*triage: do we roll back?*", "DECISION: NO ACTION"])
    log = httpx.get(f"{outer.base_url}/__staging/requests", params={"since": since}, timeout=5).json()["requests"]
    sql = f"/client/v4/accounts/{outer.config.account_id}/analytics_engine/sql"
    writes = [(r["method"], r["path"]) for r in log if r["method"] not in ("GET", "WEBSOCKET") and r["api"] != "admin"]
    # the only write: the one enrichment job whose token the WebSocket trigger's handshakes use (opted in)
    assert set(writes) <= {("POST", sql), ("POST", "/v1/enrichment/batch")}, f"triage wrote to the target: {writes}"
    assert writes.count(("POST", "/v1/enrichment/batch")) <= 1, writes
    assert outer.staging.workers.serving_deployment().id == before
    assert SECRET_TOKEN not in result.stdout.str() + result.stderr.str()


def test_triage_sees_one_real_socket_handshake_in_four_fail(suite: pytest.Pytester, outer: RunningStaging):
    """A socket that answers 500 to one valid handshake in four: a made-up token's 401 would have read
    healthy; the real token's handshakes breach the 10% trigger."""
    outer.staging.kv.put_own(RUNTIME_FLAG_KEY, b'{"ws_failure_rate": 0.25, "label": "one socket in four fails"}')
    # time scale 0.05: a 15 s window, about 150 handshakes, so that 25% is told apart from 10%
    result = run_triage(suite, outer, "-k", "websocket_failures", "-rA", "--time-scale", "0.05")
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert "FAIL: WebSocket failure rate" in output and "real-token handshakes exceeds the >10%" in output, output[-3000:]


def users_see_5xx(outer: RunningStaging, share: float) -> None:
    """A new version deployed (a copy of the serving one), and from then on the users' 5xx (the probes never
    see them): an issue that began after the latest deployment."""
    async def deploy() -> None:
        async with CloudflareApi(outer.cloudflare_api_url, account_id=outer.config.account_id,
                                 token=Secret(SECRET_TOKEN), worker=outer.config.worker_name) as api:
            serving = await api.version((await api.serving()).main_version_id)
            new = await copy(api, serving, {}, tag="2.0.0", message="a new version")
            outer.staging.configure_users(UsersTraffic(rate=20.0, fault=FaultProfile(
                error_rate=share, share_5xx=1.0, label=f"users' {share:.0%} 5xx")))
            await api.deploy(new.id, "users' 5xx begin")

    def sent() -> int:
        return httpx.get(f"{outer.base_url}/__staging/users", timeout=5).json()["counters"]["sent"]

    before = sent()  # a history before the deployment: 40 more of the users' clean requests
    wait_until(lambda: sent() >= before + 40, timeout=30, what="the users' requests before the deployment")
    asyncio.run(deploy())


def test_triage_rolls_back_on_what_users_see_though_the_probes_see_nothing(suite: pytest.Pytester, outer: RunningStaging):
    users_see_5xx(outer, 0.2)  # the users' own fault: the probes are never answered 500
    result = run_triage(suite, outer, "-rA")
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    decision = output[output.index("DECISION: "):].splitlines()[0]
    assert decision in ("DECISION: ROLLBACK NOW", "DECISION: GET APPROVAL"), output[-3000:]
    assert "FAIL: users' 5xx rate " in output and "exceeds the >5% threshold; probes: 5xx rate 0.0%" in output
    assert "probes: 5xx rate 0.0%" in output and "users and probes disagree beyond their intervals" in output


def test_triage_in_doubt_says_keep_watching_and_does_not_pass(suite: pytest.Pytester, outer: RunningStaging):
    users_see_5xx(outer, 0.06)  # over the 5% trigger, too close to tell in a 6 s window of ~120 users' requests
    result = run_triage(suite, outer, "-rA")
    output = result.stdout.str()
    assert "DECISION: KEEP WATCHING" in output, output[-3000:]
    # in doubt on a trigger, or confirmed but not yet known to last: either way it says what decides it
    assert "more at the current traffic would decide it" in output or "look again" in output, output[-3000:]
    assert "INCONCLUSIVE: KEEP WATCHING" in output and result.ret != 0  # never green: doubt is not an all-clear
