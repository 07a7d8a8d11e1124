"""A new user's whole workflow with the real wrangler against the embedded staging (notes/real-clients.md,
"What the embedded staging still lacks"): whoami, ``deploy`` of a Worker directory (with and without
Durable Object migrations), ``versions upload`` + ``versions deploy`` (a gradual split too), ``versions
view``, ``secret put/list/bulk/delete``, ``kv namespace list``, ``kv key put/get/list``.

Every test runs once per wrangler (the pinned 4.86 and the newest 4.x on Node 22: ``cloudflare_answers.py``),
skipped with the reason when one is not installed. A command must succeed whole: every API call it made
answered 2xx, so that nothing is left half done behind a failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from cloudflare_answers import (Wrangler, cf, find_wrangler, run_wrangler, worker_directory, wrangler_environment,
                                wrangler_params)
from bookstrack_rollback.staging import RunningStaging

pytestmark = pytest.mark.clients

SECRET_TEXT = "s3cret-value-that-must-never-show-4711"


@pytest.fixture(scope="module", params=wrangler_params())
def wrangler(request: pytest.FixtureRequest) -> Wrangler:
    return find_wrangler(request.param)


@pytest.fixture
def env(wrangler: Wrangler, live: RunningStaging, tmp_path: Path) -> dict[str, str]:
    return wrangler_environment(wrangler, live, tmp_path)


class Commands:
    """wrangler commands on the staging's Worker, each checked to have made only successful API calls."""

    def __init__(self, wrangler: Wrangler, env: dict[str, str], live: RunningStaging) -> None:
        self.wrangler, self.env, self.live = wrangler, env, live
        self.outputs: list[str] = []

    def __call__(self, *args: str, cwd: Path | None = None, stdin: str = "", expect: int = 0) -> str:
        log = self.live.staging.request_log.records
        before = len(log)
        done = run_wrangler(self.wrangler, self.env, *args, cwd=cwd, stdin=stdin, expect=expect)
        self.outputs.append(done.stdout + done.stderr)
        if expect == 0:
            failed = [f"{r.method} {r.path} -> {r.status}" for r in log[before:] if r.status >= 400]
            assert not failed, f"wrangler {' '.join(args)} succeeded over failed API calls: {failed}"
        return done.stdout + done.stderr

    def api_calls(self, since: int = 0) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.live.staging.request_log.records[since:]]


@pytest.fixture
def wrangler_run(wrangler: Wrangler, env: dict[str, str], live: RunningStaging) -> Commands:
    return Commands(wrangler, env, live)


def named(live: RunningStaging) -> list[str]:
    return ["--name", live.config.worker_name]


def version_id_in(output: str, label: str) -> str:
    found = re.search(label + r":?\s+([0-9a-f-]{36})", output)
    assert found, f"no {label!r} in the output:\n{output}"
    return found.group(1)


def test_whoami_names_the_user_and_the_account(wrangler_run: Commands, live: RunningStaging):
    out = wrangler_run("whoami")
    assert live.config.account_id in out and "drill@bookstrack.example" in out
    assert ("GET", "/client/v4/user/tokens/verify") in wrangler_run.api_calls()


def test_deploy_of_a_worker_directory_serves_its_code_at_once(wrangler_run: Commands, live: RunningStaging,
                                                             tmp_path: Path):
    out = wrangler_run("deploy", cwd=worker_directory("hello", tmp_path))
    version_id = version_id_in(out, "Current Version ID")
    workers = live.staging.workers
    assert workers.serving_deployment().versions == [(version_id, 100)]
    version = workers.require_version(version_id)
    assert b"hello from workerd" in b"".join(version.modules.values())
    assert {"type": "plain_text", "name": "GREETING", "text": "hello from workerd"} in version.bindings
    assert "api-worker-staging.bookstrack-staging.workers.dev" in out  # its workers.dev route was kept on


