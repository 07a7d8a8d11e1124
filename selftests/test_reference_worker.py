"""The reference BooksTrack Worker (drills/reference-worker/) in the real runtime: a staging started with
``runtime="workerd"`` runs it as its seeded history's code, and each answer is compared with what the
Python emulation (a staging in python mode, same seed, same catalogue) answers for the same request:
status codes, bodies (less timestamps, processing times and tokens), progress-socket messages, KV
results, and the Analytics Engine rows read back through each staging's SQL. Then every fault kind of
the staging hook (drills/staging-hook/fault-hook.mjs), acted out inside workerd from a version whose
FAULT_PROFILE is set or from the runtime KV flag.

A workerd instance outlives a staging reset (same seed, same version ids, same code: the same
instance), and with it its edge cache, its Durable Objects and its hook state: so every test asks its
own queries, from its own client IPs, with fault profiles labelled by the test. Every wait polls a
condition against a deadline; every network call has a timeout.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from waiting import wait_until
from bookstrack_rollback.faults import RUNTIME_FLAG_KEY
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.workerd import spec

pytestmark = pytest.mark.xdist_group("workerd")

SEED = 1234
TIMEOUT = 30.0
CANARY = "canary/library/1"
_ips = itertools.count(1)
_marks = itertools.count(1)


def fresh_ip() -> str:
    """A client IP no earlier request of this module used (the rate limit counts per IP)."""
    n = next(_ips)
    return f"203.0.{n // 250}.{n % 250 + 1}"


class Side:
    """One staging as a client sees it: the BooksTrack API, its SQL, its KV, its Cloudflare API."""

    def __init__(self, running: RunningStaging) -> None:
        self.running = running
        self.staging = running.staging
        config = running.config
        self.http = httpx.Client(base_url=running.base_url, timeout=TIMEOUT)
        self.api = httpx.Client(headers={"Authorization": f"Bearer {config.token}"}, timeout=TIMEOUT)
        self.account = f"{running.cloudflare_api_url}/accounts/{config.account_id}"
        self.scripts = f"{self.account}/workers/scripts/{config.worker_name}"

    def close(self) -> None:
        self.http.close()
        self.api.close()

    def ws(self, path: str) -> str:
        return self.running.base_url.replace("http://", "ws://", 1) + path

    def rows(self, query: str) -> list[dict[str, Any]]:
        answer = self.api.post(f"{self.account}/analytics_engine/sql", content=f"{query} FORMAT JSON")
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def performance(self) -> Counter[tuple[Any, ...]]:
        rows = self.rows("SELECT blob1, blob2, blob3, double1 FROM books_api_performance")
        return Counter((r["blob1"], r["blob2"], r["blob3"], r["double1"]) for r in rows)

    def cache_events(self) -> Counter[tuple[Any, ...]]:
        return Counter((r["index1"], r["blob1"], r["blob2"]) for r in self.rows(
            "SELECT index1, blob1, blob2 FROM books_api_cache_metrics"))

    def deploy(self, tag: str, **variables: str) -> str:
        """Upload the reference Worker with these variables and deploy it to 100%; its version id."""
        config = self.running.config
        main, modules = spec.reference_modules()
        bindings = [b for b in spec.reference_bindings(
            kv_namespace=config.kv_namespace_id, performance_dataset=config.performance_dataset,
            cache_dataset=config.cache_dataset, health_shape=variables.pop("HEALTH_SHAPE", "version"),
            health_status=variables.pop("HEALTH_STATUS", "ok"),
        )]
        bindings += [{"type": "plain_text", "name": name, "text": text} for name, text in variables.items()]
        metadata = {"main_module": main, "bindings": bindings, "annotations": {"workers/tag": tag},
                    "compatibility_date": "2025-09-01"}
        files = [("metadata", (None, json.dumps(metadata), "application/json"))]
        files += [(name, (name, code, "application/javascript+module")) for name, code in modules.items()]
        upload = self.api.post(f"{self.scripts}/versions", files=files)
        assert upload.status_code == 200, upload.text
        version = upload.json()["result"]["id"]
        body = {"strategy": "percentage", "versions": [{"version_id": version, "percentage": 100}]}
        deployed = self.api.post(f"{self.scripts}/deployments", params={"force": "true"}, json=body)
        assert deployed.status_code == 200, deployed.text
        return version


def start(runtime: str) -> RunningStaging:
    try:
        return start_in_thread(StagingConfig(seed=SEED, runtime=runtime))
    except Exception as exc:  # no Node or no node_modules: say why
        pytest.skip(f"the {runtime} staging cannot start here: {exc}")


@pytest.fixture(scope="module")
def workerd_staging() -> Iterator[RunningStaging]:
    running = start("workerd")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def python_staging() -> Iterator[RunningStaging]:
    running = start("python")
    yield running
    running.stop()


def reset(side: Side) -> None:
    side.http.post("/__staging/reset", json={"seed": SEED}).raise_for_status()


@pytest.fixture
def worker(workerd_staging: RunningStaging) -> Iterator[Side]:
    """The workerd staging, reset; the earlier tests' data points have all landed before the reset."""
    side = Side(workerd_staging)
    mark = f"/__mark-{next(_marks)}"
    side.http.get(mark)  # 404, or whatever the previous test's version answers: a data point either way
    wait_until(lambda: any(key[0] == mark for key in side.performance()), timeout=15,
               what=f"the data point of {mark} (every earlier point has landed)")
    reset(side)
    yield side
    side.close()


