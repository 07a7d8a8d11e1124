"""The runbook's three rollback methods (ROLLBACK_PROCEDURE.md, "Rollback Methods"), one interface::

    method = METHODS["api_rollback"]()          # or "git_revert", "emergency_deploy"
    outcome = await method.execute(context)     # RollbackOutcome, or RollbackError

Each method records its own steps (start, end, outcome, detail) and its total duration. A failed step
is recorded, then :class:`RollbackFailed` is raised naming the method, the step and the cause, and what
state was left behind (a revert commit not deployed, a deployment that serves while git history was
not fixed). Exceptions::

    RollbackError
    ├── RollbackContextError   the context lacks what the method needs; nothing was done
    └── RollbackFailed         a step failed: ``failed_step``; ``steps`` every step recorded (clean-up
                               included); ``deployment`` if one was made; ``left_behind`` in a sentence

Where the methods leave the runbook's letter (REALITY.md):
- Method 1 deploys the **known stable** version by id, not "the previous deployment" that
  ``wrangler rollback`` picks (FAQ: "roll back to the last known stable deployment").
- Method 3 deploys with plain ``wrangler deploy``: production has no ``[env.production]``.
- The drill's repository has no remote: ``git fetch`` / ``git push`` are not steps here.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..clients.cloudflare import (
    SECRETS_CHANGED,
    CloudflareApi,
    DeploymentInfo,
    VersionInfo,
)
from ..clients.errors import ApiRefused
from .worker_repo import WorkerRepo


class RollbackError(Exception):
    """A rollback method could not do its job."""


class RollbackContextError(RollbackError):
    """The rollback context lacks what the method needs; nothing was done."""


class RollbackFailed(RollbackError):
    """A step failed. ``failed_step`` is the step whose failure this reports, ``steps`` every step
    recorded (a clean-up after the failure included), ``deployment`` the rollback deployment if one
    was made before the failure, ``left_behind`` what state the failure left (a sentence, or "")."""

    def __init__(self, message: str, *, method_id: str, steps: tuple["StepRecord", ...],
                 failed_step: "StepRecord | None", deployment: DeploymentInfo | None = None,
                 left_behind: str = "") -> None:
        super().__init__(message)
        self.method_id = method_id
        self.steps = steps
        self.failed_step = failed_step
        self.deployment = deployment
        self.left_behind = left_behind


class _CheckFailed(Exception):
    """What a step saw is not what it needed (e.g. another version serves, forcing is not allowed)."""


@dataclass(frozen=True)
class StepRecord:
    """One step of a method; times are ``time.monotonic()`` seconds. ``follow_up`` marks work done
    after the rollback deployment serves (Method 3's "Fix git history later")."""

    name: str
    started_at: float
    ended_at: float
    outcome: str  # "ok" | "failed"
    detail: str
    follow_up: bool = False

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class RollbackContext:
    """What a rollback needs: the API, the rollback target (the **known stable** version, from a record
    of versions that passed verification), the bad version, and for Methods 2 and 3 the worker's
    repository with the bad and stable commits. ``reason`` completes "Rollback due to ..."."""

    api: CloudflareApi
    known_stable: VersionInfo
    bad: VersionInfo
    reason: str
    repo: WorkerRepo | None = None
    bad_commit: str | None = None
    stable_commit: str | None = None

    @property
    def message(self) -> str:
        """The deployment message, as the runbook writes it: "Rollback due to high error rate (Issue #123)"."""
        reason = self.reason.strip().rstrip(".")
        return reason if reason.lower().startswith("rollback due to") else f"Rollback due to {reason}"


@dataclass(frozen=True)
class RollbackOutcome:
    """A rollback that was carried out: which version now serves, through which deployment, and the
    steps with their times (``*_monotonic``: ``time.monotonic()``; ``*_epoch``: ``time.time()``).
    ``deployed_monotonic`` is when the rollback deployment was confirmed serving (before any follow-up)."""

    method: str
    method_id: str
    version_id: str
    version_tag: str | None
    deployment_id: str
    commit: str | None
    started_monotonic: float
    finished_monotonic: float
    started_epoch: float
    finished_epoch: float
    deployed_monotonic: float
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return self.finished_monotonic - self.started_monotonic

    @property
    def time_to_serving_s(self) -> float:
        """From the start until the rollback deployment was confirmed serving."""
        return self.deployed_monotonic - self.started_monotonic


class _Journal:
    """Records steps as they run; a failing step is recorded, then the exception goes on."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self.steps: list[StepRecord] = []
        self.deployment: DeploymentInfo | None = None
        self.left_behind = ""  # the state a failure from now on would leave, in a sentence
        self._failed_by: dict[int, StepRecord] = {}

    def step_failed_by(self, exc: BaseException) -> StepRecord | None:
        """The step that recorded ``exc``, or the one that recorded its cause."""
        seen: BaseException | None = exc
        while seen is not None:
            if id(seen) in self._failed_by:
                return self._failed_by[id(seen)]
            seen = seen.__cause__ or seen.__context__
        return None

    @contextmanager
    def step(self, name: str, *, follow_up: bool = False) -> Iterator[list[str]]:
        """Yield a list to append detail sentences to."""
        started = self._monotonic()
        notes: list[str] = []
        try:
            yield notes
        except BaseException as exc:  # an interrupt is recorded too, then goes on unchanged
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            record = StepRecord(name, started, self._monotonic(), "failed", "; ".join([*notes, detail]), follow_up)
            self.steps.append(record)
            self._failed_by[id(exc)] = record
            raise
        self.steps.append(StepRecord(name, started, self._monotonic(), "ok", "; ".join(notes), follow_up))


@dataclass(frozen=True)
class _Deployed:
    version_id: str
    version_tag: str | None
    deployment: DeploymentInfo
    commit: str | None
    at_monotonic: float


class RollbackMethod(ABC):
    """One of the runbook's rollback methods. Subclasses set ``id`` and ``name`` and implement ``_run``."""

    id: str
    name: str

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic,
                 epoch: Callable[[], float] = time.time) -> None:
        self._monotonic = monotonic
        self._epoch = epoch

    async def execute(self, ctx: RollbackContext) -> RollbackOutcome:
        self._check_context(ctx)
        journal = _Journal(self._monotonic)
        started, started_epoch = self._monotonic(), self._epoch()
        try:
            deployed = await self._run(ctx, journal)
        except Exception as exc:
            failed = journal.step_failed_by(exc)
            where = f"step {failed.name!r} failed" if failed else "failed"
            message = f"{self.name}: {where}: {exc}"
            if journal.left_behind:
                message += f" ({journal.left_behind})"
            raise RollbackFailed(message, method_id=self.id, steps=tuple(journal.steps), failed_step=failed,
                                 deployment=journal.deployment, left_behind=journal.left_behind) from exc
        return RollbackOutcome(
            method=self.name, method_id=self.id, version_id=deployed.version_id,
            version_tag=deployed.version_tag, deployment_id=deployed.deployment.id, commit=deployed.commit,
            started_monotonic=started, finished_monotonic=self._monotonic(), started_epoch=started_epoch,
            finished_epoch=self._epoch(), deployed_monotonic=deployed.at_monotonic, steps=tuple(journal.steps),
        )

    @abstractmethod
    async def _run(self, ctx: RollbackContext, journal: _Journal) -> _Deployed: ...

    def _check_context(self, ctx: RollbackContext) -> None:
        if ctx.known_stable.id == ctx.bad.id:
            raise RollbackContextError(f"{self.name}: the known stable version {ctx.known_stable.label} is the "
                                       "bad version itself; choose a rollback target that passed verification")

    async def _confirm_serving(self, ctx: RollbackContext, journal: _Journal, deployment: DeploymentInfo,
                               version_id: str) -> float:
        """Step: the deployments list shows the rollback deployment first, serving ``version_id`` at 100%."""
        with journal.step("confirm the rollback deployment serves") as notes:
            serving = await ctx.api.serving()
            if serving.id != deployment.id or serving.versions != ((version_id, 100),):
                raise _CheckFailed(f"expected deployment {deployment.id} serving version {version_id} at 100%, "
                                   f"but deployment {serving.id} serves {list(serving.versions)}")
            notes.append(f"deployment {serving.id} serves version {version_id} at 100%")
        return self._monotonic()


