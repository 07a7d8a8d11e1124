"""The runbook's three rollback methods (drill/methods.py; ROLLBACK_PROCEDURE.md, "Rollback Methods")
against the embedded staging on a real socket and a real git repository: the stable release deployed,
a test change with a fault profile deployed ("Testing Rollback Procedure", steps 2-3), then each method
brings back a version without the fault, requests succeed again, git history is what the runbook says,
and every step is recorded with its times. Then the failures: an unknown rollback target, a git
failure, a secret changed (10220) without and with ``allow_force``, a deploy that fails half-way."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bookstrack_rollback.clients.cloudflare import (
    CloudflareApi,
    DeploymentInfo,
    VersionInfo,
)
from bookstrack_rollback.clients.errors import ApiRefused, NotFound
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.methods import (
    METHODS,
    ApiRollback,
    EmergencyDeploy,
    GitRevertRedeploy,
    RollbackContext,
    RollbackContextError,
    RollbackFailed,
    RollbackOutcome,
)
from bookstrack_rollback.drill.runner import not_serving
from bookstrack_rollback.drill.worker_repo import GitError, WorkerRepo, WorkerRepoError
from bookstrack_rollback.faults import FaultProfile
from bookstrack_rollback.staging import RunningStaging

T = TypeVar("T")
FAULT = FaultProfile(error_rate=0.5, label="drill: error spike")
REASON = "high error rate (drill)"
PROBES = 100
UNKNOWN_VERSION = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Drill:
    """The stable release and the faulty test change, both deployed (the test change serving)."""

    live: RunningStaging
    api: CloudflareApi
    repo: WorkerRepo
    stable: VersionInfo
    bad: VersionInfo
    stable_commit: str
    bad_commit: str

    def context(self, **changes: Any) -> RollbackContext:
        ctx = RollbackContext(api=self.api, known_stable=self.stable, bad=self.bad, reason=REASON,
                              repo=self.repo, bad_commit=self.bad_commit, stable_commit=self.stable_commit)
        return replace(ctx, **changes)


def cloudflare(live: RunningStaging, worker: str | None = None) -> CloudflareApi:
    return CloudflareApi(live.cloudflare_api_url, account_id=live.config.account_id,
                         token=Secret(live.config.token), worker=worker or live.config.worker_name)


def run_drill(live: RunningStaging, tmp_path: Path, body: Callable[[Drill], Awaitable[T]]) -> T:
    """Set up the drill (one event loop for the whole test) and run ``body`` on it."""

    async def main() -> T:
        async with cloudflare(live) as api:
            repo = WorkerRepo.create(tmp_path / "worker", live.config.worker_name, "1.9.0")
            stable_commit = repo.head()
            stable, _ = await repo.deploy(api, message="Stable release 1.9.0", tag="1.9.0")
            bad_commit = repo.commit_test_change(FAULT, "2.0.0", "Deploy v2.0 API changes")
            bad, _ = await repo.deploy(api, message="Deploy v2.0 API changes", tag="2.0.0")
            drill = Drill(live, api, repo, await api.version(stable.id), await api.version(bad.id),
                          stable_commit, bad_commit)
            return await body(drill)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


async def serving_versions(live: RunningStaging) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=5, trust_env=False) as admin:
        return (await admin.get("/__staging/info")).json()["serving_versions"]


async def error_share(live: RunningStaging, n: int = PROBES) -> float:
    """The share of ``n`` title searches that do not answer 200."""
    async with httpx.AsyncClient(base_url=live.base_url, timeout=5, trust_env=False) as client:
        statuses = [(await client.get("/v1/search/title", params={"q": "hamlet"})).status_code for _ in range(n)]
    return sum(status != 200 for status in statuses) / n


async def assert_faulty(drill: Drill) -> None:
    assert drill.stable.var("FAULT_PROFILE") is None
    assert drill.bad.var("FAULT_PROFILE") == FAULT.to_json()
    assert await serving_versions(drill.live) == [{"version_id": drill.bad.id, "percentage": 100}]
    assert 0.35 <= await error_share(drill.live) <= 0.65  # error_rate 0.5 over 100 seeded draws


def assert_recorded(outcome: RollbackOutcome, names: list[str]) -> None:
    assert [step.name for step in outcome.steps] == names
    assert all(step.outcome == "ok" for step in outcome.steps), outcome.steps
    assert outcome.duration_s == outcome.finished_monotonic - outcome.started_monotonic > 0
    assert outcome.started_epoch <= outcome.finished_epoch
    assert outcome.started_monotonic <= outcome.deployed_monotonic <= outcome.finished_monotonic
    previous_end = outcome.started_monotonic
    for step in outcome.steps:
        assert previous_end <= step.started_at <= step.ended_at <= outcome.finished_monotonic
        previous_end = step.ended_at


def expected_steps(method_id: str, drill: Drill) -> list[str]:
    return {
        "api_rollback": [
            "list recent deployments",
            f"identify target deployment: known stable version {drill.stable.label}",
            f"execute rollback: deploy version {drill.stable.id} at 100%",
            "confirm the rollback deployment serves",
        ],
        "git_revert": [
            "identify problematic commit: git log --oneline -5",
            f"revert the commit: git revert {drill.bad_commit} --no-edit",
            "deploy: wrangler deploy",
            "confirm the rollback deployment serves",
        ],
        "emergency_deploy": [
            f"checkout stable commit: git checkout {drill.stable_commit}",
            "deploy directly: wrangler deploy (skips CI)",
            "confirm the rollback deployment serves",
            "fix git history later: git checkout main",
            f"fix git history later: git revert {drill.bad_commit}",
        ],
    }[method_id]


def test_methods_are_the_runbooks_three():
    assert {key: (cls, cls.id, cls.name) for key, cls in METHODS.items()} == {
        "api_rollback": (ApiRollback, "api_rollback", "Method 1: Wrangler Rollback"),
        "git_revert": (GitRevertRedeploy, "git_revert", "Method 2: Git Revert + Redeploy"),
        "emergency_deploy": (EmergencyDeploy, "emergency_deploy", "Method 3: Emergency Manual Deploy"),
    }


@pytest.mark.parametrize("method_id", list(METHODS))
def test_each_method_rolls_back_the_faulty_test_change(live: RunningStaging, tmp_path: Path, method_id: str):
    async def body(drill: Drill) -> None:
        await assert_faulty(drill)
        outcome = await METHODS[method_id]().execute(drill.context())

        # the staging serves a version without FAULT_PROFILE, through the new deployment
        assert await serving_versions(drill.live) == [{"version_id": outcome.version_id, "percentage": 100}]
        now = await drill.api.version(outcome.version_id)
        assert now.var("FAULT_PROFILE") is None and now.bindings == drill.stable.bindings
        serving = await drill.api.serving()
        assert serving.id == outcome.deployment_id and serving.message == f"Rollback due to {REASON}"
        assert await error_share(drill.live) == 0.0

        repo, log = drill.repo, drill.repo.log(5)
        if method_id == "api_rollback":  # the known stable version itself; git untouched
            assert (outcome.version_id, outcome.version_tag, outcome.commit) == (drill.stable.id, "1.9.0", None)
            assert repo.head() == drill.bad_commit and repo.branch() == "main"
        else:  # a NEW version whose code and vars are the stable commit's
            assert outcome.version_id not in (drill.stable.id, drill.bad.id) and outcome.version_tag == "1.9.0"
            assert now.message == f"Rollback due to {REASON} (commit {outcome.commit})"
            assert repo.branch() == "main" and log[0].parents == (drill.bad_commit,)
            assert log[0].subject == 'Revert "Deploy v2.0 API changes"'
            assert repo.changed_files(drill.stable_commit, log[0].sha) == []
        if method_id == "git_revert":  # the revert commit is what was deployed
            assert outcome.commit == log[0].sha
        if method_id == "emergency_deploy":  # deployed from the detached stable commit, then history fixed
            assert outcome.commit == drill.stable_commit
            assert repo.reflog(3)[1:] == [f"checkout: moving from {drill.stable_commit} to main",
                                          f"checkout: moving from main to {drill.stable_commit}"]
            assert [step.follow_up for step in outcome.steps] == [False, False, False, True, True]

        assert (outcome.method_id, outcome.method) == (method_id, METHODS[method_id].name)
        assert_recorded(outcome, expected_steps(method_id, drill))

    run_drill(live, tmp_path, body)


def test_api_rollback_goes_to_the_known_stable_not_the_previous_deployment(live: RunningStaging, tmp_path: Path):
    """REALITY.md: the previous deployment may itself be broken (FAQ: roll back to the last known stable)."""

    async def body(drill: Drill) -> None:
        drill.repo.commit_test_change(FaultProfile(error_rate=0.3), "2.0.1", "Hotfix that is broken too")
        worse, _ = await drill.repo.deploy(drill.api, message="Hotfix that is broken too")
        outcome = await ApiRollback().execute(drill.context(bad=worse))
        assert outcome.version_id == drill.stable.id != drill.bad.id
        assert await error_share(drill.live) == 0.0

    run_drill(live, tmp_path, body)


def test_an_unknown_stable_version_fails_at_identifying_the_target(live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        unknown = replace(drill.stable, id=UNKNOWN_VERSION)
        with pytest.raises(RollbackFailed) as caught:
            await ApiRollback().execute(drill.context(known_stable=unknown))
        failed = caught.value.failed_step
        assert failed is not None and failed.outcome == "failed"
        assert failed.name == f"identify target deployment: known stable version 1.9.0 ({UNKNOWN_VERSION})"
        assert "HTTP 404" in failed.detail and UNKNOWN_VERSION in failed.detail
        assert str(caught.value).startswith(f"Method 1: Wrangler Rollback: step {failed.name!r} failed: ")
        assert isinstance(caught.value.__cause__, NotFound)
        assert [s.outcome for s in caught.value.steps] == ["ok", "failed"] and caught.value.deployment is None
        assert await serving_versions(drill.live) == [{"version_id": drill.bad.id, "percentage": 100}]

    run_drill(live, tmp_path, body)


def test_a_git_failure_names_the_command_and_its_stderr(live: RunningStaging, tmp_path: Path):
    missing = "0123456789abcdef0123456789abcdef01234567"

    async def body(drill: Drill) -> None:
        with pytest.raises(RollbackFailed) as caught:
            await GitRevertRedeploy().execute(drill.context(bad_commit=missing))
        cause = caught.value.__cause__
        assert isinstance(cause, GitError) and cause.stderr
        message = str(caught.value)
        assert f"step 'revert the commit: git revert {missing} --no-edit' failed" in message
        assert f"`git revert --no-edit {missing}` failed" in message and cause.stderr in message
        assert [s.outcome for s in caught.value.steps] == ["ok", "failed"]
        assert drill.repo.head() == drill.bad_commit and drill.repo.is_clean()
        assert await serving_versions(drill.live) == [{"version_id": drill.bad.id, "percentage": 100}]

    run_drill(live, tmp_path, body)


async def rotate_secret(drill: Drill) -> VersionInfo:
    """Deploy a newer version whose secret differs from the stable version's (no secret there)."""
    config = drill.repo.read_config()
    main_module, modules = drill.repo.modules(config)
    version = await drill.api.upload_version(
        main_module=main_module, modules=modules,
        bindings=[*config.bindings(), {"type": "secret_text", "name": "GOOGLE_BOOKS_API_KEY", "text": "rotated"}],
        annotations={"workers/tag": "2.0.0-secret", "workers/message": "Rotate the Google Books key"})
    await drill.api.deploy(version.id, "Rotate the Google Books key")
    return await drill.api.version(version.id)