@pytest.fixture
def emulation(python_staging: RunningStaging) -> Iterator[Side]:
    side = Side(python_staging)
    reset(side)  # keeps the configuration: set /health's knobs back
    side.http.patch("/__staging/config", json={"health_shape": "version", "health_status": "ok"}).raise_for_status()
    yield side
    side.close()


# --- comparing answers -------------------------------------------------------------------------------
def comparable(answer: httpx.Response) -> Any:
    """An answer without what differs between two correct answers: timestamps, processing times, tokens."""
    if not answer.content:
        return b""
    if answer.status_code == 500 and "Worker threw exception" in answer.text:
        return "<the worker threw>"  # Cloudflare's 1101 page (or the runtime's own sentence), not the worker's answer
    if "json" not in answer.headers.get("content-type", ""):
        return answer.text
    body = answer.json()
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(metadata, dict):
        assert metadata.pop("timestamp", "Z").endswith("Z")
        assert isinstance(metadata.pop("processingTime", 0), int)
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "token" in body["data"]:
        body["data"]["token"] = "<token>"
    return body


Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


def compare(worker: Side, emulation: Side, requests: list[Request]) -> list[tuple[httpx.Response, httpx.Response]]:
    """Send each request to both; assert equal statuses, bodies and CORS; the (workerd, emulation) answers."""
    answers = []
    for method, path, kwargs in requests:
        got, expected = worker.http.request(method, path, **kwargs), emulation.http.request(method, path, **kwargs)
        where = f"{method} {path} {kwargs}"
        assert got.status_code == expected.status_code, f"{where}: workerd {got.status_code} {got.text[:300]}, emulation {expected.status_code} {expected.text[:300]}"
        assert comparable(got) == comparable(expected), where
        crashed = comparable(got) == "<the worker threw>"  # Cloudflare's page, not the worker's answer
        assert crashed or got.headers.get("access-control-allow-origin") == "*", f"{where}: no CORS header"
        answers.append((got, expected))
    return answers


def same_answers(worker: Side, emulation: Side, requests: list[Request]) -> list[httpx.Response]:
    """As :func:`compare`; the worker's answers."""
    return [got for got, _ in compare(worker, emulation, requests)]


def same_rows(worker: Side, emulation: Side) -> None:
    """Both stagings' Analytics Engine rows, once the worker's have arrived, are the same multiset."""
    performance, cache = sum(emulation.performance().values()), sum(emulation.cache_events().values())
    assert performance, "the emulation wrote data points"
    wait_until(lambda: sum(worker.performance().values()) >= performance and sum(worker.cache_events().values()) >= cache,
               timeout=15, what=f"{performance} performance and {cache} cache data points of the worker")
    assert worker.performance() == emulation.performance()
    assert worker.cache_events() == emulation.cache_events()


def get(path: str, **params: Any) -> Request:
    return ("GET", path, {"params": params} if params else {})


def batch_request(job_id: str, books: list[dict[str, Any]], ip: str) -> Request:
    return ("POST", "/v1/enrichment/batch", {"json": {"jobId": job_id, "books": books}, "headers": {"CF-Connecting-IP": ip}})


# --- /health ----------------------------------------------------------------------------------------------
def test_health_reports_the_serving_versions_tag_in_the_runbooks_enveloped_shape(worker: Side, emulation: Side):
    same_answers(worker, emulation, [get("/health"), ("HEAD", "/health", {})])
    assert worker.http.get("/health").json()["data"]["version"] == "1.9.0"
    worker.deploy("2.0.0-rc1")
    assert worker.http.get("/health").json() == {"data": {"status": "ok", "version": "2.0.0-rc1", "worker": "api-worker-staging"}}


