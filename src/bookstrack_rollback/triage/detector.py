"""Streaming detection: samples arrive, triggers are re-judged, the checklist becomes decidable.

Three windows, all on the same samples:
- since the latest deployment (detection: the most data, so a real spike is confirmed fastest). It is
  judged at every look, so with anytime-valid confidence sequences: however often the drill looks, a
  rate exactly at its threshold confirms a trigger with at most 2.5% chance (``stats``);
- the recent window (persistence: is it still happening?), one look at a sliding window, with the
  fixed-sample intervals;
- before the deployment (the baseline: did the errors exist already?).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..clients.bookstrack import ProbeSample
from ..clients.cloudflare import VersionInfo
from ..config import Runbook, scaled
from ..signals.endpoints import FRESH_KNOWN_LABEL, KNOWN_GOOD_LABELS
from ..signals.observations import CanaryRead, PendingProbe, WsSession
from ..stats import Judgement, Rate
from .decision import Decision, Situation, decide
from .triggers import ERROR_RATE, Reading, TriggerEvaluator, Window, same_signal

_RATE_TRIGGERS = {"error_rate_spike", "server_error_rate", "moderate_error_rate", "complete_outage",
                  "websocket_failures", "cache_failure", "provider_timeouts"}
_ERROR_TRIGGERS = {"error_rate_spike", "server_error_rate", "moderate_error_rate", "complete_outage"}


@dataclass
class Assessment:
    """One look at the signals: every trigger's readings and the situation for the decision tree."""

    at: float
    after: dict[str, Reading]
    recent: dict[str, Reading]
    before: dict[str, Reading] | None
    situation: Situation

    @property
    def firing(self) -> tuple[Reading, ...]:
        return self.situation.firing

    def decision(self) -> Decision:
        return decide(self.situation)