class ApiRollback(RollbackMethod):
    """Method 1: Wrangler Rollback ("Rollback Methods"): a new deployment of the **known stable**
    version at 100%, annotated "Rollback due to ...". Not "the previous deployment" (REALITY.md row
    "wrangler rollback goes to the previous deployment"; FAQ). Over a changed secret the API refuses
    with 10220; the refusal is retried with ``?force=true`` only when ``allow_force``."""

    id = "api_rollback"
    name = "Method 1: Wrangler Rollback"

    def __init__(self, *, allow_force: bool = False, monotonic: Callable[[], float] = time.monotonic,
                 epoch: Callable[[], float] = time.time) -> None:
        super().__init__(monotonic=monotonic, epoch=epoch)
        self.allow_force = allow_force

    async def _run(self, ctx: RollbackContext, journal: _Journal) -> _Deployed:
        api, target = ctx.api, ctx.known_stable
        with journal.step("list recent deployments") as notes:
            serving = await api.serving()
            notes.append(f"deployment {serving.id} serves {list(serving.versions)}")
            if serving.main_version_id != ctx.bad.id:
                notes.append(f"the bad version {ctx.bad.id} is not the main one serving")
        with journal.step(f"identify target deployment: known stable version {target.label}") as notes:
            found = await api.version(target.id)
            notes.append(f"version {found.label} exists (number {found.number})")
        try:
            with journal.step(f"execute rollback: deploy version {target.id} at 100%") as notes:
                deployment = await api.deploy(target.id, ctx.message)
                notes.append(f"deployment {deployment.id}: {ctx.message!r}")
        except ApiRefused as exc:
            if exc.code != SECRETS_CHANGED:
                raise
            if not self.allow_force:
                raise _CheckFailed(
                    f"{exc}. A secret changed since version {target.label}: rolling back brings the old "
                    "secret values back; confirm they are acceptable, then run with allow_force=True") from exc
            with journal.step(f"execute rollback with ?force=true (secrets changed, {SECRETS_CHANGED})") as notes:
                deployment = await api.deploy(target.id, ctx.message, force=True)
                notes.append(f"deployment {deployment.id}: {ctx.message!r}, forced over the changed secrets "
                             "as allowed (allow_force=True)")
        journal.deployment = deployment
        journal.left_behind = f"the rollback deployment {deployment.id} was made; check which version serves"
        at = await self._confirm_serving(ctx, journal, deployment, target.id)
        return _Deployed(target.id, found.tag, deployment, None, at)