def test_health_in_productions_constant_shape_and_a_degraded_status(worker: Side, emulation: Side):
    worker.deploy("constant", HEALTH_SHAPE="constant", HEALTH_STATUS="degraded")
    emulation.http.patch("/__staging/config", json={"health_shape": "constant", "health_status": "degraded"}).raise_for_status()
    health, = same_answers(worker, emulation, [get("/health")])
    assert health.json()["version"] == "1.0.0" and health.json()["status"] == "degraded" and len(health.json()["endpoints"]) == 6


# --- searches ---------------------------------------------------------------------------------------------
def test_the_three_searches_answer_what_the_emulation_answers_from_the_same_catalogue(worker: Side, emulation: Side):
    requests = [
        get("/v1/search/title", q="hamlet"), get("/v1/search/title", q="The"), get("/v1/search/title", q="no such book at all"),
        get("/v1/search/isbn", isbn="978-0-7432-7356-5"), get("/v1/search/isbn", isbn="0-441-17271-7"),
        get("/v1/search/isbn", isbn="9780000000002"),
        get("/v1/search/advanced", title="pride", author="austen"), get("/v1/search/advanced", author="frank herbert"),
        # refused, as the contract's table says
        get("/v1/search/title"), get("/v1/search/title", q="   "), get("/v1/search/isbn"),
        get("/v1/search/isbn", isbn="12345"), get("/v1/search/advanced"), get("/v1/search/advanced", title=" ", author=""),
    ]
    answers = same_answers(worker, emulation, requests)
    hamlet, many, nothing, gatsby, dune = (a.json() for a in answers[:5])
    assert hamlet["data"]["works"][0]["title"] == "Hamlet" and hamlet["metadata"]["provider"] == "google-books"
    assert len(many["data"]["works"]) == 20, "a common word finds a page of the generated catalogue"
    assert nothing["data"] == {"works": [], "editions": [], "authors": []} and nothing["metadata"]["provider"] == "none"
    assert gatsby["data"]["works"][0]["title"] == "The Great Gatsby"
    assert dune["metadata"]["provider"] == "openlibrary" and dune["metadata"]["cached"] is False
    refusals = [(a.status_code, a.json()["error"]["code"]) for a in answers[8:]]
    assert refusals == [(400, "INVALID_QUERY")] * 2 + [(400, "INVALID_ISBN")] * 2 + [(400, "INVALID_QUERY")] * 2
    same_rows(worker, emulation)


def test_a_repeated_search_is_an_edge_cache_hit_with_its_cache_source(worker: Side, emulation: Side):
    requests = [get("/v1/search/title", q="Great  GATSBY"), get("/v1/search/title", q="great gatsby"),
                get("/v1/search/isbn", isbn="9780141439518"), get("/v1/search/isbn", isbn="978-0-14-143951-8")]
    first, again, isbn, isbn_again = (a.json()["metadata"] for a in same_answers(worker, emulation, requests))
    assert (first["cached"], again["cached"], again["cacheSource"]) == (False, True, "EDGE_FRESH")
    assert (isbn["cached"], isbn_again["cacheSource"]) == (False, "EDGE_FRESH")
    same_rows(worker, emulation)
    assert worker.cache_events()[("edge_hit_fresh", "edge_hit_fresh", "search:title:great gatsby")] == 1


def test_a_cache_entry_past_its_freshness_is_served_stale_then_fresh_again(worker: Side):
    worker.deploy("short-cache", EDGE_TTL_S="0.3", EDGE_STALE_S="60")
    search = lambda: worker.http.get("/v1/search/title", params={"q": "dune"}).json()["metadata"]  # noqa: E731
    assert search()["cached"] is False
    sources: list[str | None] = []
    wait_until(lambda: sources.append(search().get("cacheSource")) or sources[-1] == "EDGE_STALE", timeout=10,
               every=0.1, what="a stale edge-cache answer")
    assert search()["cacheSource"] == "EDGE_FRESH", "a stale answer is stored again (revalidated)"
    wait_until(lambda: worker.cache_events()[("edge_hit_stale", "edge_hit_stale", "search:title:dune")] == 1,
               timeout=10, what="the edge_hit_stale cache event")


