"""The pre-rollback checklist, each item evaluated rather than ticked, and the decision tree
(ROLLBACK_PROCEDURE.md, "Pre-Rollback Checklist" and "Rollback Decision Tree").

    Issue detected? ─ no ──> NO ACTION (every trigger clearly within) or KEEP WATCHING (some in doubt)
         │ yes
    started after deploy? ─ no ──> INVESTIGATE ROOT CAUSE
                           │ yes
                     not transient? ─ no ──> NO ACTION (a blip shorter than the 5-minute rule)
                           │ not yet ──> KEEP WATCHING
                           │ yes
            no migration, target known? ─ no ──> INVESTIGATE ROOT CAUSE (do not roll back blind)
                           │ yes
                      CRITICAL? ─ yes ──> ROLLBACK NOW
                           │ no
                     GET APPROVAL, then roll back
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from enum import Enum

from ..clients.cloudflare import VersionInfo
from .triggers import Reading, Table


class Action(str, Enum):
    ROLLBACK_NOW = "ROLLBACK NOW"
    GET_APPROVAL = "GET APPROVAL"
    INVESTIGATE = "INVESTIGATE ROOT CAUSE"
    KEEP_WATCHING = "KEEP WATCHING"  # cannot tell yet: never rounded to NO ACTION
    NO_ACTION = "NO ACTION"


class Tick(str, Enum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str  # the runbook's words
    tick: Tick
    sentence: str


@dataclass(frozen=True)
class Situation:
    """Everything the checklist and the tree look at, at one moment."""

    now: float
    deployed_at: float | None  # the latest deployment (epoch); None: unknown
    firing: tuple[Reading, ...]  # triggers confirmed since the deployment
    still_firing: tuple[Reading, ...]  # of those, not ended in the recent window (confirmed, or too sparse to tell)
    recent_clear: bool  # the recent window is confidently healthy for every firing trigger: it ended
    fired_before_deploy: tuple[Reading, ...] | None  # None: the history before the deploy is unknown
    onset: float | None  # when the issue began (first confirmed breach, or its first bad sample)
    persistence_s: float  # "lasted > 5 minutes", scaled
    post_deploy_window_s: float  # "within 30 minutes of deployment", scaled
    migration: bool | None  # None: could not be read
    serving: VersionInfo | None
    rollback_target: VersionInfo | None
    rollback_target_from: str = ""
    unsure: tuple[Reading, ...] = ()  # the triggers not yet known either way
    watched_s: float = 0.0  # how long the evidence of the readings took to gather (their traffic's rate)


@dataclass(frozen=True)
class Decision:
    action: Action
    sentence: str
    checklist: tuple[ChecklistItem, ...]
    firing: tuple[Reading, ...] = ()
    rollback_target: VersionInfo | None = None
    path: tuple[str, ...] = field(default_factory=tuple)  # the branches taken through the tree

    def wrangler_command(self, worker: str | None = None) -> str | None:
        """The exact command for the on-call engineer (always with an explicit version id: REALITY.md)."""
        if self.rollback_target is None or self.action not in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
            return None
        reason = self.firing[0].sentence if self.firing else "failed deployment"
        parts = ["wrangler", "rollback", self.rollback_target.id, "--message", f"Rollback due to {reason}"[:120]]
        if worker:
            parts += ["--name", worker]
        return shlex.join(parts)


def _minutes(seconds: float, persistence_s: float, persistence_min: float = 5.0) -> str:
    """Seconds at the run's time scale, with the runbook minutes they stand for."""
    runbook_min = seconds / persistence_s * persistence_min if persistence_s else 0
    return f"{seconds:.1f}s ({runbook_min:.1f} runbook minutes)"


def _doubt(reading: Reading, s: Situation) -> str:
    """'5xx Error Rate: 5xx rate 5.6% (95% CI 3.4-9.1%) over 300 requests cannot yet be told apart from the
    >5% threshold; about 4.1 runbook minutes more at the current traffic would decide it'."""
    text = f"{reading.trigger.name}: {reading.sentence}"
    if reading.needed is None or not reading.samples or s.watched_s <= 0:
        return text + "; it sits on its threshold, and more samples may never decide it"
    more_s = max(0.0, reading.needed - reading.samples) * s.watched_s / reading.samples
    return text + f"; about {_minutes(more_s, s.persistence_s)} more at the current traffic would decide it"