class GitRevertRedeploy(RollbackMethod):
    """Method 2: Git Revert + Redeploy ("Rollback Methods"): ``git revert <bad sha> --no-edit``, then
    ``wrangler deploy`` of the reverted tree: a NEW version whose code and vars are the stable ones.
    (No remote here: CI's auto-deploy is the manual ``wrangler deploy`` the runbook allows.)"""

    id = "git_revert"
    name = "Method 2: Git Revert + Redeploy"

    def _check_context(self, ctx: RollbackContext) -> None:
        super()._check_context(ctx)
        if ctx.repo is None or not ctx.bad_commit:
            raise RollbackContextError(f"{self.name} needs the worker repository and the bad commit's sha")

    async def _run(self, ctx: RollbackContext, journal: _Journal) -> _Deployed:
        repo, bad_commit = ctx.repo, ctx.bad_commit
        assert repo is not None and bad_commit is not None
        with journal.step("identify problematic commit: git log --oneline -5") as notes:
            log = await asyncio.to_thread(repo.log, 5)
            notes.extend(f"{c.short} {c.subject}" for c in log)
        with journal.step(f"revert the commit: git revert {bad_commit} --no-edit") as notes:
            revert = await asyncio.to_thread(repo.revert, bad_commit)
            branch = repo.branch() or "a detached HEAD"
            notes.append(f"revert commit {revert} on {branch}")
        journal.left_behind = f"the revert commit {revert} is on {branch} but not deployed"
        with journal.step("deploy: wrangler deploy") as notes:
            version, deployment = await repo.deploy(ctx.api, message=ctx.message)
            journal.deployment = deployment
            journal.left_behind = (f"the revert commit {revert} was deployed by deployment {deployment.id}; "
                                   "check which version serves")
            notes.append(f"version {version.label} deployed by deployment {deployment.id}")
        at = await self._confirm_serving(ctx, journal, deployment, version.id)
        return _Deployed(version.id, version.tag, deployment, revert, at)