# --- 404, CORS, methods -------------------------------------------------------------------------------------
def test_unknown_paths_and_methods_answer_the_404_shape_and_options_the_cors_preflight(worker: Side, emulation: Side):
    requests = [get("/v2/nothing-here"), ("POST", "/health", {}), ("DELETE", "/v1/search/title", {}),
                ("PUT", "/v1/enrichment/batch", {}), get("/__staging/not-an-admin-route")]
    answers = same_answers(worker, emulation, requests)
    assert all(a.status_code == 404 and a.headers["x-error-type"] == "NOT_FOUND" for a in answers)
    assert answers[0].json() == {"success": False, "error": {"code": "NOT_FOUND", "message": "Route not found: /v2/nothing-here"}}
    for path in ("/v1/search/title", "/anything/at/all"):
        got, expected = worker.http.options(path), emulation.http.options(path)
        assert got.status_code == expected.status_code == 204
        wanted = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age")
        assert {h: got.headers.get(h) for h in wanted} == {h: expected.headers.get(h) for h in wanted}
    same_rows(worker, emulation)  # OPTIONS and /__staging/... write nothing


def test_tail_shows_the_workers_requests_with_its_one_log_line_each(worker: Side):
    created = worker.api.post(f"{worker.scripts}/tails", json={})
    assert created.status_code == 200, created.text
    events: list[dict[str, Any]] = []
    with connect(created.json()["result"]["url"], subprotocols=["trace-v1"], open_timeout=10) as tail:
        tail.send(json.dumps({"debug": False}))

        def seen() -> bool:
            worker.http.get("/v1/search/isbn", params={"isbn": "tailed"})
            try:
                events.append(json.loads(tail.recv(timeout=0.5)))
            except TimeoutError:
                return False
            return any("isbn=tailed" in e["event"]["request"]["url"] for e in events)

        wait_until(seen, timeout=15, what="a tail event of the tailed search")
    event = next(e for e in events if "isbn=tailed" in e["event"]["request"]["url"])
    assert event["event"]["response"]["status"] == 400 and event["outcome"] == "ok"
    lines = [" ".join(map(str, log["message"])) for log in event["logs"]]
    assert len(lines) == 1 and lines[0].startswith("GET /v1/search/isbn 400 INVALID_ISBN"), lines


# --- batch, rate limit, progress socket -------------------------------------------------------------------
def read_socket(side: Side, job_id: str, token: str, first: str = '{"type": "ready"}') -> tuple[list[dict[str, Any]], int, str]:
    """Connect, send ``first``, read until the server closes: (messages, close code, close reason)."""
    messages: list[dict[str, Any]] = []
    with connect(side.ws(f"/ws/progress?jobId={job_id}&token={token}"), open_timeout=10, close_timeout=5) as socket:
        socket.send(first)
        try:
            while True:
                messages.append(json.loads(socket.recv(timeout=15)))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, f"the socket of job {job_id} ended without a close frame"
            return messages, closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


def shape(message: dict[str, Any]) -> tuple[Any, ...]:
    """A progress message less its clock: type, keys, and the payload less the job's duration."""
    payload = dict(message["payload"])
    if "summary" in payload:
        payload["summary"] = {k: v for k, v in payload["summary"].items() if k != "duration"}
    return (message["type"], sorted(message), message["pipeline"], message["version"], payload)


def test_a_batch_job_reports_on_the_progress_socket_and_writes_its_results_as_the_emulation(worker: Side, emulation: Side):
    books = [{"title": "Dune", "author": "Frank Herbert"}, {"title": "Hamlet"}, {"title": "  Emma  ", "isbn": "9780141439587"}]
    ip = fresh_ip()
    job_id = f"job-{ip}"
    (accepted, accepted_too), = compare(worker, emulation, [batch_request(job_id, books, ip)])
    assert accepted.status_code == 202 and accepted.json()["data"]["totalCount"] == 3
    got, code, reason = read_socket(worker, job_id, accepted.json()["data"]["token"])
    expected, expected_code, expected_reason = read_socket(emulation, job_id, accepted_too.json()["data"]["token"])
    assert [m["type"] for m in got] == ["ready_ack"] + ["job_progress"] * 4 + ["job_complete"]
    assert [shape(m) for m in got] == [shape(m) for m in expected]
    assert (code, reason) == (expected_code, expected_reason) == (1000, "Job completed")
    assert all(m["jobId"] == job_id and isinstance(m["timestamp"], int) for m in got)
    summary = got[-1]["payload"]["summary"]
    assert summary["resourceId"] == f"enrichment-results:{job_id}" and 0 <= summary["duration"] < 6000
    key = summary["resourceId"]
    wait_until(lambda: worker.staging.kv.get_own(key) is not None, timeout=10, what=f"the KV record {key}")
    assert worker.staging.kv.get_own(key) == emulation.staging.kv.get_own(key) == \
        json.dumps({"jobId": job_id, "totalProcessed": 3, "successCount": 3}).encode()