def checklist(s: Situation) -> tuple[ChecklistItem, ...]:
    items: list[ChecklistItem] = []
    # 1. not transient
    if s.onset is None:
        items.append(ChecklistItem("not_transient", "Issue is not transient (lasted >5 minutes)", Tick.UNKNOWN,
                                   "no issue was confirmed"))
    else:
        lasted = s.now - s.onset
        if s.recent_clear:
            items.append(ChecklistItem("not_transient", "Issue is not transient (lasted >5 minutes)", Tick.NO,
                                       f"it cleared after {_minutes(lasted, s.persistence_s)}: a transient blip"))
        elif lasted >= s.persistence_s and s.still_firing:
            items.append(ChecklistItem("not_transient", "Issue is not transient (lasted >5 minutes)", Tick.YES,
                                       f"it has lasted {_minutes(lasted, s.persistence_s)} and has not ended "
                                       "in the recent window"))
        elif lasted >= s.persistence_s:
            # a short recent window cannot show a 5% rate clear (0 of 53 still allows 6.8%): unknown, not "lasted"
            items.append(ChecklistItem("not_transient", "Issue is not transient (lasted >5 minutes)", Tick.UNKNOWN,
                                       f"it began {_minutes(lasted, s.persistence_s)} ago, but the recent window "
                                       "neither confirms it nor shows it ended"))
        else:
            items.append(ChecklistItem("not_transient", "Issue is not transient (lasted >5 minutes)", Tick.UNKNOWN,
                                       f"it has lasted {_minutes(lasted, s.persistence_s)} so far"))
    # 2. deployment-related
    if s.deployed_at is None or s.onset is None:
        items.append(ChecklistItem("deployment_related", "Issue is deployment-related (started after recent deploy)",
                                   Tick.UNKNOWN, "the latest deployment or the onset is unknown"))
    elif s.fired_before_deploy:
        names = ", ".join(r.trigger.name for r in s.fired_before_deploy)
        items.append(ChecklistItem("deployment_related", "Issue is deployment-related (started after recent deploy)",
                                   Tick.NO, f"{names} already fired before the deployment: the errors existed "
                                   "before it"))
    elif s.onset < s.deployed_at or s.onset - s.deployed_at > s.post_deploy_window_s:
        items.append(ChecklistItem("deployment_related", "Issue is deployment-related (started after recent deploy)",
                                   Tick.NO, f"it began {s.onset - s.deployed_at:+.1f}s from the deployment, outside "
                                   f"the {s.post_deploy_window_s:.0f}s post-deploy window"))
    elif s.fired_before_deploy is None:
        items.append(ChecklistItem("deployment_related", "Issue is deployment-related (started after recent deploy)",
                                   Tick.UNKNOWN, "it began after the deployment, but the history before it is unknown"))
    else:
        items.append(ChecklistItem("deployment_related", "Issue is deployment-related (started after recent deploy)",
                                   Tick.YES, f"it began {s.onset - s.deployed_at:.1f}s after the deployment, and "
                                   "none of its triggers fired in the baseline before it"))
    # 3. metrics confirm
    if s.firing:
        text = "; ".join(f"{r.trigger.name}: {r.sentence}" for r in s.firing)
        items.append(ChecklistItem("metrics_confirm", "Metrics confirm the issue (not anecdotal)", Tick.YES, text))
    else:
        items.append(ChecklistItem("metrics_confirm", "Metrics confirm the issue (not anecdotal)", Tick.NO,
                                   "no trigger is confirmed beyond its confidence bound"))
    # 4. no ongoing migration
    tick = {None: Tick.UNKNOWN, True: Tick.NO, False: Tick.YES}[s.migration]
    text = {None: "the migration flag could not be read", True: "a migration is in progress",
            False: "no migration is in progress"}[s.migration]
    items.append(ChecklistItem("no_migration", "No ongoing migration (database, schema changes)", tick, text))
    # 5. rollback target identified
    if s.rollback_target is None:
        items.append(ChecklistItem("target_identified", "Rollback target identified (previous stable deployment)",
                                   Tick.NO, "no version is known to have passed verification"))
    elif s.serving is not None and s.rollback_target.id == s.serving.id:
        items.append(ChecklistItem("target_identified", "Rollback target identified (previous stable deployment)",
                                   Tick.NO, f"the known stable version {s.rollback_target.label} is already serving"))
    else:
        items.append(ChecklistItem("target_identified", "Rollback target identified (previous stable deployment)",
                                   Tick.YES, f"{s.rollback_target.label}, {s.rollback_target_from}"))
    return tuple(items)


