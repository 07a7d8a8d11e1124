"""The staging's workerd runtime (``--runtime workerd``): uploaded versions run in workerd, and what they
answer is what the BooksTrack base URL answers (staging/workerd/).

The seeded history runs a small Worker of this file (the reference Worker has its own tests), so each
test knows exactly what the code answers. Every wait polls against a deadline; every call has a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudflare_answers import (
    find_wrangler,
    run_wrangler,
    worker_directory,
    wrangler_environment,
    wrangler_params,
)
from test_clients import TailOutput
from waiting import wait_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bookstrack_rollback.drill.worker_repo import WranglerConfig
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.workerd import spec

pytestmark = pytest.mark.xdist_group("workerd")

HISTORY_WORKER = """
import { withFaultProfile } from "../../staging-hook/fault-hook.mjs";
export class JobProgress {
  async fetch(request) { return new Response("job"); }
}
const app = async (request, env) => {
  const url = new URL(request.url);
  console.log("served", request.method, url.pathname);
  env.PERFORMANCE_ANALYTICS.writeDataPoint({ indexes: [url.pathname], blobs: [url.pathname, "", "MISS"], doubles: [200, 1] });
  if (url.pathname === "/health") return Response.json({ data: { status: "ok", version: env.CF_VERSION_METADATA.tag } });
  if (url.pathname === "/kv") return new Response(await env.KV.get(url.searchParams.get("key")) ?? "(none)");
  if (url.pathname === "/url") return new Response(request.url);
  if (url.pathname === "/throw") throw new Error("thrown by the history worker");
  if (url.pathname === "/ws/progress") {
    if (!url.searchParams.get("jobId")) return new Response("jobId is required", { status: 400 });
    if (url.searchParams.get("jobId") === "throw") throw new Error("thrown during a handshake");
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.send("job " + url.searchParams.get("jobId"));
    server.addEventListener("message", (event) => server.send("echo " + event.data));
    return new Response(null, { status: 101, webSocket: client });
  }
  return new Response("history " + env.CF_VERSION_METADATA.tag);
};
export default { fetch: withFaultProfile(app) };
"""
HELLO = 'export default { fetch: () => new Response("hello from workerd") };'


@pytest.fixture(scope="module")
def workerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStaging]:
    worker = tmp_path_factory.mktemp("drills") / "reference-worker"
    (worker / "src").mkdir(parents=True)
    (worker / "src" / "index.mjs").write_text(HISTORY_WORKER)
    patch = pytest.MonkeyPatch()
    patch.setattr(spec, "REFERENCE_DIR", worker)
    try:
        running = start_in_thread(StagingConfig(seed=1234, runtime="workerd"))
    except Exception as exc:  # no Node or no node_modules: say how to get them
        patch.undo()
        pytest.skip(f"the workerd runtime cannot start here: {exc}")
    yield running
    running.stop()
    patch.undo()


@pytest.fixture
def live(workerd: RunningStaging) -> RunningStaging:
    httpx.post(f"{workerd.base_url}/__staging/reset", json={"seed": 1234}, timeout=10).raise_for_status()
    return workerd


class Api:
    """The staging's Cloudflare API, as a client calls it."""

    def __init__(self, running: RunningStaging) -> None:
        config = running.config
        self.scripts = f"{running.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}"
        self.client = httpx.Client(headers={"Authorization": f"Bearer {config.token}"}, timeout=30)

    def upload(self, code: str, *, tag: str, bindings: list[dict[str, Any]] | None = None,
               expect: int = 200) -> dict[str, Any]:
        metadata = {"main_module": "index.js", "bindings": bindings or [], "annotations": {"workers/tag": tag},
                    "compatibility_date": "2025-09-01"}
        files = {"metadata": (None, json.dumps(metadata), "application/json"),
                 "index.js": ("index.js", code, "application/javascript+module")}
        answer = self.client.post(f"{self.scripts}/versions", files=files)
        assert answer.status_code == expect, answer.text
        return answer.json()

    def deploy(self, *traffic: tuple[str, float]) -> dict[str, Any]:
        body = {"strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in traffic]}
        answer = self.client.post(f"{self.scripts}/deployments", params={"force": "true"}, json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["result"]

    def serving(self) -> list[str]:
        answer = self.client.get(f"{self.scripts}/deployments")
        return [v["version_id"] for v in answer.json()["result"]["deployments"][0]["versions"]]


@pytest.fixture
def api(live: RunningStaging) -> Iterator[Api]:
    client = Api(live)
    yield client
    client.client.close()


def get(running: RunningStaging, path: str, **params: str) -> httpx.Response:
    return httpx.get(running.base_url + path, params=params, timeout=30)


def test_a_deployed_worker_answers_then_a_rollback_brings_the_previous_code_back(live, api):
    before = api.serving()
    assert get(live, "/anything").text == "history 1.9.0"
    hello = api.upload(HELLO, tag="hello")["result"]
    assert get(live, "/anything").text == "history 1.9.0", "an upload alone must not serve"
    api.deploy((hello["id"], 100))
    assert get(live, "/anything").text == "hello from workerd"
    api.deploy((before[0], 100))  # the rollback: a deployment of the previous version
    assert get(live, "/anything").text == "history 1.9.0"


def test_a_gradual_deployment_serves_both_versions_by_percentage(live, api):
    old = api.serving()[0]
    hello = api.upload(HELLO, tag="hello")["result"]
    api.deploy((hello["id"], 50), (old, 50))
    answers = [get(live, "/x").text for _ in range(200)]
    new_share = answers.count("hello from workerd") / len(answers)
    assert set(answers) == {"hello from workerd", "history 1.9.0"}
    assert 0.38 <= new_share <= 0.62, f"the new version answered {new_share:.0%} of 200 requests at 50%"


def test_an_upload_whose_code_cannot_start_is_refused_with_workerds_sentence(live, api):
    versions_before = len(api.client.get(f"{api.scripts}/versions").json()["result"]["items"])
    answer = api.upload("export default { fetch( => 1 }", tag="broken", expect=400)
    error = answer["errors"][0]
    assert error["code"] == 10021
    assert "SyntaxError" in error["message"] and "index.js" in error["message"], error["message"]
    assert len(api.client.get(f"{api.scripts}/versions").json()["result"]["items"]) == versions_before
    assert get(live, "/x").text == "history 1.9.0"


def test_a_binding_the_staging_cannot_provide_is_named_in_the_refusal(live, api):
    answer = api.upload(HELLO, tag="r2", bindings=[{"type": "r2_bucket", "name": "COVERS", "bucket_name": "covers"}],
                        expect=400)
    assert "COVERS" in answer["errors"][0]["message"] and "'r2_bucket'" in answer["errors"][0]["message"]
    missing_kv = api.upload(HELLO, tag="kv", bindings=[{"type": "kv_namespace", "name": "KV", "namespace_id": "nope"}],
                            expect=400)
    assert "KV namespace 'nope'" in missing_kv["errors"][0]["message"]


def test_an_upload_reports_its_real_startup_time(live, api):
    version = api.upload(HELLO, tag="timed")["result"]
    assert version["startup_time_ms"] > 0
    runtime = httpx.get(f"{live.base_url}/__staging/info", timeout=10).json()["runtime"]
    running = {v["version_id"]: v for v in runtime["running_versions"]}
    assert runtime["name"] == "workerd" and running[version["id"]]["startup_ms"] == version["startup_time_ms"]


def test_variables_secrets_and_the_staging_kv_reach_the_worker(live, api):
    code = """export default { async fetch(request, env) {
      return Response.json({ plain: env.PLAIN, secret: env.SECRET, json: env.SETTINGS, kv: await env.KV.get("canary/library/1"),
                             put: await env.KV.put("workerd/written", "by the worker") }); } };"""
    bindings = [{"type": "plain_text", "name": "PLAIN", "text": "p"}, {"type": "secret_text", "name": "SECRET", "text": "s"},
                {"type": "json", "name": "SETTINGS", "json": {"a": 1}},
                {"type": "kv_namespace", "name": "KV", "namespace_id": live.config.kv_namespace_id}]
    version = api.upload(code, tag="bindings", bindings=bindings)["result"]
    api.deploy((version["id"], 100))
    body = get(live, "/").json()
    assert body["plain"] == "p" and body["secret"] == "s" and body["json"] == {"a": 1}
    assert "Great Gatsby" in body["kv"]
    assert live.staging.kv.get_own("workerd/written") == b"by the worker"


def test_the_worker_sees_the_staging_url_and_a_throw_answers_cloudflares_1101_page(live):
    assert get(live, "/url", q="1").text == f"{live.base_url}/url?q=1"
    crashed = get(live, "/throw")
    assert crashed.status_code == 500 and "1101" in crashed.text and "Worker threw exception" in crashed.text


def test_a_fault_profile_in_a_new_version_is_acted_out_by_the_hook_in_workerd(live, api):
    serving = api.serving()[0]
    content = api.client.get(f"{api.scripts}/content/v2", params={"version": serving})
    assert content.status_code == 200
    profile = json.dumps({"error_rate": 1.0, "share_5xx": 1.0})
    version = live.staging.workers.require_version(serving)
    metadata = {"main_module": version.main_module, "annotations": {"workers/tag": "fault"},
                "bindings": [*version.bindings, {"type": "plain_text", "name": "FAULT_PROFILE", "text": profile}]}
    files = [("metadata", (None, json.dumps(metadata), "application/json"))]
    files += [(name, (name, code, "application/javascript+module")) for name, code in version.modules.items()]
    upload = api.client.post(f"{api.scripts}/versions", files=files)
    assert upload.status_code == 200, upload.text
    api.deploy((upload.json()["result"]["id"], 100))
    broken = get(live, "/v1/search/title", q="hamlet")
    assert broken.status_code == 500 and broken.json()["error"]["code"] == "INTERNAL_ERROR"
    assert get(live, "/health").status_code == 200, "the hook never injects errors into /health"
    api.deploy((serving, 100))
    assert get(live, "/v1/search/title", q="hamlet").status_code == 200


def test_websockets_pass_through_and_a_refused_handshake_keeps_its_status(live):
    with connect(live.base_url.replace("http", "ws") + "/ws/progress?jobId=j1", open_timeout=10) as socket:
        assert socket.recv(timeout=10) == "job j1"
        socket.send("ping")
        assert socket.recv(timeout=10) == "echo ping"
    with pytest.raises(InvalidStatus) as refused:
        connect(live.base_url.replace("http", "ws") + "/ws/progress", open_timeout=10)
    assert refused.value.response.status_code == 400
    assert b"jobId is required" in refused.value.response.body
    with pytest.raises(InvalidStatus) as crashed:
        connect(live.base_url.replace("http", "ws") + "/ws/progress?jobId=throw", open_timeout=10)
    assert crashed.value.response.status_code == 500 and b"1101" in crashed.value.response.body


def test_the_workers_data_points_reach_analytics_engine_sql(live):
    for _ in range(5):
        assert get(live, "/counted").status_code == 200

    def counted() -> int:
        result = live.staging.analytics.query(
            "SELECT count() AS n FROM books_api_performance WHERE blob1 = '/counted'")
        return int(result.rows[0][0])

    wait_until(lambda: counted() == 5, timeout=10, what="5 data points written by the Worker")


def test_tail_shows_the_workers_own_requests_and_console_log(live, api):
    created = api.client.post(f"{api.scripts}/tails", json={})
    assert created.status_code == 200, created.text
    url = created.json()["result"]["url"]
    with connect(url, subprotocols=["trace-v1"], open_timeout=10) as tail:
        tail.send(json.dumps({"debug": False}))
        events: list[dict[str, Any]] = []

        def seen() -> bool:
            get(live, "/tailed")
            try:
                events.append(json.loads(tail.recv(timeout=0.5)))
            except TimeoutError:
                return False
            return any(e["event"]["request"]["url"].endswith("/tailed") for e in events)

        wait_until(seen, timeout=15, what="a tail event for GET /tailed")
    event = next(e for e in events if e["event"]["request"]["url"].endswith("/tailed"))
    assert event["scriptName"] == live.config.worker_name
    assert event["scriptVersion"]["id"] == api.serving()[0]
    assert event["event"]["response"]["status"] == 200
    assert ["served", "GET", "/tailed"] in [log["message"] for log in event["logs"]]


def test_a_stopped_staging_leaves_no_workerd_behind(tmp_path_factory):
    worker = tmp_path_factory.mktemp("drills") / "reference-worker"
    (worker / "src").mkdir(parents=True)
    (worker / "src" / "index.mjs").write_text(HISTORY_WORKER)
    marker = str(Path(spec.__file__).with_name("host.mjs"))

    def hosts() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, timeout=10).stdout.split())

    others = hosts()  # other stagings' hosts (another test module's) are not this test's business
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spec, "REFERENCE_DIR", worker)
        running = start_in_thread(StagingConfig(seed=99, runtime="workerd"))
    mine = hosts() - others
    assert mine, "the Worker host should run while the staging serves"
    workerds = set(subprocess.run(["pgrep", "-P", ",".join(mine)], capture_output=True, text=True,
                                  timeout=10).stdout.split())
    assert workerds, "the serving version's workerd should run under the host"
    running.stop()
    wait_until(lambda: not (hosts() & mine), timeout=15, what="the Worker host to stop with the staging")
    alive = set(subprocess.run(["ps", "-o", "pid=", "-p", ",".join(workerds)], capture_output=True, text=True,
                               timeout=10).stdout.split())
    assert not alive, f"workerd processes {sorted(alive)} outlived the staging"