def test_the_progress_socket_refuses_as_the_contract_orders_and_closes_1002_on_anything_but_ready(worker: Side, emulation: Side):
    ip = fresh_ip()
    job_id = f"job-{ip}"
    same_answers(worker, emulation, [batch_request(job_id, [{"title": "Dune"}], ip),
                                     get("/ws/progress"), get("/ws/progress", jobId=job_id, token="whatever")])
    refusals: dict[str, list[tuple[int, str]]] = {"workerd": [], "emulation": []}
    for name, side in (("workerd", worker), ("emulation", emulation)):
        for path in ("/ws/progress", f"/ws/progress?jobId={job_id}&token=test", "/ws/nowhere?jobId=x"):
            with pytest.raises(InvalidStatus) as refused:
                connect(side.ws(path), open_timeout=10)
            response = refused.value.response
            refusals[name].append((response.status_code, response.body.decode()))
    missing, bogus, unknown = refusals["workerd"]
    assert missing[0] == 400 and json.loads(missing[1])["error"]["code"] == "MISSING_PARAM"
    assert bogus == (401, "Unauthorized"), "the runbook's jobId=test&token=test gets 401 from a healthy worker"
    assert unknown[0] == 404 and json.loads(unknown[1])["error"]["code"] == "NOT_FOUND"
    assert refusals["workerd"] == refusals["emulation"]
    token = worker.http.post("/v1/enrichment/batch", json={"jobId": job_id, "books": [{"title": "Dune"}]},
                             headers={"CF-Connecting-IP": ip}).json()["data"]["token"]
    messages, code, reason = read_socket(worker, job_id, token, first='{"type": "ping"}')
    assert (messages, code) == ([], 1002) and "ready" in reason


INVALID_BODIES = [
    (b"not json", 400, "E_INVALID_REQUEST"), (b"[]", 400, "E_INVALID_REQUEST"), (b'{"jobId": "j"}', 400, "E_INVALID_REQUEST"),
    (b'{"books": [{"title": "a"}]}', 400, "E_INVALID_REQUEST"),
    (json.dumps({"jobId": "j" * 129, "books": [{"title": "a"}]}).encode(), 400, "E_INVALID_REQUEST"),
    (b'{"jobId": "j", "books": []}', 400, "E_EMPTY_BATCH"),
    (json.dumps({"jobId": "j", "books": [{"title": "a"}] * 101}).encode(), 400, "E_BATCH_TOO_LARGE"),
    (b'{"jobId": "j", "books": [{"title": " "}]}', 400, "E_INVALID_BOOK"),
    (json.dumps({"jobId": "j", "books": [{"title": "t" * 501}]}).encode(), 400, "E_TITLE_TOO_LONG"),
    (json.dumps({"jobId": "j", "books": [{"title": "a", "author": "a" * 301}]}).encode(), 400, "E_AUTHOR_TOO_LONG"),
    (b'{"jobId": "j", "books": [{"title": "a", "author": 5}]}', 400, "E_INVALID_BOOK"),
    (json.dumps({"jobId": "j", "books": [{"title": "a", "isbn": "9" * 18}]}).encode(), 400, "E_ISBN_TOO_LONG"),
    (b" " * (512 * 1024 + 1), 413, "E_PAYLOAD_TOO_LARGE"),
]


def test_a_batch_body_production_refuses_gets_the_same_code_and_message(worker: Side, emulation: Side):
    for body, status, code in INVALID_BODIES:
        headers = {"CF-Connecting-IP": fresh_ip(), "Content-Type": "application/json"}
        got = worker.http.post("/v1/enrichment/batch", content=body, headers=headers)
        expected = emulation.http.post("/v1/enrichment/batch", content=body, headers=headers)
        assert (got.status_code, got.json()["error"]["code"]) == (expected.status_code, expected.json()["error"]["code"]) == (status, code)
        if body != b"not json":  # the JSON parser's own sentence differs between the languages
            assert comparable(got) == comparable(expected)


