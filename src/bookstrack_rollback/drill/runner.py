"""The quarterly drill (ROLLBACK_PROCEDURE.md, "Testing Rollback Procedure"), in fixed phases:

    preflight → deploy test change → detect → decide → roll back → verify → cleanup

The runner only runs the phases. Each is a ``journal.phase()``: journaled (start, end, outcome, the
exception's text when it raised) and told to the listeners, which save the record after every phase,
post the runbook's messages, write the post-mortem and show the progress. Cleanup runs in ``finally``:
whatever happens (an assertion, an exception, Ctrl-C, cancellation), the target ends on the known
stable version with no runtime fault left, the lock is released and the record says how it ended. A
drill that dies outright (SIGKILL) is found and healed by the next one's preflight.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clients.cloudflare import CloudflareApi, DeploymentInfo, VersionInfo
from ..clients.errors import TargetError
from ..comms import (
    IncidentFacts,
    RecoveryFacts,
    back_to_normal,
    preserve_tail_logs,
    spike_reason,
)
from ..config import Runbook, SuiteSettings, Target
from ..faults import RUNTIME_FLAG_KEY
from ..signals.feeds import LiveFeed
from ..signals.observations import MIGRATION_KEY
from ..stats import Rate, quantile
from ..triage.decision import Action
from ..triage.detector import Assessment, Detector
from ..triage.triggers import TriggerEvaluator
from ..verdicts import Verdict
from . import preparation
from .journal import DrillListener, Journal
from .listeners import PostmortemWriter, RecordKeeper
from .lock import DrillRefused, release_lock, take_lock
from .methods import METHODS, RollbackContext, RollbackError
from .notify import Messenger, Notifier
from .preparation import DrillError
from .record import (
    ERROR,
    FAILED,
    INTERRUPTED,
    PASSED,
    ApprovalRecord,
    BadVersionRef,
    ChecklistRecord,
    CheckRecord,
    DrillRecord,
    Measures,
    RecordStore,
    RollbackRecord,
    RollbackStepRecord,
    TriggerRecord,
    VersionRef,
)
from .scenarios import Scenario
from .series import series
from .verification import RecoveryWatch, all_passed, drill_plan, drill_probe_rate
from .worker_repo import DEFAULT_COMPATIBILITY_DATE, FAULT_PROFILE_VAR, WorkerRepo

BASELINE_MIN = 2.5  # runbook minutes of signals before the deploy: enough to show a 5% rate clean
API_STEPS_S = 120.0  # a drill's own API calls, git and uploads over its phases, at most (real seconds)


def watching_min(runbook: Runbook) -> float:
    """The longest a drill watches, in runbook minutes: two baselines (a runtime fault gets its own),
    detection up to the persistence rule plus twice its budget, and verification's window."""
    return (2 * BASELINE_MIN + runbook.checklist.not_transient_min + 2 * runbook.drill.time_to_detect_budget_min
            + runbook.verification.error_rate_window_min)


def longest_drill_s(settings: SuiteSettings) -> float:
    """The longest one drill may take: its watching, its API calls and git, its cleanup."""
    return settings.seconds(watching_min(settings.runbook)) + API_STEPS_S + settings.timebase.cleanup_wait_s


def not_serving(serving: DeploymentInfo, version: VersionInfo) -> str | None:
    """Why ``version`` is not what serves (a sentence), or None when it serves all traffic: a deploy that
    failed half-way (a version made but no deployment, or a deployment of something else) must not
    start the TTD clock."""
    if dict(serving.versions).get(version.id, 0) >= 100:
        return None
    shown = ", ".join(f"{v} at {p}%" for v, p in serving.versions)
    return (f"the test change {version.label} was deployed, but the Cloudflare API says {shown} serves "
            f"(deployment {serving.id}): the fault is not live, so the drill stops")


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
    probe_rate: float | None = None  # None: drill_probe_rate (enough for the verification's P95s)
    approver: str = "drill approver (automatic)"
    allow_production: bool = False
    lock_lease_s: float | None = None  # default: the longest a drill may take (a dead drill's lock expires)
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
    backup: dict[str, bytes | None] = field(default_factory=dict)
    locked: bool = False
    repo: WorkerRepo | None = None
    stable_sha: str | None = None
    bad_sha: str | None = None


