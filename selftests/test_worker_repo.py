"""The drill's worker repository (drill/worker_repo.py): a real git repository, the test change, revert,
detached checkout, git failures named with their stderr, and the deploy step (``wrangler deploy``,
plain: REALITY.md "Method 3") against the embedded staging on a real socket."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bookstrack_rollback.clients.cloudflare import CloudflareApi
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.worker_repo import (
    AUTHOR_EMAIL,
    GitError,
    WorkerRepo,
    WorkerRepoError,
    WranglerConfig,
)
from bookstrack_rollback.faults import FaultProfile, parse_fault_profile
from bookstrack_rollback.staging import RunningStaging

T = TypeVar("T")
FAULT = FaultProfile(error_rate=0.5, label="drill: error spike")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def cloudflare(live: RunningStaging, worker: str | None = None) -> CloudflareApi:
    return CloudflareApi(live.cloudflare_api_url, account_id=live.config.account_id,
                         token=Secret(live.config.token), worker=worker or live.config.worker_name)


@pytest.fixture
def repo(tmp_path: Path) -> WorkerRepo:
    return WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0")


def test_create_lays_out_a_wrangler_project_with_the_stable_release_tagged(repo: WorkerRepo):
    config = tomllib.loads((repo.path / "wrangler.toml").read_text())
    assert config == {"name": "api-worker-staging", "main": "src/index.js", "compatibility_date": "2025-11-01",
                      "vars": {"ENVIRONMENT": "staging"}}
    assert 'const VERSION = "1.9.0";' in (repo.path / "src" / "index.js").read_text()
    assert "export default" in (repo.path / "src" / "index.js").read_text()
    [commit] = repo.log(5)
    assert commit.subject == "Stable release 1.9.0" and commit.sha == repo.head() and commit.parents == ()
    assert repo.resolve("1.9.0") == repo.head()
    assert repo.branch() == "main" and repo.is_clean() and repo.release() == "1.9.0"


def test_identity_is_local_and_no_global_config_is_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    repo = WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0")
    assert list(home.iterdir()) == []
    assert repo.git("config", "--local", "user.email").stdout.strip() == AUTHOR_EMAIL
    assert repo.git("log", "-1", "--format=%ae").stdout.strip() == AUTHOR_EMAIL


def test_create_refuses_a_directory_that_is_not_empty(tmp_path: Path):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "README").write_text("x")
    with pytest.raises(WorkerRepoError, match="not empty"):
        WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0")


@pytest.mark.parametrize("text", ['plain', 'a "quoted" \\ back\\slash', "tab\tnew\nline\x7f", "ünïcødé 📚", ""])
def test_the_toml_writer_round_trips_through_tomllib(text: str):
    config = WranglerConfig("w", vars={"A": text, "FAULT_PROFILE": FAULT.to_json()})
    assert WranglerConfig.parse(config.to_toml()) == config


def test_the_toml_writer_refuses_a_var_name_it_cannot_write_bare():
    with pytest.raises(WorkerRepoError, match="letters, digits"):
        WranglerConfig("w", vars={"NOT OK": "x"}).to_toml()


def test_parse_names_the_bad_key():
    with pytest.raises(WorkerRepoError, match="compatibility_date must be a non-empty string"):
        WranglerConfig.parse('name = "w"\nmain = "src/index.js"\n')
    with pytest.raises(WorkerRepoError, match=r"\[vars\] must hold only string values"):
        WranglerConfig.parse('name = "w"\nmain = "m"\ncompatibility_date = "2025-11-01"\n[vars]\nN = 3\n')


def test_the_test_change_sets_fault_profile_and_bumps_the_version(repo: WorkerRepo):
    stable = repo.head()
    sha = repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")
    assert sha == repo.head() == repo.resolve("2.0.0")
    [change, first] = repo.log(5)
    assert (change.subject, change.parents, first.sha) == ("Deploy v2.0 API changes", (stable,), stable)
    config = repo.read_config()
    assert parse_fault_profile(config.vars["FAULT_PROFILE"]) == FAULT
    assert config.vars["ENVIRONMENT"] == "staging" and repo.release() == "2.0.0"
    assert sorted(repo.changed_files(stable, sha)) == ["src/index.js", "wrangler.toml"]


def test_revert_restores_the_stable_tree_in_a_new_commit(repo: WorkerRepo):
    stable = repo.head()
    bad = repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")
    revert = repo.revert(bad)
    head = repo.log(1)[0]
    assert head.sha == revert and head.parents == (bad,)
    assert head.subject == 'Revert "Deploy v2.0 API changes"'
    assert repo.changed_files(stable, revert) == []
    assert "FAULT_PROFILE" not in repo.read_config().vars and repo.release() == "1.9.0"


def test_checkout_detaches_and_back_to_main_returns(repo: WorkerRepo):
    stable = repo.head()
    bad = repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")
    assert repo.checkout(stable) == stable and repo.branch() is None
    assert "FAULT_PROFILE" not in repo.read_config().vars
    assert repo.reflog(1) == [f"checkout: moving from main to {stable}"]
    assert repo.back_to_main() == bad and repo.branch() == "main"


def test_a_git_failure_names_the_command_and_its_stderr_and_changes_nothing(repo: WorkerRepo):
    head = repo.head()
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError) as caught:
        repo.revert(missing)
    message = str(caught.value)
    assert f"`git revert --no-edit {missing}` failed (exit" in message
    assert caught.value.stderr and caught.value.stderr in message
    assert caught.value.command == ("git", "revert", "--no-edit", missing)
    assert repo.head() == head and repo.is_clean() and not (repo.path / ".git" / "REVERT_HEAD").exists()


def test_a_conflicting_revert_is_aborted(repo: WorkerRepo):
    bad = repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")
    repo.commit_test_change(FaultProfile(error_rate=0.2), "2.0.1", "Tune the fault")  # touches the same lines
    head = repo.head()
    with pytest.raises(GitError, match="git revert --no-edit"):
        repo.revert(bad)
    assert repo.head() == head and repo.is_clean() and not (repo.path / ".git" / "REVERT_HEAD").exists()


def test_a_directory_inside_another_repository_is_not_taken_for_it(repo: WorkerRepo):
    inner = repo.path / "src"
    with pytest.raises(GitError, match="not a git repository"):
        WorkerRepo(inner).head()


def test_a_git_call_past_its_deadline_is_an_error(repo: WorkerRepo):
    slow = WorkerRepo(repo.path, timeout_s=1e-6)  # no process starts and finishes within a microsecond
    with pytest.raises(GitError, match=r"`git log -n5 .*` did not finish within 1e-06 s"):
        slow.log(5)


def test_a_missing_git_binary_is_a_git_error(repo: WorkerRepo):
    broken = WorkerRepo(repo.path, git=str(repo.path / "no-such-git"))
    with pytest.raises(GitError, match="could not run"):
        broken.head()


def test_deploy_uploads_the_tree_as_a_version_and_serves_it(live: RunningStaging, repo: WorkerRepo):
    async def scenario():
        async with cloudflare(live) as api:
            version, deployment = await repo.deploy(api, message="Stable release", tag="1.9.0")
            return version, deployment, await api.version(version.id), await api.serving()

    version, deployment, fetched, serving = run(scenario())
    sha = repo.head()
    assert fetched.tag == "1.9.0" and fetched.message == f"Stable release (commit {sha})"
    assert fetched.bindings == ({"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},)
    assert fetched.var("FAULT_PROFILE") is None
    assert deployment.versions == ((version.id, 100),) and deployment.message == "Stable release"
    assert serving.id == deployment.id
    info = httpx.get(f"{live.base_url}/__staging/info", timeout=5).json()
    assert info["serving_versions"] == [{"version_id": version.id, "percentage": 100}]


def test_deploy_of_the_test_change_carries_fault_profile(live: RunningStaging, repo: WorkerRepo):
    repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")

    async def scenario():
        async with cloudflare(live) as api:
            version, _ = await repo.deploy(api, message="Deploy v2.0 API changes")
            return await api.version(version.id)

    fetched = run(scenario())
    assert fetched.tag == "2.0.0"  # the VERSION constant when no tag is given
    assert parse_fault_profile(fetched.var("FAULT_PROFILE") or "") == FAULT


def _newest_version(live: RunningStaging) -> str:
    async def newest():
        async with cloudflare(live) as api:
            return (await api.versions(per_page=1))[0].id
    return run(newest())


def test_deploy_refuses_uncommitted_changes_before_any_upload(live: RunningStaging, repo: WorkerRepo):
    before = _newest_version(live)
    (repo.path / "src" / "extra.js").write_text("export const x = 1;\n")

    async def scenario():
        async with cloudflare(live) as api:
            await repo.deploy(api, message="m", tag="t")

    with pytest.raises(WorkerRepoError, match="uncommitted changes"):
        run(scenario())
    assert _newest_version(live) == before


def test_deploy_refuses_another_workers_config(live: RunningStaging, tmp_path: Path):
    other = WorkerRepo.create(tmp_path / "other", "api-worker", "1.9.0")
    before = _newest_version(live)

    async def scenario():
        async with cloudflare(live) as api:
            await other.deploy(api, message="m", tag="t")

    with pytest.raises(WorkerRepoError, match="names worker 'api-worker', but the Cloudflare API is bound to "
                                              "worker 'api-worker-staging'"):
        run(scenario())
    assert _newest_version(live) == before


# --- a repository made from a version's own code (the staging runs it in workerd) --------------------
CODE = ("reference-worker/src/index.mjs", {
    "reference-worker/src/index.mjs": b'import { withFaultProfile } from "../../staging-hook/fault-hook.mjs";\n',
    "reference-worker/src/app.mjs": b"export const app = 1;\n",
    "staging-hook/fault-hook.mjs": b"export const withFaultProfile = (f) => f;\n",
})
BINDINGS = [
    {"type": "plain_text", "name": "HEALTH_SHAPE", "text": "version"},
    {"type": "kv_namespace", "name": "KV", "namespace_id": "6b7f3c2d9e0a4f1b8c5d2e7a3f9b0c14"},
    {"type": "durable_object_namespace", "name": "JOB_PROGRESS", "class_name": "JobProgress"},
    {"type": "analytics_engine", "name": "PERFORMANCE_ANALYTICS", "dataset": "books_api_performance"},
    {"type": "service", "name": "PROVIDER", "service": "bookstrack-fake-provider"},
    {"type": "version_metadata", "name": "CF_VERSION_METADATA"},
]


def test_a_repository_made_from_a_versions_code_holds_its_modules_and_bindings(tmp_path: Path):
    repo = WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0", code=CODE, bindings=BINDINGS)
    config = repo.read_config()
    data = tomllib.loads((repo.path / "wrangler.toml").read_text())
    assert data["base_dir"] == "src" and data["main"] == "src/reference-worker/src/index.mjs"
    assert data["kv_namespaces"] == [{"binding": "KV", "id": "6b7f3c2d9e0a4f1b8c5d2e7a3f9b0c14"}]
    assert data["durable_objects"]["bindings"] == [{"name": "JOB_PROGRESS", "class_name": "JobProgress"}]
    assert data["version_metadata"] == {"binding": "CF_VERSION_METADATA"}
    assert sorted(map(str, config.bindings()), key=str) == sorted(map(str, BINDINGS), key=str)
    main, modules = repo.modules(config)  # named relative to base_dir, as the code's imports expect
    assert main == CODE[0] and modules == CODE[1]
    assert repo.release() == "1.9.0" and repo.log(1)[0].subject == "Stable release 1.9.0"


def test_the_test_change_of_a_repository_of_real_code_bumps_its_version_file(tmp_path: Path):
    repo = WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0", code=CODE, bindings=BINDINGS)
    stable = repo.head()
    repo.commit_test_change(FAULT, "2.0.0-drill", "Drill test change")
    assert repo.release() == "2.0.0-drill"
    assert parse_fault_profile(repo.read_config().vars["FAULT_PROFILE"]) == FAULT
    assert sorted(repo.changed_files(stable, "HEAD")) == ["VERSION", "wrangler.toml"]  # the code is untouched
    repo.revert(repo.head())
    assert repo.release() == "1.9.0" and "FAULT_PROFILE" not in repo.read_config().vars


def test_a_binding_wrangler_toml_cannot_hold_is_refused_by_name(tmp_path: Path):
    with pytest.raises(WorkerRepoError, match=r"binding API_KEY \(secret_text\) cannot be written"):
        WorkerRepo.create(tmp_path / "worker", "api-worker-staging", "1.9.0", code=CODE,
                          bindings=[{"type": "secret_text", "name": "API_KEY"}])