class EmergencyDeploy(RollbackMethod):
    """Method 3: Emergency Manual Deploy ("Rollback Methods"): ``git checkout <stable sha>`` (detached),
    deploy directly, skipping CI, with plain ``wrangler deploy`` (REALITY.md: no ``--env production``);
    then "Fix git history later": ``git checkout main`` and ``git revert <bad sha>``, recorded as
    follow-up steps and not deployed. If the deploy fails, the repository goes back to main; if a
    follow-up fails, :class:`RollbackFailed` carries the deployment that serves and says what is left."""

    id = "emergency_deploy"
    name = "Method 3: Emergency Manual Deploy"

    def _check_context(self, ctx: RollbackContext) -> None:
        super()._check_context(ctx)
        if ctx.repo is None or not ctx.bad_commit or not ctx.stable_commit:
            raise RollbackContextError(f"{self.name} needs the worker repository and the stable and bad commits' shas")

    async def _run(self, ctx: RollbackContext, journal: _Journal) -> _Deployed:
        repo, bad_commit, stable_commit = ctx.repo, ctx.bad_commit, ctx.stable_commit
        assert repo is not None and bad_commit is not None and stable_commit is not None
        with journal.step(f"checkout stable commit: git checkout {stable_commit}") as notes:
            checked_out = await asyncio.to_thread(repo.checkout, stable_commit)
            notes.append(f"HEAD detached at {checked_out}")
        try:
            with journal.step("deploy directly: wrangler deploy (skips CI)") as notes:
                version, deployment = await repo.deploy(ctx.api, message=ctx.message)
                journal.deployment = deployment
                notes.append(f"version {version.label} deployed by deployment {deployment.id}")
            at = await self._confirm_serving(ctx, journal, deployment, version.id)
        except Exception:
            await self._back_to_main_after_failure(repo, journal, checked_out)
            raise
        journal.left_behind = (f"the rollback deployment {deployment.id} serves, but git history is not fixed: "
                               f"HEAD is detached at {checked_out} and {bad_commit} is not reverted on main")
        with journal.step("fix git history later: git checkout main", follow_up=True) as notes:
            notes.append(f"main at {await asyncio.to_thread(repo.back_to_main)}")
        journal.left_behind = (f"the rollback deployment {deployment.id} serves, but git history is not fixed: "
                               f"{bad_commit} is not reverted on main")
        with journal.step(f"fix git history later: git revert {bad_commit}", follow_up=True) as notes:
            revert = await asyncio.to_thread(repo.revert, bad_commit)
            notes.append(f"revert commit {revert} on main, not deployed (its tree is the deployed one)")
        return _Deployed(version.id, version.tag, deployment, checked_out, at)

    @staticmethod
    async def _back_to_main_after_failure(repo: WorkerRepo, journal: _Journal, checked_out: str) -> None:
        """Clean-up step after a failed deploy; if it fails too, the failure to report stays the deploy's."""
        try:
            with journal.step("return to main after the failed deploy: git checkout main") as notes:
                notes.append(f"main at {await asyncio.to_thread(repo.back_to_main)}")
        except Exception:
            journal.left_behind = f"HEAD is still detached at {checked_out}: run git checkout main"
        else:
            journal.left_behind = "the repository is back on main"
        if journal.deployment is not None:
            journal.left_behind += f"; the deployment {journal.deployment.id} was made, check which version serves"


METHODS: dict[str, type[RollbackMethod]] = {
    method.id: method for method in (ApiRollback, GitRevertRedeploy, EmergencyDeploy)
}