def test_deploy_with_durable_object_migrations_uploads_and_deploys_in_one_call(wrangler_run: Commands,
                                                                              live: RunningStaging, tmp_path: Path):
    directory = worker_directory("counter", tmp_path)
    out = wrangler_run("deploy", cwd=directory)
    version_id = version_id_in(out, "Current Version ID")
    workers = live.staging.workers
    assert ("PUT", f"/client/v4/accounts/{live.config.account_id}/workers/scripts/{workers.script}") in \
        wrangler_run.api_calls(), "a first deploy with migrations uploads through PUT .../scripts/{name}"
    assert workers.serving_deployment().versions == [(version_id, 100)]
    assert workers.settings.migration_tag == "v1"
    assert any(b["type"] == "durable_object_namespace" for b in workers.require_version(version_id).bindings)
    again = version_id_in(wrangler_run("deploy", cwd=directory), "Current Version ID")  # migrations applied
    assert again != version_id and workers.serving_deployment().versions == [(again, 100)]


def test_versions_upload_then_deploy_whole_then_split(wrangler_run: Commands, live: RunningStaging, tmp_path: Path):
    workers = live.staging.workers
    serving_before = workers.serving_deployment().versions
    out = wrangler_run("versions", "upload", "--tag", "2.0.0", "--message", "upload by the test",
                       cwd=worker_directory("hello", tmp_path))
    uploaded = version_id_in(out, "Worker Version ID")
    assert "Worker Startup Time: 0 ms" in out  # the field is there; the runtime sets it in workerd mode
    assert workers.serving_deployment().versions == serving_before, "an upload deploys nothing"
    assert workers.require_version(uploaded).tag == "2.0.0"
    view = wrangler_run("versions", "view", uploaded, *named(live))
    assert "Tag:         2.0.0" in view and "Message:     upload by the test" in view
    listed = _json_of(wrangler_run("versions", "list", "--json", *named(live)))
    assert uploaded in [v["id"] for v in listed]
    wrangler_run("versions", "deploy", f"{uploaded}@100%", "--yes", "--message", "whole", *named(live))
    assert workers.serving_deployment().versions == [(uploaded, 100)]
    previous = serving_before[0][0]
    wrangler_run("versions", "deploy", f"{uploaded}@50%", f"{previous}@50%", "--yes", "--message", "split",
                 *named(live))
    assert sorted(workers.serving_deployment().versions) == sorted([(uploaded, 50), (previous, 50)])
    status = _json_of(wrangler_run("deployments", "status", "--json", *named(live)))
    assert sorted(v["percentage"] for v in status["versions"]) == [50, 50]


def _json_of(output: str):
    """The JSON value wrangler printed (after any log lines)."""
    start = min(i for i in (output.find("["), output.find("{")) if i >= 0)
    return json.JSONDecoder().raw_decode(output, start)[0]


def shown_anywhere(live: RunningStaging, text: str, outputs: list[str]) -> list[str]:
    """Where ``text`` shows: wrangler's outputs, the API's answers about the Worker, the admin's request log."""
    account = f"{live.cloudflare_api_url}/accounts/{live.config.account_id}"
    headers = {"Authorization": f"Bearer {live.config.token}"}
    serving = live.staging.workers.serving_deployment().versions[0][0]
    answers = {path: cf(live, "GET", path).text for path in
               ("/settings", "/secrets", "/secrets/API_KEY", "/script-settings", "/deployments", f"/versions/{serving}",
                "/versions", f"/content/v2?version={serving}")}
    for url in (f"{account}/workers/scripts", f"{account}/workers/services/{live.config.worker_name}",
                f"{account}/workers/workers/{live.config.worker_name}", f"{live.base_url}/__staging/requests"):
        answers[url] = httpx.get(url, headers=headers, timeout=10, trust_env=False).text
    found = [f"wrangler output {i}" for i, out in enumerate(outputs) if text in out]
    return found + [where for where, answer in answers.items() if text in answer]