def test_a_changed_secret_refuses_the_rollback_unless_force_is_allowed(live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        rotated = await rotate_secret(drill)
        with pytest.raises(RollbackFailed) as caught:
            await ApiRollback().execute(drill.context(bad=rotated))
        failed = caught.value.failed_step
        assert failed is not None and failed.name == f"execute rollback: deploy version {drill.stable.id} at 100%"
        assert "[10220]" in failed.detail and "GOOGLE_BOOKS_API_KEY" in failed.detail
        assert "allow_force=True" in str(caught.value)
        cause = caught.value.__cause__
        assert isinstance(cause.__cause__ if cause else None, ApiRefused) and cause.__cause__.code == 10220
        assert await serving_versions(drill.live) == [{"version_id": rotated.id, "percentage": 100}]

    run_drill(live, tmp_path, body)


def test_allow_force_retries_a_changed_secret_refusal_with_force(live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        rotated = await rotate_secret(drill)
        outcome = await ApiRollback(allow_force=True).execute(drill.context(bad=rotated))
        assert outcome.version_id == drill.stable.id
        assert await serving_versions(drill.live) == [{"version_id": drill.stable.id, "percentage": 100}]
        attempt, forced = outcome.steps[2:4]
        assert (attempt.outcome, forced.outcome) == ("failed", "ok") and "[10220]" in attempt.detail
        assert forced.name == "execute rollback with ?force=true (secrets changed, 10220)"
        assert "allow_force=True" in forced.detail

    run_drill(live, tmp_path, body)


def test_emergency_deploy_that_fails_goes_back_to_main(live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        async with cloudflare(drill.live, worker="api-worker") as elsewhere:  # not the repo's worker
            with pytest.raises(RollbackFailed) as caught:
                await EmergencyDeploy().execute(drill.context(api=elsewhere))
        assert isinstance(caught.value.__cause__, WorkerRepoError)
        assert [(s.name, s.outcome) for s in caught.value.steps] == [
            (f"checkout stable commit: git checkout {drill.stable_commit}", "ok"),
            ("deploy directly: wrangler deploy (skips CI)", "failed"),
            ("return to main after the failed deploy: git checkout main", "ok"),
        ]
        assert caught.value.failed_step == caught.value.steps[1]
        assert "the repository is back on main" in str(caught.value)
        assert drill.repo.branch() == "main" and drill.repo.head() == drill.bad_commit

    run_drill(live, tmp_path, body)


def test_emergency_deploy_whose_history_fix_fails_still_reports_the_serving_deployment(
        live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        later = drill.repo.commit_test_change(FaultProfile(error_rate=0.2), "2.0.1", "Tune it")  # same lines
        with pytest.raises(RollbackFailed) as caught:
            await EmergencyDeploy().execute(drill.context())
        failed, deployment = caught.value.failed_step, caught.value.deployment
        assert failed is not None and failed.follow_up and "git revert --no-edit" in failed.detail
        assert deployment is not None and caught.value.left_behind == (
            f"the rollback deployment {deployment.id} serves, but git history is not fixed: "
            f"{drill.bad_commit} is not reverted on main")
        [(serving_id, _)] = deployment.versions
        assert await serving_versions(drill.live) == [{"version_id": serving_id, "percentage": 100}]
        assert (await drill.api.version(serving_id)).var("FAULT_PROFILE") is None
        assert drill.repo.branch() == "main" and drill.repo.head() == later and drill.repo.is_clean()

    run_drill(live, tmp_path, body)


def test_git_revert_whose_deploy_fails_says_the_revert_is_not_deployed(live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        async with cloudflare(drill.live, worker="api-worker") as elsewhere:
            with pytest.raises(RollbackFailed) as caught:
                await GitRevertRedeploy().execute(drill.context(api=elsewhere))
        revert = drill.repo.head()
        assert caught.value.left_behind == f"the revert commit {revert} is on main but not deployed"
        assert caught.value.left_behind in str(caught.value)
        assert caught.value.failed_step is not None and caught.value.failed_step.name == "deploy: wrangler deploy"
        assert await serving_versions(drill.live) == [{"version_id": drill.bad.id, "percentage": 100}]

    run_drill(live, tmp_path, body)


def test_a_context_without_what_the_method_needs_is_refused_before_anything_is_done(
        live: RunningStaging, tmp_path: Path):
    async def body(drill: Drill) -> None:
        with pytest.raises(RollbackContextError, match="needs the worker repository"):
            await GitRevertRedeploy().execute(drill.context(repo=None))
        with pytest.raises(RollbackContextError, match="stable and bad commits"):
            await EmergencyDeploy().execute(drill.context(stable_commit=None))
        with pytest.raises(RollbackContextError, match="is the bad version itself"):
            await ApiRollback().execute(drill.context(known_stable=drill.bad))
        assert drill.repo.head() == drill.bad_commit
        assert await serving_versions(drill.live) == [{"version_id": drill.bad.id, "percentage": 100}]

    run_drill(live, tmp_path, body)


def test_steps_are_timed_on_the_injected_clock(live: RunningStaging, tmp_path: Path):
    ticks = itertools.count(100.0)

    async def body(drill: Drill) -> RollbackOutcome:
        return await ApiRollback(monotonic=lambda: next(ticks), epoch=lambda: 1_764_410_000.0).execute(
            drill.context())

    outcome = run_drill(live, tmp_path, body)
    assert [(s.started_at, s.ended_at) for s in outcome.steps] == [(101, 102), (103, 104), (105, 106), (107, 108)]
    assert (outcome.started_monotonic, outcome.deployed_monotonic, outcome.finished_monotonic) == (100, 109, 110)
    assert outcome.duration_s == 10 and outcome.time_to_serving_s == 9
    assert outcome.started_epoch == outcome.finished_epoch == 1_764_410_000.0


def test_the_message_is_the_runbooks_sentence():
    api: Any = None
    stable = VersionInfo("s", 1, "", "1.9.0", None, None)
    ctx = RollbackContext(api=api, known_stable=stable, bad=replace(stable, id="b"), reason="high error rate.")
    assert ctx.message == "Rollback due to high error rate"
    assert replace(ctx, reason="Rollback due to a 5xx spike (Issue #123)").message == \
        "Rollback due to a 5xx spike (Issue #123)"


# --- the test change counts as live only when the API says it serves ------------------------------
def _deployment(*versions: tuple[str, int]) -> DeploymentInfo:
    return DeploymentInfo(id="dep-1", created_on="2026-12-05T10:00:00.000Z", versions=versions, message=None,
                          source="api")


def _version(version_id: str) -> VersionInfo:
    return VersionInfo(id=version_id, number=4, created_on="2026-12-05T10:00:00.000Z", tag="1.9.0+drill",
                       message=None, triggered_by="upload")


def test_a_test_change_serving_all_traffic_is_live():
    assert not_serving(_deployment(("bad", 100)), _version("bad")) is None


@pytest.mark.parametrize("serving", [(("stable", 100),), (("bad", 50), ("stable", 50))], ids=["other", "split"])
def test_a_half_done_deploy_is_not_counted_as_live_and_says_what_serves(serving):
    sentence = not_serving(_deployment(*serving), _version("bad"))
    assert sentence is not None
    assert "the fault is not live" in sentence and "stable at" in sentence and "dep-1" in sentence
