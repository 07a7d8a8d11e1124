"""The quarterly drill (ROLLBACK_PROCEDURE.md, "Testing Rollback Procedure"), in fixed phases:

    preflight → deploy test change → detect → decide → roll back → verify → cleanup

Each phase is journaled (start, end, outcome) in the drill record. Cleanup runs in ``finally``:
whatever happens (an assertion, an exception, Ctrl-C, cancellation), the target ends on the known
stable version with no runtime fault left, the lock is released and the record says how it ended.
A drill that dies outright (SIGKILL) is found and healed by the next one's preflight.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..clients.cloudflare import CloudflareApi, VersionInfo
from ..clients.errors import TargetError
from ..comms import (
    RecoveryFacts,
    RecoveryMeasures,
    StatusState,
    TimelineEntry,
    back_to_normal,
    preserve_tail_logs,
    render_postmortem,
    spike_reason,
)
from ..config import SuiteSettings, Target
from ..faults import RUNTIME_FLAG_KEY
from ..stats import Rate, quantile
from ..triage.decision import Action
from ..triage.detector import Assessment, Detector
from ..triage.triggers import TriggerEvaluator
from ..verdicts import Verdict
from .lock import DrillRefused, release_lock, take_lock
from .methods import METHODS, RollbackContext, RollbackError
from .notify import Notifier
from .record import (
    ERROR,
    FAILED,
    INTERRUPTED,
    PASSED,
    DrillRecord,
    Measures,
    RecordStore,
)
from .scenarios import Scenario
from .signals import SignalFeed
from .verification import all_passed, judge_recovery
from .version_copy import CopyMismatch, copy_version
from .worker_repo import FAULT_PROFILE_VAR, WorkerRepo

MIGRATION_KEY = "migration/in-progress"
TICK_S = 0.2
BASELINE_MIN = 2.5  # runbook minutes of signals before the deploy: enough to show a 5% rate clean
CLEANUP_WAIT_S = 15.0  # how long cleanup waits for the signal tasks to finish


class DrillError(Exception):
    """The drill could not run (refused, or the target could not be prepared)."""


def method_unavailable(target: Target, method_id: str) -> str | None:
    """Why ``method_id`` cannot be drilled on ``target`` (a sentence), or None when it can. Methods 2
    and 3 need the test change as a commit of the drill's own worker repository: only a synthetic
    worker has one; a real worker's test change is a copy of its known stable version."""
    if target.synthetic_worker or method_id == "api_rollback":
        return None
    return (f"{METHODS[method_id].name} reverts or checks out the test change's commit in the worker's "
            f"repository, but the test change of a real worker ({target.name}) is a copy of its known stable "
            "version with FAULT_PROFILE set (no commit): it is drilled with Method 1 only")


@dataclass(frozen=True)
class DrillOptions:
    reports: Path = Path("reports")
    probe_rate: float = 30.0
    approver: str = "drill approver (automatic)"
    allow_production: bool = False
    lock_lease_s: float = 600.0
    work_dir: Path | None = None  # where the worker repository is made (default: a temporary folder)


@dataclass
class _Run:
    """What one drill carries between its phases."""

    api: CloudflareApi
    detector: Detector | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    known_stable: VersionInfo | None = None
    bad: VersionInfo | None = None
    snapshot: dict[str, bytes | None] = field(default_factory=dict)
    locked: bool = False
    repo: WorkerRepo | None = None
    stable_sha: str | None = None
    bad_sha: str | None = None