@pytest.mark.parametrize("binary", wrangler_params())
def test_wrangler_deploy_runs_in_workerd_and_rollback_and_a_split_switch_what_answers(binary, live, tmp_path):
    """The issue's proof with the real client: `wrangler deploy` of a trivial Worker answers its text at the
    BooksTrack base URL; `wrangler rollback` brings the previous version's answers back; a 50/50 `versions
    deploy` serves both."""
    wrangler = find_wrangler(binary)
    env = wrangler_environment(wrangler, live, tmp_path)
    stable = live.staging.workers.serving_deployment().versions[0][0]
    hello = worker_directory("hello", tmp_path)
    deployed = run_wrangler(wrangler, env, "deploy", cwd=hello)
    assert "Worker Startup Time: 0 ms" not in deployed.stdout, deployed.stdout  # measured by workerd
    assert get(live, "/").text == "hello from workerd"
    new = live.staging.workers.serving_deployment().versions[0][0]
    run_wrangler(wrangler, env, "rollback", stable, "-m", "back", "-y", "--name", live.config.worker_name)
    assert get(live, "/").text == "history 1.9.0"
    run_wrangler(wrangler, env, "versions", "deploy", f"{new}@50%", f"{stable}@50%", "--yes", "--message", "split",
                 "--name", live.config.worker_name)
    answers = {get(live, "/").text for _ in range(60)}
    assert answers == {"hello from workerd", "history 1.9.0"}, answers


