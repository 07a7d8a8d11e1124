"""The embedded staging against the real Cloudflare clients: wrangler (a subprocess) and the
``cloudflare`` Python SDK (contract/cloudflare-api.md; notes/real-clients.md): deployments, versions,
rollback, the drill's version copy, tail, and the SDK's calls. The whole workflow of a new user (whoami,
deploy, versions upload/deploy, secrets, KV) is in ``test_cloudflare_workflows.py``.

Each wrangler test runs once per wrangler (the pinned 4.86 and the newest 4.x on Node 22, both installed
by ``make clients``; ``WRANGLER_BIN`` names others: ``cloudflare_answers.py``), skipped with the reason
when one is not installed. The SDK tests need ``pip install 'cloudflare>=5.9,<6'``. Every subprocess has
a timeout; waits poll a condition against a deadline.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudflare_answers import Wrangler, cf, find_wrangler, run_wrangler, wrangler_environment, wrangler_params
from waiting import wait_until
from bookstrack_rollback.staging import RunningStaging

pytestmark = pytest.mark.clients

DEADLINE_S = 30.0


# --- wrangler -------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=wrangler_params())
def wrangler(request: pytest.FixtureRequest) -> Wrangler:
    """The wrangler binary, its version and the PATH to run it with, or a skip saying why not."""
    return find_wrangler(request.param)


@pytest.fixture
def wrangler_env(wrangler: Wrangler, live: RunningStaging, tmp_path: Path) -> dict[str, str]:
    return wrangler_environment(wrangler, live, tmp_path)


def deploy(live: RunningStaging, *pairs: tuple[str, int], force: bool = False) -> None:
    body = {"strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in pairs]}
    response = cf(live, "POST", "/deployments" + ("?force=true" if force else ""), json=body)
    assert response.status_code == 200, response.text


def upload_with_secret(live: RunningStaging, name: str, text: str, tag: str) -> str:
    metadata = {"main_module": "index.js", "annotations": {"workers/tag": tag},
                "bindings": [{"type": "secret_text", "name": name, "text": text}]}
    files = [("metadata", (None, json.dumps(metadata).encode(), "application/json")),
             ("index.js", ("index.js", b"export default {}", "application/javascript+module"))]
    response = cf(live, "POST", "/versions", files=files)
    assert response.status_code == 200, response.text
    return response.json()["result"]["id"]


def serving_version(live: RunningStaging) -> str:
    return live.staging.workers.serving_deployment().versions[0][0]


def test_wrangler_deployments_list_and_status(wrangler, wrangler_env, live: RunningStaging):
    name = live.config.worker_name
    workers = live.staging.workers
    text = run_wrangler(wrangler, wrangler_env, "deployments", "list", "--name", name).stdout
    for version in workers.versions:
        assert version.id in text and f"Tag:  {version.tag}" in text
    listed = json.loads(run_wrangler(wrangler, wrangler_env, "deployments", "list", "--name", name, "--json").stdout)
    assert [d["id"] for d in listed] == [d.id for d in reversed(workers.deployments)], "wrangler sorts oldest first"
    status = json.loads(run_wrangler(wrangler, wrangler_env, "deployments", "status", "--name", name, "--json").stdout)
    assert status["id"] == workers.serving_deployment().id


def test_wrangler_versions_list(wrangler, wrangler_env, live: RunningStaging):
    name = live.config.worker_name
    text = run_wrangler(wrangler, wrangler_env, "versions", "list", "--name", name).stdout
    listed = json.loads(run_wrangler(wrangler, wrangler_env, "versions", "list", "--name", name, "--json").stdout)
    assert [v["id"] for v in listed] == [v.id for v in live.staging.workers.versions]
    assert "Tag:         1.9.0" in text and "Source:      Upload" in text


def test_wrangler_rollback_to_a_named_version(wrangler, wrangler_env, live: RunningStaging):
    target = live.staging.workers.versions[0]
    out = run_wrangler(wrangler, wrangler_env, "rollback", target.id, "-m", "drill", "-y",
                       "--name", live.config.worker_name).stdout
    assert f"Current Version ID: {target.id}" in out
    serving = live.staging.workers.serving_deployment()
    assert serving.versions == [(target.id, 100)]
    assert serving.annotations == {"workers/message": "drill"} and serving.source == "wrangler"


def test_wrangler_rollback_without_an_id_takes_the_previous_full_deployment(wrangler, wrangler_env,
                                                                             live: RunningStaging):
    v17, v18, v19 = (v.id for v in live.staging.workers.versions)
    deploy(live, (v19, 90), (v18, 10))  # a split: skipped, since no version in it is at 100%
    deploy(live, (v17, 100))  # serving now; wrangler drops it first
    run_wrangler(wrangler, wrangler_env, "rollback", "-m", "drill", "-y", "--name", live.config.worker_name)
    assert serving_version(live) == v19


def test_wrangler_rollback_over_a_changed_secret_retries_with_force(wrangler, wrangler_env, live: RunningStaging):
    first = upload_with_secret(live, "API_KEY", "one", "2.0.0")
    deploy(live, (first, 100))
    deploy(live, (upload_with_secret(live, "API_KEY", "two", "2.0.1"), 100))
    run_wrangler(wrangler, wrangler_env, "rollback", first, "-m", "drill", "-y", "--name", live.config.worker_name)
    assert serving_version(live) == first
    posts = [(r.query, r.status) for r in live.staging.request_log.records
             if r.method == "POST" and r.path.endswith("/deployments")]
    assert posts[-2:] == [("", 400), ("force=true", 200)], "10220 first, then wrangler's ?force=true retry"


def test_wrangler_rollback_to_an_unknown_version_prints_the_api_error(wrangler, wrangler_env, live: RunningStaging):
    missing = "00000000-0000-4000-8000-000000000000"
    done = run_wrangler(wrangler, wrangler_env, "rollback", missing, "-m", "drill", "-y", "--name",
                        live.config.worker_name, expect=1)
    assert f"has no version '{missing}' [code: 10230]" in done.stdout + done.stderr


def test_wrangler_versions_secret_put_copies_a_version_as_the_drill_does(wrangler, wrangler_env, live: RunningStaging):
    """wrangler 4.86 reads the version (bindings), its code (content/v2: multipart, cf-entrypoint) and
    the script settings, and uploads a copy with ``inherit`` bindings and ``keep_bindings``: the same wire
    formats the drill's copy of a real worker's known stable version relies on. The newer wrangler asks
    the API to make the copy (``PATCH /workers/workers/{name}/versions/latest``): the same copy results."""
    modules = {"index.js": b'import { x } from "./lib/x.js";\nexport default { fetch() { return new Response(x); } };\n',
               "lib/x.js": b'export const x = "ok";\n'}
    metadata = {"main_module": "index.js", "annotations": {"workers/tag": "3.0.0"}, "compatibility_date": "2025-10-08",
                "bindings": [{"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
                             {"type": "kv_namespace", "name": "KV", "namespace_id": "0f2ac74b498b48028cb68387c421e279"},
                             {"type": "secret_text", "name": "API_KEY", "text": "old-key-1234"}]}
    files = [("metadata", (None, json.dumps(metadata).encode(), "application/json"))]
    files += [(name, (name, code, "application/javascript+module")) for name, code in modules.items()]
    response = cf(live, "POST", "/versions", files=files)
    assert response.status_code == 200, response.text
    source = live.staging.workers.get_version(response.json()["result"]["id"])
    done = run_wrangler(wrangler, wrangler_env, "versions", "secret", "put", "NEW_SECRET", "--name",
                        live.config.worker_name, "--message", "add a secret", "--tag", "3.0.1", stdin="new-secret-5678\n")
    copy = live.staging.workers.versions_newest_first()[0]
    assert f"Created version {copy.id} with secret NEW_SECRET" in done.stdout
    assert "new-secret-5678" not in done.stdout + done.stderr
    assert "new-secret-5678" not in cf(live, "GET", f"/versions/{copy.id}").text
    assert source is not None and copy.id != source.id and copy.tag == "3.0.1"
    assert (copy.main_module, copy.modules, copy.compatibility_date) == ("index.js", modules, "2025-10-08")
    assert sorted(copy.bindings, key=lambda b: b["name"]) == sorted(
        [*source.bindings, {"type": "secret_text", "name": "NEW_SECRET", "text": "new-secret-5678"}],
        key=lambda b: b["name"])


class TailOutput:
    """wrangler tail's stdout, read by a thread so that the test can wait with a deadline; the
    events are the JSON objects it prints (pretty-printed over several lines)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.text = ""

    def _read(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def close(self) -> None:
        self._thread.join(timeout=15)
        self._stream.close()

    def stop(self, proc: subprocess.Popen[str]) -> None:
        """Stop the wrangler tail whose output this is (terminate, then kill past 15 s), then close."""
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        self.close()

    def events(self) -> list[dict[str, Any]]:
        """Every complete JSON object printed so far."""
        decoder, found, index = json.JSONDecoder(), [], self.text.find("{")
        while index >= 0:
            try:
                obj, end = decoder.raw_decode(self.text, index)
            except json.JSONDecodeError:
                break  # the rest has not been printed yet
            found.append(obj)
            index = self.text.find("{", end)
        return found

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> list[dict[str, Any]]:
        """The events printed until one is ``wanted``, waiting at most ``DEADLINE_S``."""
        deadline = time.monotonic() + DEADLINE_S
        while not any(wanted(e) for e in self.events()):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{what} was not printed within {DEADLINE_S}s; output so far:\n{self.text}"
            try:
                self.text += self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
        return self.events()


@pytest.fixture
def wrangler_tail(wrangler, wrangler_env, live: RunningStaging) -> Iterator[Callable[..., TailOutput]]:
    """Start ``wrangler tail <worker> --format json [args]`` and wait until its socket is connected."""
    started: list[tuple[subprocess.Popen[str], TailOutput]] = []

    def start(*args: str) -> TailOutput:
        proc = subprocess.Popen([str(wrangler.binary), "tail", live.config.worker_name, "--format", "json", *args],
                                env=wrangler_env, cwd=wrangler_env["HOME"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        output = TailOutput(proc)
        started.append((proc, output))
        wait_until(lambda: live.staging.tails.listening, timeout=DEADLINE_S, what="wrangler tail to connect",
                   still_alive=lambda: None if proc.poll() is None else
                   f"wrangler tail exited {proc.returncode}:\n{output.text}")
        return output

    yield start
    for proc, output in started:
        output.stop(proc)


def marker_of(event: dict[str, Any]) -> str:
    return str(event.get("event", {}).get("request", {}).get("url", ""))


def tail_event(marker: str, outcome: str = "ok") -> dict[str, Any]:
    return {"outcome": outcome, "scriptName": "api-worker-staging", "eventTimestamp": 1764410000123,
            "event": {"request": {"url": f"https://api.example/{marker}", "method": "GET", "headers": {}, "cf": {}},
                      "response": {"status": 500 if outcome == "exception" else 200}},
            "logs": [{"message": [marker], "level": "log", "timestamp": 1764410000120}], "exceptions": []}


def test_wrangler_tail_prints_published_events(wrangler_tail, live: RunningStaging):
    output = wrangler_tail()
    live.staging.tails.publish(tail_event("published-by-the-test"))
    events = output.wait_for(lambda e: marker_of(e).endswith("/published-by-the-test"), "the published event")
    assert events[0] == tail_event("published-by-the-test")
    health = httpx.get(f"{live.base_url}/health", timeout=10, trust_env=False)
    events = output.wait_for(lambda e: marker_of(e).endswith("/health"), "the event of a GET /health")
    assert events[-1]["event"]["response"]["status"] == health.status_code
    assert events[-1]["scriptVersion"]["id"] == serving_version(live)


def test_wrangler_tail_status_error_filters_out_ok_events(wrangler_tail, live: RunningStaging):
    output = wrangler_tail("--status", "error", "--method", "GET")
    (tail,) = live.staging.tails.open_tails()
    assert tail.filters.outcomes == {"exception", "exceededCpu", "exceededMemory", "unknown"}
    assert tail.filters.methods == {"GET"}
    live.staging.tails.publish(tail_event("healthy-request"))
    live.staging.tails.publish(tail_event("failing-request", outcome="exception"))
    events = output.wait_for(lambda e: marker_of(e).endswith("/failing-request"), "the failing request")
    assert [marker_of(e) for e in events] == ["https://api.example/failing-request"]


# --- the cloudflare SDK -----------------------------------------------------------------------------
@pytest.fixture
def sdk(live: RunningStaging) -> Iterator[Any]:
    cloudflare = pytest.importorskip("cloudflare", reason="pip install 'cloudflare>=5.9,<6' to check the SDK")
    client = cloudflare.Cloudflare(base_url=live.cloudflare_api_url, api_token=live.config.token, max_retries=0,
                                   http_client=cloudflare.DefaultHttpxClient(trust_env=False))
    yield client
    client.close()


def test_sdk_lists_deployments_and_versions_through_every_page(sdk, live: RunningStaging):
    config, workers = live.config, live.staging.workers
    deployments = list(sdk.workers.scripts.deployments.list(config.worker_name, account_id=config.account_id))
    assert [d.id for d in deployments] == [d.id for d in workers.deployments]
    versions = list(sdk.workers.scripts.versions.list(config.worker_name, account_id=config.account_id,
                                                      deployable=True))
    assert [v.id for v in versions] == [v.id for v in workers.versions_newest_first()]
    small_pages = sdk.workers.scripts.versions.list(config.worker_name, account_id=config.account_id, per_page=1)
    assert [v.id for v in small_pages] == [v.id for v in workers.versions_newest_first()]


def test_sdk_gets_a_version_raw(sdk, live: RunningStaging):
    config, version = live.config, live.staging.workers.versions[0]
    raw = sdk.workers.scripts.versions.with_raw_response.get(version.id, account_id=config.account_id,
                                                             script_name=config.worker_name)
    body = raw.http_response.json()
    assert body["result"]["id"] == version.id and body["result"]["resources"]["script"]["etag"] == version.etag


def test_sdk_rolls_back_and_sees_the_errors_by_status(sdk, live: RunningStaging):
    cloudflare = pytest.importorskip("cloudflare")
    config, workers = live.config, live.staging.workers
    deployments = sdk.workers.scripts.deployments
    target = workers.versions[1].id
    created = deployments.create(config.worker_name, account_id=config.account_id, strategy="percentage",
                                 versions=[{"version_id": target, "percentage": 100}],
                                 annotations={"workers_message": "sdk rollback"})
    assert created is not None and workers.serving_deployment().id == created.id
    assert serving_version(live) == target
    with pytest.raises(cloudflare.NotFoundError) as missing:
        deployments.create(config.worker_name, account_id=config.account_id, strategy="percentage",
                           versions=[{"version_id": "00000000-0000-4000-8000-000000000000", "percentage": 100}])
    assert missing.value.status_code == 404
    first = upload_with_secret(live, "API_KEY", "one", "3.0.0")
    deploy(live, (first, 100))
    deploy(live, (upload_with_secret(live, "API_KEY", "two", "3.0.1"), 100))
    with pytest.raises(cloudflare.BadRequestError) as refused:
        deployments.create(config.worker_name, account_id=config.account_id, strategy="percentage",
                           versions=[{"version_id": first, "percentage": 100}])
    assert refused.value.status_code == 400 and "[{'code': 10220" in str(refused.value)
    deployments.create(config.worker_name, account_id=config.account_id, strategy="percentage",
                       versions=[{"version_id": first, "percentage": 100}], force=True)
    assert serving_version(live) == first
    old = workers.deployments[-1].id
    deployments.delete(old, account_id=config.account_id, script_name=config.worker_name)
    assert old not in [d.id for d in workers.deployments]


def test_sdk_creates_and_deletes_a_tail(sdk, live: RunningStaging):
    config = live.config
    tail = sdk.workers.scripts.tail.create(config.worker_name, account_id=config.account_id)
    assert tail is not None and tail.url.startswith(f"ws://127.0.0.1:{live.port}/tail/{tail.id}?secret=")
    assert [t.id for t in live.staging.tails.open_tails()] == [tail.id]
    sdk.workers.scripts.tail.delete(tail.id, account_id=config.account_id, script_name=config.worker_name)
    assert live.staging.tails.open_tails() == []


def test_sdk_reads_and_writes_kv(sdk, live: RunningStaging):
    config = live.config
    values = sdk.kv.namespaces.values
    values.update("sdk/canary:1", account_id=config.account_id, namespace_id=config.kv_namespace_id,
                  value=b"written by the sdk", metadata={"by": "test"})
    assert live.staging.kv.get_own("sdk/canary:1") == b"written by the sdk"
    got = values.get("sdk/canary:1", account_id=config.account_id, namespace_id=config.kv_namespace_id)
    assert got.read() == b"written by the sdk"
    keys = sdk.kv.namespaces.keys.list(config.kv_namespace_id, account_id=config.account_id, prefix="sdk/")
    assert [k.name for k in keys] == ["sdk/canary:1"]


def test_sdk_posts_raw_sql_to_analytics_engine(sdk, live: RunningStaging):
    query = (b"SELECT (SUM(CASE WHEN blob3 = 'HIT' THEN 1 ELSE 0 END) / COUNT(*)) * 100 as hit_rate "
             b"FROM books_api_performance WHERE timestamp > NOW() - INTERVAL 10 MINUTE")
    httpx.get(f"{live.base_url}/v1/search/title", params={"q": "hamlet"}, timeout=5)
    httpx.get(f"{live.base_url}/v1/search/title", params={"q": "hamlet"}, timeout=5)
    response = sdk.post(f"/accounts/{live.config.account_id}/analytics_engine/sql", body=None, content=query,
                        cast_to=httpx.Response, options={"headers": {"Content-Type": "text/plain"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == [{"name": "hit_rate", "type": "Float64"}]
    assert body["data"] == [{"hit_rate": 50.0}]  # the runbook's query, verbatim: one miss, then one hit


def test_sdk_lists_and_gets_the_workers_scripts(sdk, live: RunningStaging):
    config, workers = live.config, live.staging.workers
    scripts = list(sdk.workers.scripts.list(account_id=config.account_id))
    assert [s.id for s in scripts] == [config.worker_name]
    assert scripts[0].etag == workers.main_serving_version().etag and scripts[0].handlers == ["fetch"]
    code = sdk.workers.scripts.get(config.worker_name, account_id=config.account_id)
    serving = workers.main_serving_version()
    assert code == serving.modules[serving.main_module].decode()


def test_sdk_lists_the_accounts(sdk, live: RunningStaging):
    accounts = list(sdk.accounts.list())
    assert [(a.id, a.name) for a in accounts] == [(live.config.account_id, "BooksTrack staging")]


def test_sdk_lists_kv_namespaces_and_reads_a_keys_metadata(sdk, live: RunningStaging):
    config = live.config
    namespaces = list(sdk.kv.namespaces.list(account_id=config.account_id))
    assert [(n.id, n.title) for n in namespaces] == [(config.kv_namespace_id, "bookstrack-staging-kv")]
    assert len(config.kv_namespace_id) == 32 and int(config.kv_namespace_id, 16) >= 0
    sdk.kv.namespaces.values.update("sdk/with-metadata", account_id=config.account_id,
                                    namespace_id=config.kv_namespace_id, value=b"v", metadata={"by": "sdk", "n": 1})
    metadata = sdk.kv.namespaces.metadata.get("sdk/with-metadata", account_id=config.account_id,
                                              namespace_id=config.kv_namespace_id)
    assert metadata == {"by": "sdk", "n": 1}
    keys = sdk.kv.namespaces.keys.list(config.kv_namespace_id, account_id=config.account_id, prefix="sdk/")
    assert [(k.name, k.metadata) for k in keys] == [("sdk/with-metadata", {"by": "sdk", "n": 1})]