class DrillRunner:
    def __init__(self, settings: SuiteSettings, scenario: Scenario, method_id: str,
                 options: DrillOptions = DrillOptions(), progress: Callable[[str], None] = lambda _t: None) -> None:
        if method_id not in METHODS:
            raise DrillError(f"unknown rollback method {method_id!r}; known: {sorted(METHODS)}")
        self.settings, self.scenario, self.method_id = settings, scenario, method_id
        self.options, self.progress = options, progress
        self.target, self.runbook = settings.target, settings.runbook
        self.store = RecordStore(options.reports)
        scale = settings.time_scale
        drill = self.runbook.drill
        self.record = DrillRecord(
            drill_id=f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{scenario.name}-{method_id}-"
                     f"{uuid.uuid4().hex[:6]}",
            scenario=scenario.name, scenario_description=scenario.description, method=method_id,
            target=self.target.name, environment=self.target.environment, time_scale=scale, seed=settings.seed,
            started_at=time.time(), expected_decision=scenario.expect.value,
            measures=Measures(budget_detect_s=settings.seconds(drill.time_to_detect_budget_min),
                              budget_rollback_s=settings.seconds(drill.time_to_rollback_budget_min),
                              budget_total_s=settings.seconds(drill.total_recovery_budget_min), time_scale=scale))
        self.notifier = Notifier(self.target, self.runbook, self.record.messages)

    # --- the drill ---------------------------------------------------------------------------------
    async def run(self) -> DrillRecord:
        target = self.target
        missing = [what for what, present in (
            ("CLOUDFLARE_API_TOKEN", bool(target.token)), ("CLOUDFLARE_ACCOUNT_ID", bool(target.account_id)),
            ("worker", bool(target.worker)), ("cloudflare_api_url", bool(target.cloudflare_api_url)),
            ("kv_namespace_id", bool(target.kv_namespace_id))) if not present]
        if missing or not target.base_url:
            raise DrillError(f"{target.describe()}: a drill needs the Cloudflare API and the worker's KV namespace; "
                             f"missing: {', '.join(missing)} (set them in {target.source} or the environment; "
                             "README, \"Drilling the real staging\")")
        not_here = method_unavailable(target, self.method_id)
        if not_here:
            raise DrillError(f"{target.describe()}: {not_here}")
        if target.is_production and not self.options.allow_production:
            raise DrillError("refusing to drill production: drills inject faults; pass the explicit override "
                             "(--drill-allow-production) only if you mean it")
        assert target.cloudflare_api_url and target.account_id and target.worker
        self.store.save(self.record)
        run = _Run(CloudflareApi(target.cloudflare_api_url, account_id=target.account_id, token=target.token,
                                 worker=target.worker))
        try:
            await self._preflight(run)
            await self._deploy_test_change(run)
            assessment = await self._detect(run)
            decision_action = await self._decide(run, assessment)
            if decision_action in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
                await self._roll_back_and_verify(run, assessment)
            self._conclude(decision_action)
        except asyncio.CancelledError:
            self.record.status = INTERRUPTED
            self.record.failure = "the drill was interrupted (cancelled or Ctrl-C); cleanup restored the target"
            raise
        except KeyboardInterrupt:
            self.record.status = INTERRUPTED
            self.record.failure = "the drill was interrupted (Ctrl-C); cleanup restored the target"
            raise
        except (DrillRefused, DrillError) as exc:
            self.record.status = ERROR
            self.record.failure = str(exc)
            raise
        except (TargetError, RollbackError) as exc:
            self.record.status = ERROR
            self.record.failure = f"{type(exc).__name__}: {exc}"
            raise DrillError(self.record.failure) from exc
        except Exception as exc:  # a bug of the drill itself: still a record, still a cleanup
            self.record.status = ERROR
            self.record.failure = f"the drill itself failed: {exc!r}"
            raise
        finally:
            await asyncio.shield(self._cleanup(run))
        return self.record

    # --- phases --------------------------------------------------------------------------------
    async def _preflight(self, run: _Run) -> None:
        phase = self.record.begin("preflight")
        self.progress("preflight: lock, heal, known stable, baseline")
        healed = self.store.mark_abandoned(self.target.name)
        if healed:
            self.record.healed.append(f"marked interrupted: drill record(s) {', '.join(healed)}")
        assert self.target.kv_namespace_id
        note = await take_lock(run.api, self.target.kv_namespace_id, owner="bookstrack-rollback drill",
                               drill_id=self.record.drill_id, lease_s=self.options.lock_lease_s)
        run.locked = True
        if note:
            self.record.healed.append(note)
        run.known_stable = await self._known_stable(run)
        if self.target.synthetic_worker:  # an emulated target: the drill's own worker repository
            work = self.options.work_dir or Path(tempfile.mkdtemp(prefix="drill-worker-"))
            assert self.target.worker
            run.repo = WorkerRepo.create(work / self.record.drill_id, self.target.worker,
                                         run.known_stable.tag or "stable")
            run.stable_sha = run.repo.head()
        await self._keep_rollbackable(run)
        self.record.healed += await self._heal(run)
        self.record.known_stable = {"id": run.known_stable.id, "tag": run.known_stable.tag}
        for key, _expected in self.target.canaries:
            run.snapshot[key] = await run.api.kv_get(self.target.kv_namespace_id, key)
        # signals start now: the baseline before the deploy is part of the evidence
        baseline_s = self.settings.seconds(BASELINE_MIN)
        run.detector = Detector(self.runbook, self.settings.time_scale, deployed_at=math.inf, baseline_s=baseline_s)
        # each drill its own query sequence (from the run's seed): a query an earlier drill made may be cached
        feed_seed = self.settings.seed + zlib.crc32(self.record.drill_id.encode())
        self.record.seed = feed_seed
        feed = SignalFeed(self.target, run.api, run.detector, rate=self.options.probe_rate, seed=feed_seed)
        run.tasks.append(asyncio.create_task(feed.run(run.stop)))
        baseline_end = time.time() + baseline_s
        await asyncio.sleep(max(0.0, baseline_end - time.time()))
        window = run.detector.window(baseline_end - baseline_s, baseline_end)
        firing = [r for r in TriggerEvaluator(self.runbook).evaluate(window).values() if r.fires]
        if firing:
            self.record.end(phase, "failed", "baseline not healthy: " + "; ".join(r.sentence for r in firing))
            raise DrillError(f"the baseline before the drill is not healthy: {firing[0].sentence}; "
                             "fix the target before drilling")
        self.record.end(phase, "ok", f"known stable {run.known_stable.label}; baseline healthy over "
                        f"{len(window.samples)} probes")

    async def _known_stable(self, run: _Run) -> VersionInfo:
        """The last version that passed verification: the last drill's, else the target's known stable
        tag (never merely the previous deployment: the FAQ)."""
        candidates = [line for line in self.store.history_lines()
                      if line.get("target") == self.target.name and line.get("status") == PASSED
                      and line.get("verified_version_id")]
        versions = await run.api.versions()
        by_id = {v.id: v for v in versions}
        for line in reversed(candidates):
            if line["verified_version_id"] in by_id:
                return await run.api.version(line["verified_version_id"])
        wanted = self.target.known_stable
        found = await run.api.clean_version(wanted, versions) if wanted else None
        if found is not None:
            return found
        raise DrillError(f"no known stable version: none of the {len(versions)} rollbackable versions matches "
                         f"{wanted!r} without a FAULT_PROFILE; set known_stable for {self.target.source}")

    async def _keep_rollbackable(self, run: _Run) -> None:
        """Only the 10 newest versions can be rolled back to, and every drill adds one. When the known
        stable version nears the edge, redeploy it from git (the FAQ: "For older versions, redeploy from
        git"), or for a real worker upload an identical copy of it, so the drill's own rollback target
        stays reachable."""
        assert run.known_stable
        newest = [v.id for v in await run.api.versions()]
        margin = self.runbook.platform.rollbackable_versions - 2
        if run.known_stable.id in newest[:margin]:
            return
        old = run.known_stable
        if run.repo is not None:
            version, _ = await run.repo.deploy(run.api, tag=old.tag,
                                               message=f"Redeploy of the known stable {old.label} from git")
            run.known_stable = await run.api.version(version.id)  # with its bindings
            how = "redeployed it from git"
        else:  # the copy is already read back, bindings included
            run.known_stable = await self._copy(run, old, {}, tag=old.tag or "known stable",
                                                message=f"Re-upload of the known stable {old.label}, to keep it "
                                                "rollbackable")
            how = "uploaded a copy of it (same code and bindings, not deployed)"
        self.record.healed.append(f"the known stable {old.label} was about to leave the {margin + 2} versions that "
                                  f"can be rolled back to: {how} as {run.known_stable.label}")

    async def _copy(self, run: _Run, source: VersionInfo, set_vars: dict[str, str | None], *, tag: str,
                    message: str) -> VersionInfo:
        try:
            return await copy_version(run.api, source, set_vars=set_vars, tag=tag, message=message)
        except CopyMismatch as exc:
            raise DrillError(str(exc)) from exc

    async def _heal(self, run: _Run) -> list[str]:
        """Remove what a crashed drill left behind: a runtime fault, a faulty version serving, lost canaries."""
        notes = []
        namespace = self.target.kv_namespace_id
        assert namespace and run.known_stable
        if await run.api.kv_get(namespace, RUNTIME_FLAG_KEY) is not None:
            await run.api.kv_delete(namespace, RUNTIME_FLAG_KEY)
            notes.append("cleared a runtime fault flag left behind")
        serving = await run.api.serving()
        current = await run.api.version(serving.main_version_id)
        if current.var("FAULT_PROFILE") is not None or len(serving.versions) > 1:
            await run.api.deploy(run.known_stable.id, "Drill cleanup: back to the known stable version")
            notes.append(f"{current.label} (carrying a FAULT_PROFILE) was serving: redeployed "
                         f"{run.known_stable.label}")
        for key, expected in self.target.canaries:
            if await run.api.kv_get(namespace, key) != expected.encode():
                await run.api.kv_put(namespace, key, expected.encode())
                notes.append(f"restored canary record {key!r}")
        return notes

    async def _deploy_test_change(self, run: _Run) -> None:
        phase = self.record.begin("deploy test change")
        assert run.known_stable and run.detector and self.target.worker
        if self.scenario.runtime_fault is not None:
            assert self.target.kv_namespace_id
            await run.api.kv_put(self.target.kv_namespace_id, RUNTIME_FLAG_KEY,
                                 self.scenario.runtime_fault.to_json().encode())
            self.progress("runtime fault set before the deploy; observing it")
            await asyncio.sleep(self.settings.seconds(BASELINE_MIN))
        fault = self.scenario.deployed_fault(self.settings.time_scale)
        message = f"Drill test change: {self.scenario.description}"
        if run.repo is not None:
            run.bad_sha = run.repo.commit_test_change(fault, "2.0.0-drill", message)
            version, _deployment = await run.repo.deploy(run.api, message=f"Drill test change ({self.scenario.name})")
        else:  # a real worker: its known stable code and bindings, plus FAULT_PROFILE
            version = await self._copy(run, run.known_stable, {FAULT_PROFILE_VAR: fault.to_json()},
                                       tag=f"{run.known_stable.tag or 'stable'}+drill", message=message)
            await run.api.deploy(version.id, f"Drill test change ({self.scenario.name})")
        fault_live = time.time()
        run.detector.deployed_at = fault_live
        run.bad = version
        self.record.mark("fault live", fault_live)
        self.record.bad_version = {"id": version.id, "tag": version.tag, "commit": run.bad_sha,
                                   "fault_profile": fault.to_dict()}
        self.record.end(phase, "ok", f"deployed {version.label} carrying FAULT_PROFILE ({fault.label})")

    async def _detect(self, run: _Run) -> Assessment:
        phase = self.record.begin("detect")
        detector = run.detector
        assert detector and run.bad and run.known_stable
        # preserve the failed deployment's logs while it serves (Post-Rollback Actions)
        incidents = self.options.reports / "incidents" / self.record.drill_id
        run.tasks.append(asyncio.create_task(preserve_tail_logs(
            run.api, out_dir=incidents, filters=[{"scriptVersion": run.bad.id}], stop=run.stop,
            deadline_s=self.settings.seconds(20), max_events=20000)))
        deadline = detector.deployed_at + detector.persistence_s + self.record.measures.budget_detect_s * 2
        assessment = detector.assess(time.time(), migration=False, serving=run.bad, rollback_target=run.known_stable)
        while time.time() < deadline:
            await asyncio.sleep(TICK_S)
            assessment = detector.assess(time.time(), migration=None, serving=run.bad,
                                         rollback_target=run.known_stable, rollback_target_from="the known stable "
                                         "version that passed verification")
            if assessment.firing and "detected" not in self.record.markers:
                self.record.mark("detected", min(detector.confirmed_at.values()))
                self.progress(f"detected: {assessment.firing[0].trigger.name}: {assessment.firing[0].sentence}")
                await self.notifier.status(self._facts(run, assessment), StatusState.INVESTIGATING)
            if detector.decidable(assessment):
                break
        self.record.measures.time_to_detect_s = detector.time_to_detect
        self.record.triggers = [{"id": r.trigger.id, "name": r.trigger.name, "table": r.trigger.table.value,
                                 "fires": r.fires, "sentence": r.sentence} for r in assessment.after.values()]
        detail = (f"{assessment.firing[0].trigger.name} confirmed after {detector.time_to_detect:.2f}s"
                  if assessment.firing else "no trigger confirmed")
        self.record.end(phase, "ok", detail)
        return assessment

    async def _decide(self, run: _Run, assessment: Assessment) -> Action:
        phase = self.record.begin("decide")
        assert run.detector and self.target.kv_namespace_id
        migration = await run.api.kv_get(self.target.kv_namespace_id, MIGRATION_KEY)
        assessment = run.detector.assess(time.time(), migration=migration not in (None, b"", b"false"),
                                         serving=run.bad, rollback_target=run.known_stable,
                                         rollback_target_from="the known stable version that passed verification")
        decision = assessment.decision()
        self.record.mark("decided")
        self.record.decision, self.record.decision_sentence = decision.action.value, decision.sentence
        self.record.decision_path = list(decision.path)
        self.record.checklist = [{"item": i.text, "tick": i.tick.value, "sentence": i.sentence}
                                 for i in decision.checklist]
        self.record.wrangler_command = decision.wrangler_command(self.target.worker)
        if decision.action is Action.GET_APPROVAL:
            self.record.approval = {"approver": self.options.approver, "granted_at": time.time(),
                                    "for": decision.sentence}
        if decision.action in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
            await self.notifier.status(self._facts(run, assessment), StatusState.IDENTIFIED)
        self.record.end(phase, "ok", decision.sentence)
        self.progress(f"decision: {decision.sentence}")
        return decision.action

    async def _roll_back_and_verify(self, run: _Run, assessment: Assessment) -> None:
        assert run.known_stable and run.bad and run.detector and self.target.kv_namespace_id
        facts = self._facts(run, assessment)
        phase = self.record.begin("roll back")
        started = time.time()
        self.record.mark("rollback started", started)
        await self.notifier.rollback_in_progress(facts)
        method = METHODS[self.method_id]()
        context = RollbackContext(api=run.api, known_stable=run.known_stable, bad=run.bad,
                                  reason=assessment.firing[0].sentence if assessment.firing else "drill",
                                  repo=run.repo, bad_commit=run.bad_sha, stable_commit=run.stable_sha)
        outcome = await method.execute(context)
        serving_at = outcome.finished_epoch - (outcome.finished_monotonic - outcome.deployed_monotonic)
        self.record.mark("serving", serving_at)
        self.record.rollback = {"method": outcome.method, "method_id": outcome.method_id,
                                "version_id": outcome.version_id, "version_tag": outcome.version_tag,
                                "deployment_id": outcome.deployment_id, "duration_s": outcome.duration_s,
                                "steps": [{"name": s.name, "outcome": s.outcome, "detail": s.detail,
                                           "duration_s": s.duration_s} for s in outcome.steps]}
        restored = []
        for key, value in run.snapshot.items():  # "Data Recovery": restore from the drill's backup
            if value is not None and await run.api.kv_get(self.target.kv_namespace_id, key) != value:
                await run.api.kv_put(self.target.kv_namespace_id, key, value)
                restored.append(key)
        detail = f"{outcome.method}: {outcome.version_tag or ''} {outcome.version_id} serving"
        if restored:
            detail += f"; Data Recovery restored {', '.join(restored)} from the drill's backup"
        self.record.end(phase, "ok", detail)
        await self.notifier.status(facts, StatusState.MONITORING)
        await self._verify(run, outcome.version_id, serving_at, started, facts)

    async def _verify(self, run: _Run, expected: str, serving_at: float, started: float, facts: Any) -> None:
        phase = self.record.begin("verify")
        detector = run.detector
        assert detector
        serving = await run.api.serving()
        version = await run.api.version(serving.main_version_id)
        deadline = serving_at + self.settings.seconds(self.runbook.verification.error_rate_window_min)
        results = []
        while True:
            await asyncio.sleep(TICK_S)
            now = time.time()
            since = [s for s in detector.samples if s.at >= serving_at]
            results = judge_recovery(
                runbook=self.runbook, target=self.target, samples=since,
                ws=[w for w in detector.ws if w.at >= serving_at],
                canaries=[c for c in detector.canaries if c.at >= serving_at], serving=serving,
                serving_version=version, expected_version=expected, window_s=now - serving_at, seed=self.settings.seed)
            if all_passed(results) or now > deadline:
                break
        self.record.verification = [{"check": r.check, "verdict": r.verdict.value, "sentence": r.sentence}
                                    for r in results]
        self.record.serving_after = {"id": version.id, "tag": version.tag}
        if not all_passed(results):
            bad = [r for r in results if r.verdict is not Verdict.PASS]
            self.record.end(phase, "failed", f"{bad[0].check}: {bad[0].sentence}")
            raise DrillError(f"verification did not pass within {self.runbook.verification.error_rate_window_min:g} "
                             f"runbook minutes after the rollback: {bad[0].message}")
        verified = time.time()
        self.record.mark("verified", verified)
        m = self.record.measures
        m.time_to_rollback_s = verified - started
        m.total_recovery_s = verified - self.record.markers["fault live"]
        self.record.end(phase, "ok", f"all {len(results)} checks passed")
        searches = [s for s in detector.samples if s.at >= serving_at and s.endpoint != "health"]
        recovery = RecoveryFacts(
            error_rate=back_to_normal(Rate(sum(s.is_error for s in searches), len(searches))),
            p95_ms=quantile([s.latency_ms for s in searches if not s.is_error] or [0.0], 0.95).value,
            verification=f"All {len(results)} checks passed")
        await self.notifier.rollback_complete(facts, recovery)
        await self.notifier.status(facts, StatusState.RESOLVED)
        self._postmortem(facts, recovery)

    def _postmortem(self, facts: Any, recovery: RecoveryFacts) -> None:
        """The post-mortem skeleton ("Long-term: Post-mortem document"), its timeline from the journal."""
        def moment(epoch: float) -> datetime:
            return datetime.fromtimestamp(epoch, tz=timezone.utc)

        timeline = [TimelineEntry(p.name, moment(p.started_at), moment(p.ended_at) if p.ended_at else None,
                                  p.outcome, p.detail) for p in self.record.phases]
        m = self.record.measures
        measures = RecoveryMeasures.measured(time_to_detect_s=m.time_to_detect_s,
                                             time_to_rollback_s=m.time_to_rollback_s,
                                             total_recovery_s=m.total_recovery_s, drill=self.runbook.drill,
                                             time_scale=self.settings.time_scale)
        text = render_postmortem(facts, recovery, timeline, measures, resolved_at=datetime.now(timezone.utc))
        path = self.options.reports / "drills" / f"{self.record.drill_id}-postmortem.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.record.artifacts["postmortem"] = str(path)

    def _facts(self, run: _Run, assessment: Assessment) -> Any:
        assert run.bad and run.known_stable
        firing = assessment.firing
        reason = "a drill trigger fired"
        if firing and firing[0].value is not None and firing[0].samples:
            events = round(firing[0].value * firing[0].samples)
            if firing[0].trigger.id in ("error_rate_spike", "server_error_rate", "moderate_error_rate"):
                name = "5xx rate" if firing[0].trigger.id == "server_error_rate" else "Error rate"
                reason = spike_reason(Rate(events, firing[0].samples), name=name)
            else:
                reason = f"{firing[0].trigger.name} after deployment: {firing[0].sentence}"
        return self.notifier.facts(drill_id=self.record.drill_id, bad_tag=run.bad.tag or "test change",
                                   bad_id=run.bad.id, reason=reason.replace("\n", " "),
                                   target_tag=run.known_stable.tag or "known stable", target_id=run.known_stable.id)

    def _conclude(self, action: Action) -> None:
        record = self.record
        problems = []
        if action is not self.scenario.expect:
            problems.append(f"the drill decided {action.value} where the scenario expects {self.scenario.expect.value}")
        if self.scenario.rolls_back:
            problems += record.measures.over_budget()
        record.status = FAILED if problems else PASSED
        record.failure = "; ".join(problems)

    async def _cleanup(self, run: _Run) -> None:
        phase = self.record.begin("cleanup")
        notes = []
        try:
            run.stop.set()
            if run.tasks:
                done, pending = await asyncio.wait(run.tasks, timeout=CLEANUP_WAIT_S)
                for task in pending:
                    task.cancel()
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        notes.append(f"a signal task ended with {task.exception()!r}")
                    elif not task.cancelled() and isinstance(task.result(), Path):
                        self.record.artifacts["tail_logs"] = str(task.result())
            if run.known_stable is not None:
                notes += await self._heal(run)
            if run.locked and self.target.kv_namespace_id:
                await release_lock(run.api, self.target.kv_namespace_id, drill_id=self.record.drill_id)
            self.record.end(phase, "ok", "; ".join(notes) or "target on the known stable version, no fault left")
        except BaseException as exc:  # cleanup must finish the record whatever happens
            self.record.end(phase, "failed", f"cleanup failed: {exc!r}: the staging may be left unhealed")
            self.record.failure += f" Cleanup failed ({exc!r}): staging left unhealed."
            if self.record.status == PASSED:
                self.record.status = FAILED
        finally:
            await run.api.aclose()
            self.record.ended_at = time.time()
            if run.detector is not None:
                self.record.series = series(run.detector, self.record.markers.get("fault live"))
            self.store.save(self.record)
            self.store.append_history(self.record)