def test_secret_put_makes_a_deployed_version_and_the_text_never_shows(wrangler_run: Commands, live: RunningStaging,
                                                                       tmp_path: Path):
    workers = live.staging.workers
    wrangler_run("deploy", cwd=worker_directory("hello", tmp_path))  # a secret edit needs the latest deployed
    code = workers.latest_version()
    out = wrangler_run("secret", "put", "API_KEY", *named(live), stdin=SECRET_TEXT + "\n")
    assert "Success! Uploaded secret API_KEY" in out
    version = workers.latest_version()
    assert version.id != code.id and version.modules == code.modules, "same code, a new version"
    assert version.secrets() == {"API_KEY": SECRET_TEXT}
    assert version.annotations["workers/triggered_by"] == "secret"
    assert workers.serving_deployment().versions == [(version.id, 100)], "a secret put deploys it"
    listed = _json_of(wrangler_run("secret", "list", *named(live)))
    assert listed == [{"name": "API_KEY", "type": "secret_text"}]
    wrangler_run("deployments", "list", *named(live))
    wrangler_run("versions", "view", version.id, *named(live))
    assert shown_anywhere(live, SECRET_TEXT, wrangler_run.outputs) == []


def test_secret_put_over_an_undeployed_latest_version_is_refused_with_wranglers_advice(
        wrangler_run: Commands, live: RunningStaging, tmp_path: Path):
    wrangler_run("versions", "upload", cwd=worker_directory("hello", tmp_path))  # uploaded, not deployed
    before = len(live.staging.workers.versions)
    out = wrangler_run("secret", "put", "API_KEY", *named(live), stdin=SECRET_TEXT + "\n", expect=1)
    assert "the latest version of your Worker isn't currently deployed" in out
    assert len(live.staging.workers.versions) == before, "nothing was made"


def test_secret_bulk_then_delete(wrangler_run: Commands, live: RunningStaging, tmp_path: Path):
    """4.86 sends the bulk through ``.../settings`` (the whole binding list), the newer wrangler through
    ``PATCH .../secrets-bulk``; a delete is ``DELETE .../secrets/{name}``. Each makes a deployed version."""
    workers = live.staging.workers
    wrangler_run("deploy", cwd=worker_directory("hello", tmp_path))
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"ONE": "first-" + SECRET_TEXT, "TWO": "second-" + SECRET_TEXT}))
    wrangler_run("secret", "bulk", str(secrets_file), *named(live))
    latest = workers.latest_version()
    assert latest.secrets() == {"ONE": "first-" + SECRET_TEXT, "TWO": "second-" + SECRET_TEXT}
    assert latest.var("GREETING") == "hello from workerd", "the other bindings are kept"
    wrangler_run("secret", "delete", "ONE", *named(live))
    assert workers.latest_version().secrets() == {"TWO": "second-" + SECRET_TEXT}
    assert workers.serving_deployment().versions == [(workers.latest_version().id, 100)]
    assert _json_of(wrangler_run("secret", "list", *named(live))) == [{"name": "TWO", "type": "secret_text"}]
    assert shown_anywhere(live, SECRET_TEXT, wrangler_run.outputs) == []


def test_kv_namespace_list_and_keys_put_get_list(wrangler_run: Commands, live: RunningStaging):
    namespace = live.config.kv_namespace_id
    listed = _json_of(wrangler_run("kv", "namespace", "list"))
    assert {"id": namespace, "title": "bookstrack-staging-kv", "supports_url_encoding": True} in listed
    assert re.fullmatch(r"[0-9a-f]{32}", namespace)
    wrangler_run("kv", "key", "put", "wrangler/key:1", "written by wrangler", "--namespace-id", namespace, "--remote")
    assert live.staging.kv.get(namespace, "wrangler/key:1") == b"written by wrangler"
    got = wrangler_run("kv", "key", "get", "wrangler/key:1", "--namespace-id", namespace, "--remote")
    assert "written by wrangler" in got
    keys = _json_of(wrangler_run("kv", "key", "list", "--namespace-id", namespace, "--prefix", "wrangler/",
                                 "--remote"))
    assert keys == [{"name": "wrangler/key:1"}]
