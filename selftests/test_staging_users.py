"""The staging's own users (staging/users.py), against real stagings on sockets: Poisson arrivals at the
configured rate, replayed by seed, through the same routes, faults, edge cache, Analytics Engine and
tail as an outside request; a fault only the users see, users exempt from the active faults, the
popular share driving the cache hit rate; the admin and command-line knobs, and /health's status."""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from bookstrack_rollback.faults import FaultProfile
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.users import ISBN_PATH, TITLE_PATH, UsersTraffic

from waiting import wait_until

SEED = 4242
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
Start = Callable[..., RunningStaging]


@pytest.fixture
def start(caplog: pytest.LogCaptureFixture) -> Iterator[Start]:
    """Start stagings with a users' traffic; stop them after the test, which must leave no pending task."""
    started: list[RunningStaging] = []

    def starter(users: UsersTraffic = UsersTraffic(), seed: int = SEED) -> RunningStaging:
        running = start_in_thread(StagingConfig(seed=seed, users=users))
        started.append(running)
        return running

    yield starter
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        for running in started:
            running.stop()
        gc.collect()
    complaints = [record.getMessage() for record in caplog.records if record.name == "asyncio"]
    assert not complaints, f"stopping the stagings left asyncio complaints: {complaints}"


def users_state(running: RunningStaging) -> dict[str, Any]:
    answer = httpx.get(f"{running.base_url}/__staging/users", timeout=TIMEOUT)
    answer.raise_for_status()
    return answer.json()


def counters(running: RunningStaging) -> dict[str, Any]:
    return users_state(running)["counters"]


def answered(running: RunningStaging) -> int:
    return sum(counters(running)["answered"].values())


def put_users(running: RunningStaging, body: Any) -> httpx.Response:
    return httpx.put(f"{running.base_url}/__staging/users", json=body, timeout=TIMEOUT)


def quiet(running: RunningStaging) -> dict[str, Any]:
    """Stop the users and wait for their last answers; the final counters."""
    put_users(running, {"rate": 0}).raise_for_status()
    wait_until(lambda: counters(running)["in_flight"] == 0, timeout=10, what="the users' last answers")
    return counters(running)