def test_the_batch_endpoint_allows_ten_requests_a_minute_per_ip_then_answers_the_flat_429(worker: Side, emulation: Side):
    ip = fresh_ip()
    requests = [batch_request(f"rate-{ip}-{i}", [{"title": "Dune"}], ip) for i in range(12)]
    answers = same_answers(worker, emulation, requests)
    assert [a.status_code for a in answers] == [202] * 10 + [429] * 2
    refused = answers[-1]
    retry = refused.json()["details"]["retryAfter"]
    assert refused.json() == {
        "error": f"Rate limit exceeded. Please try again in {retry} seconds.", "code": "RATE_LIMIT_EXCEEDED",
        "details": {"retryAfter": retry, "clientIP": ip[:8] + "...", "requestsRemaining": 0, "requestsLimit": 10}}
    assert 1 <= retry <= 60 and refused.headers["retry-after"] == str(retry)
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == ("10", "0")
    assert abs(int(refused.headers["x-ratelimit-reset"]) - (time.time() + retry) * 1000) < 3000, "epoch ms of the window's end"
    same_rows(worker, emulation)
    other = worker.http.post("/v1/enrichment/batch", json={"jobId": "x", "books": [{"title": "a"}]}, headers={"CF-Connecting-IP": fresh_ip()})
    assert other.status_code == 202, "the limit is per client IP"


# --- every fault kind of the hook, acted out in workerd -------------------------------------------------------
def fault(label: str, **fields: Any) -> str:
    """A FAULT_PROFILE text of its own (the label names the test: a reused instance has never seen it)."""
    return json.dumps({**fields, "label": label})


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def every_endpoint(ip: str) -> list[Request]:
    return [
        get("/health"), get("/v1/search/title", q="hamlet"), get("/v1/search/title", q="hamlet"),
        get("/v1/search/isbn", isbn="9780743273565"), get("/v1/search/advanced", title="dune"), get("/v1/search/title"),
        get("/v2/nothing-here"), batch_request(f"job-{ip}", [{"title": "Dune"}], ip),
        get("/ws/progress", jobId=f"job-{ip}"), ("GET", "/ws/progress", {"params": {"jobId": f"job-{ip}", "token": "t"}, "headers": UPGRADE}),
    ]


PARITY_FAULTS = {
    "server-errors": {"error_rate": 1.0, "share_5xx": 1.0},
    "client-errors": {"error_rate": 1.0, "share_5xx": 0.0},
    "outage": {"outage": True},
    "websocket-failures": {"ws_failure_rate": 1.0},
    "cache-off": {"cache_off": True},
    "provider-timeouts": {"provider_timeouts": 1.0, "provider_timeout_ms": 150},
    "telemetry-quirks": {"quirks": ["health_constant", "blob3_always_miss", "double1_500"]},
}


@pytest.mark.parametrize("name", PARITY_FAULTS)
def test_a_deployed_fault_profile_answers_and_writes_telemetry_as_the_emulation(worker: Side, emulation: Side, name: str):
    text = fault(f"parity {name}", **PARITY_FAULTS[name])
    for side in (worker, emulation):
        side.deploy(f"fault-{name}", FAULT_PROFILE=text)
    answers = same_answers(worker, emulation, every_endpoint(fresh_ip()))
    statuses = [a.status_code for a in answers]
    if name == "outage":
        assert statuses == [500] * len(answers), "/health included"
        assert all("1101" in a.text for a in answers[:-1]), "Cloudflare's 1101 page"
    elif name == "server-errors":
        assert statuses == [200, 500, 500, 500, 500, 500, 404, 500, 426, 401]
    elif name == "websocket-failures":
        assert statuses[-1] == 500 and statuses[:-1] == [200, 200, 200, 200, 200, 400, 404, 202, 426]
    elif name in ("cache-off", "provider-timeouts"):
        assert answers[2].json()["metadata"]["cached"] is False, "a repeated search misses"
        if name == "provider-timeouts":
            assert {a.json()["metadata"]["provider"] for a in answers[1:5]} == {"none"}
    same_rows(worker, emulation)