@dataclass
class Detector:
    runbook: Runbook
    time_scale: float
    deployed_at: float
    baseline_s: float | None = None  # how far before the deployment the baseline reaches
    # readings of the time before the deployment from elsewhere (triage: Analytics Engine history),
    # used when the probes did not see that time
    baseline: dict[str, Reading] | None = None
    anytime: bool = True  # looked at again and again: confidence sequences (False: one look, intervals)
    samples: list[ProbeSample] = field(default_factory=list)
    ws: list[WsSession] = field(default_factory=list)  # real-token handshakes: the users' socket
    bogus: list[WsSession] = field(default_factory=list)  # made-up-token handshakes (401 expected)
    canaries: list[CanaryRead] = field(default_factory=list)
    no_real_token_reason: str | None = None
    # the probes still waiting for answers (the live feed's), for latency that has not answered yet
    in_flight: Callable[[], tuple[PendingProbe, ...]] = lambda: ()
    confirmed_at: dict[str, float] = field(default_factory=dict)  # trigger id -> first confirmation
    confirmed: dict[str, Reading] = field(default_factory=dict)  # trigger id -> the reading that confirmed it

    # where the live feed writes (signals.observations.Sink)
    def probe(self, sample: ProbeSample) -> None:
        self.samples.append(sample)

    def handshake(self, session: WsSession) -> None:
        (self.ws if session.real else self.bogus).append(session)

    def no_real_token(self, reason: str) -> None:
        self.no_real_token_reason = reason

    def canary(self, read: CanaryRead) -> None:
        self.canaries.append(read)

    @property
    def persistence_s(self) -> float:
        return scaled(self.runbook.checklist.not_transient_min, self.time_scale)

    @property
    def recent_s(self) -> float:
        """Half the persistence rule: long enough to judge, short enough to notice that a blip ended."""
        return self.persistence_s / 2

    @property
    def post_deploy_window_s(self) -> float:
        return scaled(self.runbook.triggers.post_deploy_window_min, self.time_scale)

    def window(self, start: float, end: float) -> Window:
        return Window(start, end,
                      tuple(s for s in self.samples if start <= s.at < end),
                      tuple(w for w in self.ws if start <= w.at < end),
                      tuple(c for c in self.canaries if start <= c.at < end),
                      tuple(p for p in self.in_flight() if start <= p.at < end),
                      self.no_real_token_reason)

    def _bad_since(self, trigger_id: str) -> float | None:
        """The first observation after the deployment that shows this trigger's kind of trouble."""
        after = [s for s in self.samples if s.at >= self.deployed_at]
        runbook = self.runbook
        if trigger_id in _ERROR_TRIGGERS:
            times = [s.at for s in after if s.is_error]
        elif trigger_id == "latency_spike":
            times = [s.at for s in after if s.latency_ms > runbook.triggers.approval.p95_latency_above_s * 1000]
        elif trigger_id == "cache_failure":
            times = [s.at for s in after if s.label in KNOWN_GOOD_LABELS and not s.is_error and not s.cached]
        elif trigger_id == "provider_timeouts":
            times = [s.at for s in after if s.endpoint != "health" and not s.is_error and s.provider == "none"
                     and s.label in (*KNOWN_GOOD_LABELS, FRESH_KNOWN_LABEL)]
        elif trigger_id == "websocket_failures":
            times = [w.at for w in self.ws if w.at >= self.deployed_at and not w.ok]
        elif trigger_id == "data_loss":
            times = [c.at for c in self.canaries if c.at >= self.deployed_at and c.intact is False]
        else:
            times = []
        return min(times) if times else None

    def _onset(self, firing: tuple[Reading, ...], now: float, judged_since: float | None = None,
               judged: frozenset[str] = frozenset()) -> float | None:
        """When the issue began: the first sign of the earliest firing trigger's trouble (never later
        than its confirmation); for a trigger judged elsewhere over a window, that window's start."""
        if not firing:
            return None
        onsets = []
        for reading in firing:
            confirmed = self.confirmed_at[reading.trigger.id]
            first = judged_since if reading.trigger.id in judged else self._bad_since(reading.trigger.id)
            onsets.append(min(first, confirmed) if first is not None else confirmed)
        return min(onsets)

    def _fired_before(self, before: dict[str, Reading] | None,
                      firing: tuple[Reading, ...]) -> tuple[Reading, ...] | None:
        """The firing triggers' signals before the deployment: those that fired then (the errors existed
        before it), none (healthy then), or None when the baseline cannot tell (unknown history)."""
        if before is None:
            return None
        readings = [before[i] for i in dict.fromkeys(i for r in firing for i in same_signal(r.trigger.id))]
        fired = tuple(r for r in readings if r.fires)
        if fired:
            return fired
        # healthy before, by each firing trigger's own threshold: confidently so, not one bad event seen
        # (sparse signals: sockets, canaries), or a rate clearly lower before than after (it began then)
        if all(self._healthy_before(before[r.trigger.id], r) for r in firing):
            return ()
        return None

    def _healthy_before(self, before: Reading, after: Reading) -> bool:
        if before.judgement is Judgement.WITHIN or (before.judgement is Judgement.UNSURE and before.value == 0.0):
            return True
        if before.trigger.id in _RATE_TRIGGERS and before.value is not None and after.value is not None \
                and before.samples and after.samples:
            confidence = self.runbook.statistics.confidence
            before_low, before_high = Rate(round(before.value * before.samples), before.samples).interval(confidence)
            after_low, after_high = Rate(round(after.value * after.samples), after.samples).interval(confidence)
            if before.trigger.id == "cache_failure":  # the trouble is a hit rate that dropped
                return before_low > after_high
            return before_high < after_low
        return False

    @staticmethod
    def _cleared(trigger_id: str, recent: dict[str, Reading]) -> bool:
        """The recent window is confidently healthy for this trigger. The band is WITHIN also when the
        rate is above its ceiling: that is not healthy, so for the band the spike must be WITHIN too."""
        ids = ERROR_RATE if trigger_id == "moderate_error_rate" else (trigger_id,)
        return all(recent[i].judgement is Judgement.WITHIN for i in ids)

    def assess(self, now: float, *, migration: bool | None, serving: VersionInfo | None,
               rollback_target: VersionInfo | None, rollback_target_from: str = "",
               judged: dict[str, Reading] | None = None, judged_recent: dict[str, Reading] | None = None,
               judged_since: float | None = None) -> Assessment:
        """One look. ``judged``, ``judged_recent``: readings made elsewhere (triage: on the users' traffic,
        over the window watched since ``judged_since`` and its recent part) that take the place of the
        probes' since the deployment and in the recent window."""
        evaluator = TriggerEvaluator(self.runbook)  # fixed windows: one look each
        end = math.nextafter(now, math.inf)  # up to and including now (now + 1e-9 == now at epoch seconds)
        after = TriggerEvaluator(self.runbook, anytime=self.anytime).evaluate(self.window(self.deployed_at, end))
        after.update(judged or {})
        recent = evaluator.evaluate(self.window(max(self.deployed_at, now - self.recent_s), end))
        recent.update(judged_recent or {})
        before = self.baseline
        if self.baseline_s:
            window = self.window(self.deployed_at - self.baseline_s, self.deployed_at)
            if window.samples:
                before = evaluator.evaluate(window)
        for reading in after.values():
            if reading.fires and reading.trigger.id not in self.confirmed:
                self.confirmed[reading.trigger.id] = reading
                self.confirmed_at[reading.trigger.id] = now
        firing = self._firing(after)
        # not ended: confirmed again in the recent window, or too few samples there to judge it (health
        # checks, sockets, canary reads are sparse): then the confirmation stands. (Not "not yet clean": a
        # short window cannot show a 5xx rate under 5%, so a blip would never end.)
        still = tuple(r for r in firing if recent[r.trigger.id].fires or (
            recent[r.trigger.id].judgement is Judgement.UNSURE
            and recent[r.trigger.id].samples < evaluator.min_samples))
        clear = bool(firing) and all(self._cleared(r.trigger.id, recent) for r in firing)
        fired_before = self._fired_before(before, firing)
        situation = Situation(
            now=now, deployed_at=self.deployed_at, firing=firing, still_firing=still, recent_clear=clear,
            fired_before_deploy=fired_before, onset=self._onset(firing, now, judged_since, frozenset(judged or ())), persistence_s=self.persistence_s,
            post_deploy_window_s=self.post_deploy_window_s, migration=migration, serving=serving,
            rollback_target=rollback_target, rollback_target_from=rollback_target_from,
            unsure=tuple(r for r in after.values() if r.judgement is Judgement.UNSURE),
            watched_s=self._watched_s(now),
        )
        return Assessment(now, after, recent, before, situation)

    def decidable(self, assessment: Assessment) -> bool:
        """The tree can be walked: it fired before the deploy, it cleared, or it has lasted the
        persistence rule and has not ended in the recent window."""
        s = assessment.situation
        if not s.firing:
            return False
        if s.fired_before_deploy:
            return True
        if s.recent_clear:
            return True
        return s.onset is not None and s.now - s.onset >= s.persistence_s and bool(s.still_firing)

    def _firing(self, after: dict[str, Reading]) -> tuple[Reading, ...]:
        """Every trigger confirmed since the deployment, at this look or an earlier one: a confirmation
        stands (the confidence sequence's guarantee is for "ever"), its recent window says whether it
        ended. The band of an error rate whose spike confirmed is that spike diluting, not a new issue.
        Each with its reading now while it still fires, else the reading that confirmed it."""
        ids = [t for t in after if t in self.confirmed]
        if self.anytime and "error_rate_spike" in ids:
            ids = [t for t in ids if t != "moderate_error_rate"]
        return tuple(after[t] if after[t].fires else self.confirmed[t] for t in ids)

    def _watched_s(self, now: float) -> float:
        """How long the evidence since the deployment took to gather: from the deployment, or from the
        first sample when watching began after it (triage)."""
        first = next((s.at for s in self.samples if s.at >= self.deployed_at), now)
        return max(0.0, now - first)

    def detected_after(self) -> dict[str, float]:
        """Each confirmed trigger's time to detect: the deployment -> its first confirmation."""
        return {trigger: at - self.deployed_at for trigger, at in sorted(self.confirmed_at.items(), key=lambda i: i[1])}

    @property
    def time_to_detect(self) -> float | None:
        """Fault live (the deployment) -> the first trigger confirmed."""
        if not self.confirmed_at:
            return None
        return min(self.confirmed_at.values()) - self.deployed_at