def performance(running: RunningStaging) -> dict[str, int]:
    """Counts of books_api_performance, read through the Cloudflare API's Analytics Engine SQL."""
    config = running.config
    query = (f"SELECT count() AS requests, countIf(blob3 = 'HIT') AS hits, countIf(double1 >= 500) AS errors "
             f"FROM {config.performance_dataset}")
    answer = httpx.post(f"{running.cloudflare_api_url}/accounts/{config.account_id}/analytics_engine/sql",
                        content=query, headers={"Authorization": f"Bearer {config.token}"}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return {name: int(value) for name, value in answer.json()["data"][0].items()}


def bookstrack_log(running: RunningStaging) -> list[dict[str, Any]]:
    answer = httpx.get(f"{running.base_url}/__staging/requests", params={"api": "bookstrack"}, timeout=TIMEOUT)
    return answer.json()["requests"]


def outside_search(running: RunningStaging) -> int:
    return httpx.get(f"{running.base_url}{TITLE_PATH}", params={"q": "hamlet"}, timeout=TIMEOUT).status_code


# --- arrivals -------------------------------------------------------------------------------------------
def test_users_arrive_at_the_configured_rate_with_random_gaps_and_reach_analytics(start: Start):
    rate = 150.0
    running = start()
    assert counters(running)["sent"] == 0  # off by default
    began = time.monotonic()
    assert put_users(running, {"rate": rate}).status_code == 200
    wait_until(lambda: counters(running)["sent"] >= 300, timeout=15, what="300 users' requests")
    final = quiet(running)
    expected = rate * (time.monotonic() - began)
    assert abs(final["sent"] - expected) <= 4 * math.sqrt(expected) + 0.1 * expected, (final, expected)
    assert final["answered"] == {"2xx": final["sent"], "4xx": 0, "5xx": 0} and final["skipped"] == 0, final
    # every users' request went through the worker's telemetry (nobody else sent any)
    assert performance(running)["requests"] == final["sent"]
    arrivals = sorted(record["at"] for record in bookstrack_log(running))
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    mean = statistics.fmean(gaps)
    # exponential gaps: coefficient of variation ~1, many short and some long ones; paced ones ~0
    assert statistics.pstdev(gaps) / mean > 0.6, (mean, statistics.pstdev(gaps))
    assert min(gaps) < 0.2 * mean and max(gaps) > 2.5 * mean, (min(gaps), max(gaps), mean)


def test_the_same_seed_sends_the_same_searches_from_documentation_addresses(start: Start):
    users = UsersTraffic(rate=200.0, seed=7)
    stagings = [start(users), start(users), start(replace(users, seed=8))]
    for running in stagings:
        wait_until(lambda: len(bookstrack_log(running)) >= 60, timeout=10, what="60 users' requests")
    first, again, other = ([(r["path"], r["query"]) for r in bookstrack_log(s)[:60]] for s in stagings)
    assert first == again
    assert first != other
    assert {path for path, _ in first} == {TITLE_PATH, ISBN_PATH}
    assert len(set(first)) < len(first)  # popular searches come back
    # the default seed is derived from the staging's seed
    assert UsersTraffic().effective_seed(SEED) == UsersTraffic().effective_seed(SEED)
    assert UsersTraffic().effective_seed(SEED) != UsersTraffic().effective_seed(SEED + 1)


def test_users_requests_reach_the_tail_as_any_request_does(start: Start):
    running = start(UsersTraffic(rate=100.0))
    config = running.config
    created = httpx.post(
        f"{running.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}/tails",
        headers={"Authorization": f"Bearer {config.token}"}, content=b"{}", timeout=TIMEOUT,
    )
    assert created.status_code == 200, created.text
    with connect(created.json()["result"]["url"], subprotocols=["trace-v1"], proxy=None, open_timeout=5) as ws:
        ws.send(json.dumps({"debug": False}))
        events = [json.loads(ws.recv(timeout=5)) for _ in range(20)]
    addresses = {event["event"]["request"]["headers"]["cf-connecting-ip"] for event in events}
    assert all(address.startswith("203.0.113.") for address in addresses), addresses
    assert len(addresses) > 1
    assert {event["outcome"] for event in events} == {"ok"}


# --- faults -----------------------------------------------------------------------------------------------
def test_a_users_fault_reaches_the_users_at_its_rate_and_nobody_else(start: Start):
    running = start(UsersTraffic(rate=150.0, fault=FaultProfile(error_rate=0.3, share_5xx=1.0)))
    outside: list[int] = []

    def enough() -> bool:
        outside.append(outside_search(running))  # outside requests all along
        return answered(running) >= 400

    wait_until(enough, timeout=15, what="400 users' answers")
    final = quiet(running)
    total = sum(final["answered"].values())
    assert abs(final["answered"]["5xx"] / total - 0.3) < 0.08, final
    assert final["answered"]["4xx"] == 0
    assert len(outside) > 5 and set(outside) == {200}, outside
    assert performance(running)["errors"] == final["answered"]["5xx"]  # the outside ones wrote no error


def test_exempt_users_keep_succeeding_through_a_runtime_fault_and_the_others_see_it(start: Start):
    running = start(UsersTraffic(rate=150.0, exempt=True))
    fault = httpx.put(f"{running.base_url}/__staging/faults", json={"error_rate": 1.0}, timeout=TIMEOUT)
    assert fault.status_code == 200
    during = answered(running)
    wait_until(lambda: answered(running) >= during + 150, timeout=10, what="150 exempt users' answers")
    assert counters(running)["answered"]["5xx"] == 0
    assert {outside_search(running) for _ in range(5)} == {500}

    assert put_users(running, {"rate": 150.0}).status_code == 200  # no longer exempt
    before = counters(running)["answered"]
    wait_until(lambda: answered(running) >= sum(before.values()) + 150, timeout=10, what="150 users' answers")
    after = counters(running)["answered"]
    new = {status: after[status] - before[status] for status in after}
    assert new["5xx"] / sum(new.values()) > 0.95, new


# --- the edge cache -------------------------------------------------------------------------------------
def hit_share_of_next(running: RunningStaging, requests: int) -> float:
    """The HIT share of books_api_performance over the next ``requests`` users' requests."""
    start_counts = performance(running)
    wait_until(lambda: performance(running)["requests"] >= start_counts["requests"] + requests,
               timeout=10, what=f"{requests} more users' requests in Analytics Engine")
    end_counts = performance(running)
    return (end_counts["hits"] - start_counts["hits"]) / (end_counts["requests"] - start_counts["requests"])


def test_the_popular_share_drives_the_users_cache_hit_rate(start: Start):
    running = start(UsersTraffic(rate=200.0, popular_share=0.9))
    wait_until(lambda: answered(running) >= 100, timeout=10, what="the cache's warm-up")
    assert hit_share_of_next(running, 200) > 0.7
    assert put_users(running, {"rate": 200.0, "popular_share": 0.1}).status_code == 200
    assert hit_share_of_next(running, 200) < 0.4


# --- admin ------------------------------------------------------------------------------------------------
BAD_BODIES = [
    ({"rate": 900}, ["rate", "900"]),
    ({"rate": "fast"}, ["rate", "'fast'"]),
    ({"rate": True}, ["rate", "True"]),
    ({"popular_share": 1.5}, ["popular_share", "1.5"]),
    ({"exempt": "yes"}, ["exempt", "'yes'"]),
    ({"seed": 1.5}, ["seed", "1.5"]),
    ({"fault": {"error_rate": 2}}, ["fault", "error_rate", "2"]),
    ({"fault": {"data_loss": ["canary/library/1"]}}, ["fault.data_loss", "canary/library/1"]),
    ({"fault": {"error_rate": 0.1, "duration_s": 30}}, ["fault.duration_s", "30"]),
    ({"speed": 5}, ["unknown", "speed"]),
    ([1, 2], ["JSON object", "list"]),
]


def test_bad_users_bodies_are_400_naming_the_field_and_change_nothing(start: Start):
    running = start()
    good = {"rate": 0, "popular_share": 0.5, "exempt": True, "seed": 3, "fault": {"error_rate": 0.2}}
    assert put_users(running, good).status_code == 200
    configured = users_state(running)["users"]
    assert configured["popular_share"] == 0.5 and configured["fault"]["error_rate"] == 0.2
    for body, fragments in BAD_BODIES:
        answer = put_users(running, body)
        assert answer.status_code == 400, (body, answer.text)
        message = answer.json()["error"]
        assert all(fragment in message for fragment in fragments), (body, message)
    not_json = httpx.put(f"{running.base_url}/__staging/users", content=b"{rate: 5", timeout=TIMEOUT)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    assert users_state(running)["users"] == configured
    info = httpx.get(f"{running.base_url}/__staging/info", timeout=TIMEOUT).json()
    assert info["users"] == configured and running.config.users.exempt is True
    assert counters(running)["sent"] == 0


def test_health_status_degraded_is_served_in_both_shapes(start: Start):
    running = start()
    config_url, health_url = f"{running.base_url}/__staging/config", f"{running.base_url}/health"
    assert httpx.get(health_url, timeout=TIMEOUT).json()["data"]["status"] == "ok"
    bad = httpx.patch(config_url, json={"health_status": "sick"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "health_status" in bad.json()["error"] and "'sick'" in bad.json()["error"]
    patched = httpx.patch(config_url, json={"health_status": "degraded"}, timeout=TIMEOUT)
    assert patched.status_code == 200 and patched.json()["health_status"] == "degraded"
    enveloped = httpx.get(health_url, timeout=TIMEOUT)
    assert enveloped.status_code == 200 and enveloped.json()["data"]["status"] == "degraded"
    httpx.patch(config_url, json={"health_shape": "constant"}, timeout=TIMEOUT).raise_for_status()
    constant = httpx.get(health_url, timeout=TIMEOUT)
    assert constant.status_code == 200
    assert constant.json()["status"] == "degraded" and constant.json()["version"] == "1.0.0"


def banner_of(proc: subprocess.Popen[str]) -> list[str]:
    """The command line staging's start-up lines, up to the admin URL that ends them."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "admin:" not in lines[-1]:
        line = proc.stdout.readline()
        assert line and len(lines) < 20, f"no banner; got {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def test_command_line_users_rate_is_printed_sent_and_stopped_on_ctrl_c():
    with subprocess.Popen(
        [sys.executable, "-m", "bookstrack_rollback.staging", "--port", "0", "--users-rate", "50",
         "--users-popular-share", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            lines = banner_of(proc)
            assert "  users' traffic:          50 requests/s, 50% popular searches" in lines, lines
            base = next(line.split()[-1] for line in lines if "BooksTrack base URL" in line)

            def sent() -> int:
                return httpx.get(f"{base}/__staging/users", timeout=TIMEOUT).json()["counters"]["sent"]

            wait_until(lambda: sent() >= 20, timeout=10, what="20 users' requests from the command line staging")
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=15)[0]
            assert proc.returncode == 0, rest
            assert "Embedded staging stopped." in rest
            assert "Traceback" not in rest and "Task was destroyed" not in rest, rest
        finally:
            if proc.poll() is None:
                proc.kill()