def test_without_node_the_workerd_staging_says_what_to_install_and_exits(tmp_path):
    empty = tmp_path / "bin"  # a PATH without node
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "bookstrack_rollback.staging", "--runtime", "workerd", "--port", "0"],
                          env={**os.environ, "PATH": str(empty)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "the workerd runtime needs Node.js 18 or newer on PATH (node was not found)" in done.stderr
    assert "is serving" not in done.stdout


def test_wrangler_tail_prints_the_workers_own_requests_and_console_log(live, tmp_path):
    wrangler = find_wrangler(wrangler_params()[0].values[0])
    env = wrangler_environment(wrangler, live, tmp_path)
    proc = subprocess.Popen([str(wrangler.binary), "tail", live.config.worker_name, "--format", "json"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True)
    output = TailOutput(proc)
    try:
        wait_until(lambda: live.staging.tails.listening, timeout=30, what="wrangler tail to connect",
                   still_alive=lambda: None if proc.poll() is None else f"wrangler tail exited {proc.returncode}")
        assert get(live, "/tailed-by-wrangler").status_code == 200
        events = output.wait_for(lambda e: str(e["event"]["request"]["url"]).endswith("/tailed-by-wrangler"),
                                 "the Worker's request")
    finally:
        output.stop(proc)
    event = next(e for e in events if str(e["event"]["request"]["url"]).endswith("/tailed-by-wrangler"))
    assert event["outcome"] == "ok" and event["event"]["response"]["status"] == 200
    assert ["served", "GET", "/tailed-by-wrangler"] in [log["message"] for log in event["logs"]]
    assert not any("bookstrack-staging:analytics" in json.dumps(log) for log in event["logs"]), \
        "the data points the Worker wrote travel in its trace but are not its logs"


def test_the_seeded_history_binds_what_the_reference_workers_wrangler_toml_declares():
    """The staging seeds its versions with the reference Worker's bindings written in spec.py: they must be
    the ones its wrangler.toml declares (what `make drill WORKER_DIR=drills/reference-worker` deploys)."""
    declared = WranglerConfig.parse((spec.REPO / "drills/reference-worker/wrangler.toml").read_text()).bindings()
    config = StagingConfig()
    seeded = spec.reference_bindings(kv_namespace=config.kv_namespace_id, performance_dataset=config.performance_dataset,
                                     cache_dataset=config.cache_dataset, health_shape=config.health_shape,
                                     health_status=config.health_status)
    key = lambda b: (b["type"], b["name"])  # noqa: E731
    assert sorted(seeded, key=key) == sorted(declared, key=key)