def decide(s: Situation) -> Decision:
    items = checklist(s)
    tick = {i.id: i for i in items}
    path = ["Issue detected?"]

    def done(action: Action, sentence: str) -> Decision:
        return Decision(action, sentence, items, s.firing, s.rollback_target if action in (
            Action.ROLLBACK_NOW, Action.GET_APPROVAL) else None, tuple(path))

    if not s.firing:
        path.append("no")
        doubts = [r for r in s.unsure if r.doubtful]
        if doubts:
            path.append("in doubt")
            return done(Action.KEEP_WATCHING, "Keep watching: no trigger is confirmed, but " + "; and ".join(
                _doubt(r, s) for r in doubts) + ".")
        sparse = ", ".join(r.trigger.name for r in s.unsure)
        if sparse:
            return done(Action.NO_ACTION, "No trigger of the runbook's tables is confirmed, and none can be near its "
                        f"threshold: no action. Unsure only for want of samples, with nothing seen past a threshold: "
                        f"{sparse}.")
        return done(Action.NO_ACTION, "No trigger of the runbook's tables is confirmed, and every one is clearly "
                    "within its threshold: no action.")
    path += ["yes", "Issue started after deploy?"]
    related = tick["deployment_related"]
    if related.tick is Tick.NO:
        path.append("no")
        return done(Action.INVESTIGATE, f"Do not roll back: {related.sentence}. Investigate the root cause.")
    path.append("yes" if related.tick is Tick.YES else "unknown")
    transient = tick["not_transient"]
    path.append("Not transient?")
    if transient.tick is Tick.NO:
        path.append("no")
        return done(Action.NO_ACTION, f"No action: {transient.sentence}.")
    if transient.tick is Tick.UNKNOWN:
        path.append("not yet")
        wait = max(0.0, (s.onset or s.now) + s.persistence_s - s.now)
        if not wait:
            return done(Action.KEEP_WATCHING, f"Not yet: {transient.sentence}; look again with more recent samples.")
        return done(Action.KEEP_WATCHING, f"Not yet: {transient.sentence}, less than the runbook's 5 minutes; "
                    f"look again in {_minutes(wait, s.persistence_s)}.")
    path.append("yes")
    for blocker in ("no_migration", "target_identified"):
        if tick[blocker].tick is not Tick.YES:
            path.append(f"{tick[blocker].text}? no")
            return done(Action.INVESTIGATE, f"Do not roll back yet: {tick[blocker].sentence}. Investigate.")
    critical = [r for r in s.firing if r.trigger.table is Table.IMMEDIATE]
    path.append("CRITICAL?")
    assert s.rollback_target is not None
    if critical and related.tick is Tick.YES:
        path.append("yes")
        names = ", ".join(r.trigger.name for r in critical)
        return done(Action.ROLLBACK_NOW, f"ROLLBACK NOW to {s.rollback_target.label}: {names} "
                    f"({critical[0].sentence}).")
    path.append("no" if not critical else "unconfirmed history")
    reason = ", ".join(r.trigger.name for r in s.firing)
    extra = "" if related.tick is Tick.YES else " (the history before the deploy could not be checked)"
    return done(Action.GET_APPROVAL, f"GET APPROVAL from the engineering lead, then roll back to "
                f"{s.rollback_target.label}: {reason}{extra}.")