class DrillRunner:
    def __init__(self, settings: SuiteSettings, scenario: Scenario, method_id: str,
                 options: DrillOptions = DrillOptions(), listeners: Sequence[DrillListener] = ()) -> None:
        if method_id not in METHODS:
            raise DrillError(f"unknown rollback method {method_id!r}; known: {sorted(METHODS)}")
        self.settings, self.scenario, self.method_id, self.options = settings, scenario, method_id, options
        self.target, self.runbook, self.timebase = settings.target, settings.runbook, settings.timebase
        self.store = RecordStore(options.reports)
        scale = settings.time_scale
        drill = self.runbook.drill
        record = DrillRecord(
            drill_id=f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{scenario.name}-{method_id}-"
                     f"{uuid.uuid4().hex[:6]}",
            scenario=scenario.name, scenario_description=scenario.description, method=method_id,
            target=self.target.name, environment=self.target.environment, time_scale=scale, seed=settings.seed,
            started_at=self.timebase.now(), expected_decision=scenario.expect.value,
            measures=Measures(budget_detect_s=settings.seconds(drill.time_to_detect_budget_min),
                              budget_rollback_s=settings.seconds(drill.time_to_rollback_budget_min),
                              budget_total_s=settings.seconds(drill.total_recovery_budget_min), time_scale=scale))
        self.notifier = Notifier(self.target, self.runbook, record.messages)
        self.journal = Journal(record, [RecordKeeper(self.store), Messenger(self.notifier),
                                        PostmortemWriter(options.reports), *listeners],
                               self.timebase.now)

    @property
    def record(self) -> DrillRecord:
        return self.journal.record

    @property
    def probe_rate(self) -> float:
        return self.options.probe_rate or drill_probe_rate(self.settings)

    def refusal(self) -> str | None:
        """Why this drill cannot run against its target (a sentence), or None."""
        target = self.target
        missing = [what for what, present in (
            ("CLOUDFLARE_API_TOKEN", bool(target.token)), ("CLOUDFLARE_ACCOUNT_ID", bool(target.account_id)),
            ("worker", bool(target.worker)), ("cloudflare_api_url", bool(target.cloudflare_api_url)),
            ("kv_namespace_id", bool(target.kv_namespace_id))) if not present]
        if missing or not target.base_url:
            return (f"{target.describe()}: a drill needs the Cloudflare API and the worker's KV namespace; missing: "
                    f"{', '.join(missing)} (set them in {target.source} or the environment; README, \"Drilling the "
                    "real staging\")")
        not_here = method_unavailable(target, self.method_id)
        if not_here:
            return f"{target.describe()}: {not_here}"
        if target.is_production and not self.options.allow_production:
            return ("refusing to drill production: drills inject faults; pass the explicit override "
                    "(--drill-allow-production) only if you mean it")
        return None

    # --- the drill ---------------------------------------------------------------------------------
    async def run(self) -> DrillRecord:
        refused = self.refusal()
        if refused:
            raise DrillError(refused)
        target, record = self.target, self.record
        assert target.cloudflare_api_url and target.account_id and target.worker
        await self.journal.tell("drill_started")
        run = _Run(CloudflareApi(target.cloudflare_api_url, account_id=target.account_id, token=target.token,
                                 worker=target.worker))
        try:
            await self._preflight(run)
            await self._deploy_test_change(run)
            assessment = await self._detect(run)
            action = await self._decide(run, assessment)
            if action in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
                await self._roll_back_and_verify(run, assessment)
            assert run.detector
            self._conclude(action, run.detector.detected_after())
        except (asyncio.CancelledError, KeyboardInterrupt):
            record.status = INTERRUPTED
            record.failure = "the drill was interrupted (cancelled or Ctrl-C); cleanup restored the target"
            raise
        except (DrillRefused, DrillError) as exc:
            record.status, record.failure = ERROR, str(exc)
            raise
        except (TargetError, RollbackError) as exc:
            record.status, record.failure = ERROR, f"{type(exc).__name__}: {exc}"
            raise DrillError(record.failure) from exc
        except Exception as exc:  # a bug of the drill itself: still a record, still a cleanup
            record.status, record.failure = ERROR, f"the drill itself failed: {exc!r}"
            raise
        finally:
            await asyncio.shield(self._cleanup(run))
        return record

    # --- phases --------------------------------------------------------------------------------
    async def _preflight(self, run: _Run) -> None:
        record, target = self.record, self.target
        async with self.journal.phase("preflight") as phase:
            await self.journal.say("lock, heal, known stable, baseline")
            healed = self.store.mark_abandoned(target.name)
            if healed:
                record.healed.append(f"marked interrupted: drill record(s) {', '.join(healed)}")
            assert target.kv_namespace_id
            note = await take_lock(run.api, target.kv_namespace_id, owner="bookstrack-rollback drill",
                                   drill_id=record.drill_id,
                                   lease_s=self.options.lock_lease_s or longest_drill_s(self.settings))
            run.locked = True
            if note:
                record.healed.append(note)
            run.known_stable = await preparation.known_stable(run.api, target, self.store.history_lines())
            if target.synthetic_worker:  # an emulated target: the drill's own worker repository
                work = self.options.work_dir or Path(tempfile.mkdtemp(prefix="drill-worker-"))
                assert target.worker
                code = None
                if target.repo_from_stable_code:  # the staging runs the code: the repository holds the real one
                    content = await run.api.version_content(run.known_stable.id)
                    code = (content.main_module, {m.name: m.content for m in content.modules})
                run.repo = WorkerRepo.create(work / record.drill_id, target.worker, run.known_stable.tag or "stable",
                                             code=code, bindings=run.known_stable.bindings if code else (),
                                             compatibility_date=run.known_stable.compatibility_date
                                             or DEFAULT_COMPATIBILITY_DATE)
                run.stable_sha = run.repo.head()
            run.known_stable, kept = await preparation.keep_rollbackable(
                run.api, run.known_stable, run.repo, self.runbook.platform.rollbackable_versions)
            if kept:
                record.healed.append(kept)
            record.healed += await preparation.heal(run.api, target, run.known_stable)
            record.known_stable = VersionRef(run.known_stable.id, run.known_stable.tag)
            run.backup = await preparation.snapshot(run.api, target)
            # signals start now: the baseline before the deploy is part of the evidence
            baseline_s = self.settings.seconds(BASELINE_MIN)
            run.detector = Detector(self.runbook, self.settings.time_scale, deployed_at=math.inf, baseline_s=baseline_s)
            # the drill's own random streams, named by scenario and method: the same --seed replays them
            feed = LiveFeed(target, run.api, run.detector, rate=self.probe_rate,
                            timebase=self.timebase, stream=f"drill/{self.scenario.name}/{self.method_id}")
            run.detector.in_flight = feed.in_flight
            run.tasks.append(asyncio.create_task(feed.run(run.stop)))
            baseline_end = self.timebase.now() + baseline_s
            await asyncio.sleep(max(0.0, baseline_end - self.timebase.now()))
            window = run.detector.window(baseline_end - baseline_s, baseline_end)
            firing = [r for r in TriggerEvaluator(self.runbook).evaluate(window).values() if r.fires]
            if firing:
                phase.outcome, phase.detail = "failed", "baseline not healthy: " + "; ".join(r.sentence for r in firing)
                raise DrillError(f"the baseline before the drill is not healthy: {firing[0].sentence}; "
                                 "fix the target before drilling")
            phase.detail = f"known stable {run.known_stable.label}; baseline healthy over {len(window.samples)} probes"

    async def _deploy_test_change(self, run: _Run) -> None:
        async with self.journal.phase("deploy test change") as phase:
            assert run.known_stable and run.detector and self.target.worker
            if self.scenario.runtime_fault is not None:
                assert self.target.kv_namespace_id
                await run.api.kv_put(self.target.kv_namespace_id, RUNTIME_FLAG_KEY,
                                     self.scenario.runtime_fault.to_json().encode())
                await self.journal.say("runtime fault set before the deploy; observing it")
                await asyncio.sleep(self.settings.seconds(BASELINE_MIN))
            fault = self.scenario.deployed_fault(self.settings.time_scale)
            message = f"Drill test change: {self.scenario.description}"
            if run.repo is not None:
                run.bad_sha = run.repo.commit_test_change(fault, "2.0.0-drill", message)
                version, _deployment = await run.repo.deploy(run.api, message=f"Drill test change ({self.scenario.name})")
            else:  # a real worker: its known stable code and bindings, plus FAULT_PROFILE
                version = await preparation.copy(run.api, run.known_stable, {FAULT_PROFILE_VAR: fault.to_json()},
                                                 tag=f"{run.known_stable.tag or 'stable'}+drill", message=message)
                await run.api.deploy(version.id, f"Drill test change ({self.scenario.name})")
            fault_live = self.timebase.now()
            await self._read_back_serving(run, version)
            run.detector.deployed_at = fault_live
            run.bad = version
            self.journal.mark("fault live", fault_live)
            self.record.bad_version = BadVersionRef(version.id, version.tag, run.bad_sha, fault.to_dict())
            phase.detail = f"deployed {version.label} carrying FAULT_PROFILE ({fault.label})"

    async def _read_back_serving(self, run: _Run, version: VersionInfo) -> None:
        """Count the fault as live only when the Cloudflare API says the test change serves all traffic."""
        problem = not_serving(await run.api.serving(), version)
        if problem:
            raise DrillError(problem)

    async def _detect(self, run: _Run) -> Assessment:
        detector, record = run.detector, self.record
        assert detector and run.bad and run.known_stable
        async with self.journal.phase("detect") as phase:
            # preserve the failed deployment's logs while it serves (Post-Rollback Actions)
            incidents = self.options.reports / "incidents" / record.drill_id
            run.tasks.append(asyncio.create_task(preserve_tail_logs(
                run.api, out_dir=incidents, filters=[{"scriptVersion": run.bad.id}], stop=run.stop,
                deadline_s=self.settings.seconds(20), max_events=20000)))
            deadline = detector.deployed_at + detector.persistence_s + record.measures.budget_detect_s * 2
            assessment = detector.assess(self.timebase.now(), migration=False, serving=run.bad,
                                         rollback_target=run.known_stable)
            while self.timebase.now() < deadline:
                await asyncio.sleep(self.timebase.tick_s)
                assessment = detector.assess(self.timebase.now(), migration=None, serving=run.bad,
                                             rollback_target=run.known_stable, rollback_target_from="the known stable "
                                             "version that passed verification")
                if assessment.firing and "detected" not in record.markers:
                    self.journal.mark("detected", min(detector.confirmed_at.values()))
                    first = assessment.firing[0]
                    await self.journal.say(f"detected: {first.trigger.name}: {first.sentence}")
                    await self.journal.tell("detected", self._facts(run, assessment))
                if detector.decidable(assessment):
                    break
            record.measures.time_to_detect_s = detector.time_to_detect
            detected = detector.detected_after()
            record.triggers = [TriggerRecord(r.trigger.id, r.trigger.name, r.trigger.table.value, r.fires, r.sentence,
                                             detected.get(r.trigger.id), r.trigger.id in self.scenario.triggers)
                               for r in assessment.after.values()]
            phase.detail = ("; ".join(f"{trigger} confirmed after {after:.2f}s" for trigger, after in detected.items())
                            or "no trigger confirmed")
        return assessment

    async def _decide(self, run: _Run, assessment: Assessment) -> Action:
        record = self.record
        assert run.detector and self.target.kv_namespace_id
        async with self.journal.phase("decide") as phase:
            migration = await run.api.kv_get(self.target.kv_namespace_id, MIGRATION_KEY)
            assessment = run.detector.assess(self.timebase.now(), migration=migration not in (None, b"", b"false"),
                                             serving=run.bad, rollback_target=run.known_stable,
                                             rollback_target_from="the known stable version that passed verification")
            decision = assessment.decision()
            self.journal.mark("decided")
            record.decision, record.decision_sentence = decision.action.value, decision.sentence
            record.decision_path = list(decision.path)
            record.checklist = [ChecklistRecord(i.text, i.tick.value, i.sentence) for i in decision.checklist]
            record.wrangler_command = decision.wrangler_command(self.target.worker)
            if decision.action is Action.GET_APPROVAL:
                record.approval = ApprovalRecord(self.options.approver, self.timebase.now(), decision.sentence)
            if decision.action in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
                await self.journal.tell("decided", self._facts(run, assessment), decision)
            phase.detail = decision.sentence
            await self.journal.say(f"decision: {decision.sentence}")
        return decision.action

    async def _roll_back_and_verify(self, run: _Run, assessment: Assessment) -> None:
        assert run.known_stable and run.bad and run.detector and self.target.kv_namespace_id
        facts = self._facts(run, assessment)
        async with self.journal.phase("roll back") as phase:
            started = self.timebase.now()
            self.journal.mark("rollback started", started)
            await self.journal.tell("rollback_started", facts)
            context = RollbackContext(api=run.api, known_stable=run.known_stable, bad=run.bad,
                                      reason=assessment.firing[0].sentence if assessment.firing else "drill",
                                      repo=run.repo, bad_commit=run.bad_sha, stable_commit=run.stable_sha)
            outcome = await METHODS[self.method_id]().execute(context)
            serving_at = outcome.finished_epoch - (outcome.finished_monotonic - outcome.deployed_monotonic)
            self.journal.mark("serving", serving_at)
            self.record.rollback = RollbackRecord(
                outcome.method, outcome.method_id, outcome.version_id, outcome.version_tag, outcome.deployment_id,
                outcome.duration_s, [RollbackStepRecord(s.name, s.outcome, s.detail, s.duration_s) for s in outcome.steps])
            restored = await preparation.restore(run.api, self.target.kv_namespace_id, run.backup)
            phase.detail = f"{outcome.method}: {outcome.version_tag or ''} {outcome.version_id} serving"
            if restored:
                phase.detail += f"; Data Recovery restored {', '.join(restored)} from the drill's backup"
        await self.journal.tell("rollback_serving", facts)
        recovery = await self._verify(run, outcome.version_id, serving_at, started)
        await self.journal.tell("verified", facts, recovery)

    async def _verify(self, run: _Run, expected: str, serving_at: float, started: float) -> RecoveryFacts:
        detector, record = run.detector, self.record
        assert detector
        async with self.journal.phase("verify") as phase:
            serving = await run.api.serving()
            version = await run.api.version(serving.main_version_id)
            plan = drill_plan(self.settings, expected, self.probe_rate)
            watch = RecoveryWatch(plan, self.settings, run.api, detector, serving_at=serving_at, serving=serving,
                                  serving_version=version)
            deadline = serving_at + plan.window_s
            passing_since: dict[str, float] = {}  # each check -> the look since which it has passed
            while True:
                await asyncio.sleep(self.timebase.tick_s)
                now = self.timebase.now()
                results = await watch.look(now)
                for r in results:
                    if r.verdict is Verdict.PASS:
                        passing_since.setdefault(r.check, now)
                    else:
                        passing_since.pop(r.check, None)
                if all_passed(results) or now > deadline:
                    break
            record.verification = [CheckRecord(r.check, r.verdict.value, r.sentence) for r in results]
            record.serving_after = VersionRef(version.id, version.tag)
            if not all_passed(results):
                bad = [r for r in results if r.verdict is not Verdict.PASS]
                phase.outcome, phase.detail = "failed", f"{bad[0].check}: {bad[0].sentence}"
                raise DrillError(f"verification did not pass within {self.runbook.verification.error_rate_window_min:g} "
                                 f"runbook minutes after the rollback: {bad[0].message}")
            verified = self.timebase.now()
            self.journal.mark("verified", verified)
            record.measures.time_to_rollback_s = verified - started
            record.measures.total_recovery_s = verified - record.markers["fault live"]
            last = max(passing_since, key=lambda check: passing_since[check])
            phase.detail = (f"all {len(results)} checks passed, {verified - serving_at:.2f}s after the rollback served; "
                            f"the last to pass: {last}")
        searches = [s for s in detector.samples if s.at >= serving_at and s.endpoint != "health"]
        return RecoveryFacts(error_rate=back_to_normal(Rate(sum(s.is_error for s in searches), len(searches))),
                             p95_ms=quantile([s.latency_ms for s in searches if not s.is_error] or [0.0], 0.95).value,
                             verification=f"All {len(results)} checks passed")

    def _facts(self, run: _Run, assessment: Assessment) -> IncidentFacts:
        assert run.bad and run.known_stable
        firing = assessment.firing
        reason = "a drill trigger fired"
        if firing and firing[0].value is not None and firing[0].samples:
            if firing[0].trigger.id in ("error_rate_spike", "server_error_rate", "moderate_error_rate"):
                events = round(firing[0].value * firing[0].samples)
                name = "5xx rate" if firing[0].trigger.id == "server_error_rate" else "Error rate"
                reason = spike_reason(Rate(events, firing[0].samples), name=name)
            else:
                reason = f"{firing[0].trigger.name} after deployment: {firing[0].sentence}"
        return self.notifier.facts(drill_id=self.record.drill_id, bad_tag=run.bad.tag or "test change",
                                   bad_id=run.bad.id, reason=reason.replace("\n", " "),
                                   target_tag=run.known_stable.tag or "known stable", target_id=run.known_stable.id)

    def _conclude(self, action: Action, detected: dict[str, float]) -> None:
        record = self.record
        problems = self.scenario.detection_problems(detected)
        if action is not self.scenario.expect:
            problems.append(f"the drill decided {action.value} where the scenario expects {self.scenario.expect.value}")
        if self.scenario.rolls_back:
            problems += record.measures.over_budget()
        record.status = FAILED if problems else PASSED
        record.failure = "; ".join(problems)

    async def _cleanup(self, run: _Run) -> None:
        record = self.record
        notes: list[str] = []
        try:
            async with self.journal.phase("cleanup") as phase:
                run.stop.set()
                if run.tasks:
                    done, pending = await asyncio.wait(run.tasks, timeout=self.timebase.cleanup_wait_s)
                    for task in pending:
                        task.cancel()
                    for task in done:
                        if not task.cancelled() and task.exception() is not None:
                            notes.append(f"a signal task ended with {task.exception()!r}")
                        elif not task.cancelled() and isinstance(task.result(), Path):
                            record.artifacts["tail_logs"] = str(task.result())
                if run.known_stable is not None:
                    notes += await preparation.heal(run.api, self.target, run.known_stable)
                if run.locked and self.target.kv_namespace_id:
                    await release_lock(run.api, self.target.kv_namespace_id, drill_id=record.drill_id)
                phase.detail = "; ".join(notes) or "target on the known stable version, no fault left"
        except BaseException as exc:  # cleanup must finish the record whatever happens
            record.phases[-1].outcome = "failed"
            record.phases[-1].detail = f"cleanup failed: {exc!r}: the staging may be left unhealed"
            record.failure += f" Cleanup failed ({exc!r}): staging left unhealed."
            if record.status == PASSED:
                record.status = FAILED
        finally:
            await run.api.aclose()
            record.ended_at = self.timebase.now()
            if run.detector is not None:
                record.series = series(run.detector, record.markers.get("fault live"))
            await self.journal.tell("drill_ended")


def run_drill(settings: SuiteSettings, scenario: Scenario, method_id: str, options: DrillOptions = DrillOptions(),
              listeners: Sequence[DrillListener] = ()) -> DrillRecord:
    """Run one drill to the end (Ctrl-C and SIGTERM interrupt it cleanly: cleanup still runs)."""
    return asyncio.run(DrillRunner(settings, scenario, method_id, options, listeners).run())


__all__ = ["DrillError", "DrillOptions", "DrillRefused", "DrillRunner", "longest_drill_s", "method_unavailable",
           "run_drill", "watching_min"]