def test_an_unusable_fault_profile_answers_500_naming_the_field_on_every_request(worker: Side):
    worker.deploy("broken", FAULT_PROFILE='{"error_rat": 0.1, "label": "unusable"}')
    answers = [worker.http.request(method, path, **kwargs) for method, path, kwargs in every_endpoint(fresh_ip())]
    for answer in answers:
        assert answer.status_code == 500, f"{answer.request.url}: {answer.status_code}"
        error = answer.json()["error"]
        assert error["code"] == "INTERNAL_ERROR" and error["message"].startswith("FAULT_PROFILE cannot be used: unknown fault profile field(s) error_rat")
        assert error["details"] == {"source": "FAULT_PROFILE", "field": "error_rat"}
    wait_until(lambda: worker.performance()[("/health", "INTERNAL_ERROR", "MISS", 500.0)] == 1, timeout=10,
               what="the broken version's /health data point")


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(count - n * p) <= sigmas * (n * p * (1 - p)) ** 0.5 + 1


def test_an_error_rate_fails_its_share_of_api_requests_and_splits_them_by_the_5xx_share(worker: Side):
    worker.deploy("error-share", FAULT_PROFILE=fault("error share", error_rate=0.5, share_5xx=0.4))
    n = 300
    statuses = Counter(worker.http.get("/v1/search/isbn", params={"isbn": "9780743273565"}).status_code for _ in range(n))
    assert within(statuses[500], n, 0.2) and within(statuses[400], n, 0.3), f"{dict(statuses)} of {n}"
    assert statuses[200] + statuses[500] + statuses[400] == n
    assert {worker.http.get("/health").status_code for _ in range(20)} == {200}, "/health is not an API endpoint"


def test_injected_latency_slows_the_endpoint_and_counts_in_processing_time(worker: Side):
    worker.deploy("slow-title", FAULT_PROFILE=fault("slow title", latency={"title": {"p50_ms": 250, "p95_ms": 300}}))
    for query in ("hamlet", "hamlet", "emma"):
        started = time.monotonic()
        answer = worker.http.get("/v1/search/title", params={"q": query})
        assert answer.status_code == 200 and time.monotonic() - started >= 0.15
        assert answer.json()["metadata"]["processingTime"] >= 150, "the injected delay is part of the processing time"
    health = []
    for _ in range(5):
        started = time.monotonic()
        assert worker.http.get("/health").status_code == 200
        health.append(time.monotonic() - started)
    assert sorted(health)[2] < 0.15, f"/health is not slowed: {health}"
    wait_until(lambda: sum(n for (path, _, _, _), n in worker.performance().items() if path == "/v1/search/title") == 3,
               timeout=10, what="the three title searches' data points")
    slow = worker.rows("SELECT double2 FROM books_api_performance WHERE blob1 = '/v1/search/title'")
    assert all(row["double2"] >= 150 for row in slow), slow


def test_a_profile_with_duration_s_stops_by_itself(worker: Side):
    worker.deploy("blip", FAULT_PROFILE=fault("blip", error_rate=1.0, duration_s=1))
    started = time.monotonic()
    assert worker.http.get("/v1/search/title", params={"q": "hamlet"}).status_code == 500
    wait_until(lambda: worker.http.get("/v1/search/title", params={"q": "hamlet"}).status_code == 200, timeout=10,
               every=0.1, what="the blip to end")
    assert time.monotonic() - started >= 0.9, "the fault held for its duration"


def test_data_loss_deletes_the_canary_once_through_the_kv_binding_as_the_emulation_loses_it(worker: Side, emulation: Side):
    text = fault("data loss", data_loss=[CANARY])
    assert worker.staging.kv.get_own(CANARY) is not None
    worker.deploy("data-loss", FAULT_PROFILE=text)
    emulation.deploy("data-loss", FAULT_PROFILE=text)
    assert worker.http.get("/health").status_code == 200
    assert worker.staging.kv.get_own(CANARY) is None and emulation.staging.kv.get_own(CANARY) is None
    assert worker.staging.kv.get_own("canary/library/2") is not None, "only the listed keys"
    worker.staging.kv.put_own(CANARY, b'{"restored": true}')  # the drill restores its canaries itself
    for _ in range(3):
        assert worker.http.get("/v1/search/title", params={"q": "hamlet"}).status_code == 200
    assert worker.staging.kv.get_own(CANARY) == b'{"restored": true}', "deleted once per profile text and isolate"


# --- the runtime KV flag -----------------------------------------------------------------------------------------
def set_flag(side: Side, text: str | None) -> None:
    if text is None:
        side.staging.kv.delete_own(RUNTIME_FLAG_KEY)
    else:
        side.staging.kv.put_own(RUNTIME_FLAG_KEY, text.encode())