def series(detector: Detector, origin: float | None, bucket_s: float | None = None) -> list[dict[str, Any]]:
    """The signals per interval, for the drill report's timeline chart (times relative to fault live)."""
    if not detector.samples:
        return []
    start = min(s.at for s in detector.samples)
    end = max(s.at for s in detector.samples)
    bucket = bucket_s or max(0.25, (end - start) / 60)
    origin = origin if origin is not None and math.isfinite(origin) else start
    rows = []
    t = start
    while t <= end:
        window = [s for s in detector.samples if t <= s.at < t + bucket]
        searches = [s for s in window if s.endpoint != "health"]
        ws = [w for w in detector.ws if t <= w.at < t + bucket]
        latencies = [s.latency_ms for s in searches if not s.is_error]
        rows.append({
            "t": round(t - origin, 3), "requests": len(window),
            "error_rate": (sum(s.is_error for s in searches) / len(searches)) if searches else None,
            "server_error_rate": (sum(s.is_server_error for s in searches) / len(searches)) if searches else None,
            "p95_ms": quantile(latencies, 0.95).value if latencies else None,
            "ws_failure_rate": (sum(not w.ok for w in ws) / len(ws)) if ws else None,
        })
        t += bucket
    return rows


def run_drill(settings: SuiteSettings, scenario: Scenario, method_id: str, options: DrillOptions = DrillOptions(),
              progress: Callable[[str], None] = lambda _t: None) -> DrillRecord:
    """Run one drill to the end (Ctrl-C and SIGTERM interrupt it cleanly: cleanup still runs)."""
    return asyncio.run(DrillRunner(settings, scenario, method_id, options, progress).run())


__all__ = ["DrillError", "DrillOptions", "DrillRefused", "DrillRunner", "method_unavailable", "run_drill",
           "series"]