def test_the_runtime_flag_is_seen_within_its_ttl_and_a_cleared_flag_heals(worker: Side):
    search = lambda: worker.http.get("/v1/search/isbn", params={"isbn": "9780441172719"})  # noqa: E731
    assert search().status_code == 200
    set_flag(worker, fault("flag errors", error_rate=1.0, share_5xx=0.0))
    wait_until(lambda: search().status_code == 400, timeout=15, every=0.2, what="the runtime flag's errors")
    assert search().json()["error"]["code"] == "INVALID_QUERY"
    set_flag(worker, '{"share_5xx": -1}')
    wait_until(lambda: worker.http.get("/health").status_code == 500, timeout=15, every=0.2, what="the unusable flag")
    error = worker.http.get("/health").json()["error"]
    assert error["message"].startswith("the runtime fault flag cannot be used: share_5xx")
    assert error["details"] == {"source": "the runtime fault flag", "field": "share_5xx"}
    set_flag(worker, None)
    wait_until(lambda: search().status_code == 200 and worker.http.get("/health").status_code == 200, timeout=15,
               every=0.2, what="the cleared flag to heal")


def test_provider_timeouts_of_the_runtime_flag_spare_cached_answers_as_the_emulation_does(worker: Side):
    cached = lambda: worker.http.get("/v1/search/title", params={"q": "pride and prejudice"}).json()["metadata"]  # noqa: E731
    assert cached()["cached"] is False and cached()["cached"] is True
    # health_constant makes the flag visible on /health: it tells when the hook has read it
    set_flag(worker, fault("flag timeouts", provider_timeouts=1.0, provider_timeout_ms=150, quirks=["health_constant"]))
    wait_until(lambda: "endpoints" in worker.http.get("/health").json(), timeout=15, every=0.2, what="the flag to be read")
    started = time.monotonic()
    answer = worker.http.get("/v1/search/isbn", params={"isbn": "9780743477123"}).json()
    assert time.monotonic() - started >= 0.14 and answer["metadata"]["provider"] == "none" and answer["data"]["works"] == [], answer
    assert cached()["cacheSource"] == "EDGE_FRESH", "the edge cache answers before any provider is asked"
    set_flag(worker, None)
    wait_until(lambda: "data" in worker.http.get("/health").json(), timeout=15, every=0.2, what="the cleared flag to be read")
    assert worker.http.get("/v1/search/isbn", params={"isbn": "9780743477123"}).json()["metadata"]["provider"] == "google-books"


# --- jobs under faults ---------------------------------------------------------------------------------------------
def start_job(side: Side, books: list[dict[str, Any]]) -> tuple[int, str, str]:
    ip = fresh_ip()
    answer = side.http.post("/v1/enrichment/batch", json={"jobId": f"job-{ip}", "books": books}, headers={"CF-Connecting-IP": ip})
    return answer.status_code, f"job-{ip}", (answer.json().get("data") or {}).get("token", "")


def test_enrichment_fails_per_book_when_the_providers_time_out(worker: Side):
    worker.deploy("job-timeouts", FAULT_PROFILE=fault("job timeouts", provider_timeouts=1.0, provider_timeout_ms=50))
    status, job_id, token = start_job(worker, [{"title": "Dune"}, {"title": "Emma"}])
    assert status == 202
    messages, code, _ = read_socket(worker, job_id, token)
    assert [m["payload"]["status"] for m in messages[2:4]] == ["Enriching (1/2): Dune [failed]", "Enriching (2/2): Emma [failed]"]
    summary = messages[-1]["payload"]["summary"]
    assert (summary["successCount"], summary["failureCount"], code) == (0, 2, 1000)


def test_a_job_fails_as_often_as_its_version_fails_requests_with_a_5xx(worker: Side):
    worker.deploy("job-failures", FAULT_PROFILE=fault("job failures", error_rate=0.5, share_5xx=1.0))
    for _ in range(40):  # half the batches are refused, half the accepted jobs fail: 40 tries miss with p < 1e-5
        status, job_id, token = start_job(worker, [{"title": "Dune"}, {"title": "It's"}])
        if status != 202:
            assert status == 500
            continue
        messages, code, reason = read_socket(worker, job_id, token)
        if messages[-1]["type"] == "error":
            break
    else:
        raise AssertionError("no job failed in 40 batches at a 5xx rate of 50%")
    assert (code, reason) == (1011, "Job failed")
    payload = messages[-1]["payload"]
    assert payload["code"] == "E_BATCH_PROCESSING_FAILED" and payload["retryable"] is True
    assert payload["message"] in ("Enrichment provider failed while enriching 'Dune'",
                                  "Enrichment provider failed while enriching \"It's\"")
