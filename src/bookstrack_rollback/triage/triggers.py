"""The runbook's trigger tables ("When to Rollback"), each evaluated on a window of samples with a
minimum sample count and a confidence bound.

A trigger BREACHES only when its whole confidence interval is past the threshold: a handful of
requests never triggers a rollback, and a real spike is confirmed as soon as the data allows. A watcher
that looks again and again (the drill's detector) judges with anytime-valid confidence sequences
(``stats.sequence``), so its looks do not add up to false alarms; one look (triage) with the usual
fixed-sample intervals.

Latency is judged as a rate (``signals.latency``): a P95 above 2 s is more than 5% of requests slower
than 2 s, counting the unanswered ones that have waited longer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ..clients.bookstrack import ProbeSample
from ..config import Runbook
from ..signals.endpoints import FRESH_KNOWN_LABEL, KNOWN_GOOD_LABELS
from ..signals.latency import slow_share
from ..signals.observations import CanaryRead, PendingProbe, WsSession
from ..stats import (
    Judgement,
    Rate,
    judge_above,
    judge_below,
    quantile,
    samples_to_decide,
    threshold_percent,
)


class Table(str, Enum):
    IMMEDIATE = "immediate"  # "Immediate Rollback Triggers (No Approval Needed)"
    APPROVAL = "approval"  # "Approval Required Rollback Triggers"


@dataclass(frozen=True)
class Trigger:
    id: str
    name: str  # the runbook's words
    table: Table
    threshold_text: str  # as the runbook writes it


@dataclass(frozen=True)
class Reading:
    """One trigger judged on one window."""

    trigger: Trigger
    judgement: Judgement  # BREACH: the trigger fires; WITHIN: it clearly does not; UNSURE: not yet known
    sentence: str
    value: float | None = None
    samples: int = 0
    bad: int = 0  # observations on the trigger's bad side (errors, misses, slow answers, failed handshakes)
    # the samples at which the observed value would be decided (None: cannot say), worked out only when
    # asked: a search over interval widths, not for every reading of every look
    to_decide: Callable[[], int | None] = field(default=lambda: None, compare=False, repr=False)
    reaches: bool = False  # the interval reaches across the threshold

    @property
    def fires(self) -> bool:
        return self.judgement is Judgement.BREACH

    @property
    def needed(self) -> int | None:
        return self.to_decide()

    @property
    def doubtful(self) -> bool:
        """Not yet known, its interval across the threshold, with failures seen: it may breach. (Unsure
        with no failure at all, or with an interval on the healthy side, is only a want of samples.)"""
        return self.judgement is Judgement.UNSURE and self.reaches and self.bad > 0


def trigger_table(runbook: Runbook) -> tuple[Trigger, ...]:
    im, ap = runbook.triggers.immediate, runbook.triggers.approval
    return (
        Trigger("error_rate_spike", "Error Rate Spike", Table.IMMEDIATE, f">{threshold_percent(im.error_rate_above)}"),
        Trigger("server_error_rate", "5xx Error Rate", Table.IMMEDIATE, f">{threshold_percent(im.server_error_rate_above)}"),
        Trigger("complete_outage", "Complete Outage", Table.IMMEDIATE, "Health check fails"),
        Trigger("websocket_failures", "WebSocket Failures", Table.IMMEDIATE,
                f">{threshold_percent(im.websocket_failure_rate_above)} failure rate"),
        Trigger("data_loss", "Data Loss", Table.IMMEDIATE, "Any confirmed data loss"),
        Trigger("moderate_error_rate", "Moderate Error Rate", Table.APPROVAL,
                f"{threshold_percent(ap.error_rate_from)[:-1]}-{threshold_percent(ap.error_rate_to)}"),
        Trigger("latency_spike", "Latency Spike", Table.APPROVAL, f"P95 >{ap.p95_latency_above_s:g}s"),
        Trigger("cache_failure", "Cache Failure", Table.APPROVAL, f"Hit rate <{threshold_percent(ap.cache_hit_rate_below)}"),
        Trigger("provider_timeouts", "External API Issues", Table.APPROVAL, "Provider timeouts"),
    )


# one error rate judged against two thresholds (>10% immediate, the 5-10% band): one signal. While a
# spike's evidence grows, the band confirms first (above 5%, not yet surely above 10%).
ERROR_RATE = ("error_rate_spike", "moderate_error_rate")


def same_signal(trigger_id: str) -> tuple[str, ...]:
    """The triggers that judge the same signal as ``trigger_id`` (itself included)."""
    return ERROR_RATE if trigger_id in ERROR_RATE else (trigger_id,)


@dataclass(frozen=True)
class Window:
    """What the signals showed between two moments."""

    start: float
    end: float
    samples: tuple[ProbeSample, ...]
    ws: tuple[WsSession, ...] = ()  # real-token handshakes (the bogus-token ones are not the users' socket)
    canaries: tuple[CanaryRead, ...] = ()
    pending: tuple[PendingProbe, ...] = ()  # probes sent in the window, unanswered at its end
    no_real_token: str | None = None  # why there are no real-token handshakes

    @property
    def searches(self) -> tuple[ProbeSample, ...]:
        return tuple(s for s in self.samples if s.endpoint != "health")


class TriggerEvaluator:
    """Evaluate every trigger of the runbook's tables on a window."""

    def __init__(self, runbook: Runbook, *, anytime: bool = False) -> None:
        self.runbook = runbook
        self.triggers = {t.id: t for t in trigger_table(runbook)}
        self.confidence = runbook.statistics.confidence
        self.min_samples = runbook.statistics.min_samples
        self.anytime = anytime  # judged again and again: confidence sequences instead of intervals

    def _to_decide(self, value: float, threshold: float, total: int) -> Callable[[], int | None]:
        """The samples a rate of ``value`` needs to be told apart from ``threshold`` (at least the minimum
        of samples), worked out when asked."""
        def needed() -> int | None:
            if not total:
                return None
            found = samples_to_decide(value, threshold, self.confidence, self.anytime)
            return max(found or 0, self.min_samples if total < self.min_samples else 0) or None
        return needed

    def rate_reading(self, trigger: Trigger, rate: Rate, what: str, unit: str, above: float,
              below: float | None = None) -> Reading:
        """Fires when the rate is confidently above ``above`` (and, for a band, not above ``below``)."""
        text = rate.describe(what, unit, self.confidence, self.anytime)
        low, high = rate.bounds(self.confidence, self.anytime)
        # the threshold the interval reaches across: the band's floor, or its ceiling
        nearest = below if below is not None and low > above else above
        needed = self._to_decide(rate.value, nearest, rate.total)
        if rate.total < self.min_samples:
            return Reading(trigger, Judgement.UNSURE, f"{text}: fewer than {self.min_samples} samples",
                           rate.value if rate.total else None, rate.total, rate.events, needed, low <= nearest <= high)
        over = judge_above(low, high, above)
        if below is not None and over is Judgement.WITHIN:
            # a band (5-10%): above the floor, and not confidently above the ceiling
            if judge_above(low, high, below) is Judgement.WITHIN:
                return Reading(trigger, Judgement.WITHIN, f"{text} is above the band's {threshold_percent(below)} ceiling "
                               "(an immediate trigger instead)", rate.value, rate.total, rate.events)
        judgement = {Judgement.WITHIN: Judgement.BREACH, Judgement.BREACH: Judgement.WITHIN,
                     Judgement.UNSURE: Judgement.UNSURE}[over]
        relation = {Judgement.BREACH: "exceeds", Judgement.WITHIN: "is below",
                    Judgement.UNSURE: "cannot yet be told apart from"}[judgement]
        bound = trigger.threshold_text
        if not any(c.isdigit() for c in bound):  # "Health check fails": name the number it was read as
            bound = f"{bound} (>{threshold_percent(above)})"
        return Reading(trigger, judgement, f"{text} {relation} the {bound} threshold", rate.value,
                       rate.total, rate.events, needed, low <= nearest <= high)

    def evaluate(self, window: Window) -> dict[str, Reading]:
        im, ap = self.runbook.triggers.immediate, self.runbook.triggers.approval
        t = self.triggers
        searches = window.searches
        errors = Rate(sum(s.is_error for s in searches), len(searches))
        server = Rate(sum(s.is_server_error for s in searches), len(searches))
        health = [s for s in window.samples if s.endpoint == "health"]
        readings = {
            "error_rate_spike": self.rate_reading(t["error_rate_spike"], errors, "error rate", "requests", im.error_rate_above),
            "server_error_rate": self.rate_reading(t["server_error_rate"], server, "5xx rate", "requests",
                                            im.server_error_rate_above),
            "complete_outage": self.rate_reading(t["complete_outage"], Rate(sum(s.is_error for s in health), len(health)),
                                          "health check failure rate", "health checks", 0.5),
            "websocket_failures": self._ws(window),
            "data_loss": self._data_loss(window),
            "moderate_error_rate": self.rate_reading(t["moderate_error_rate"], errors, "error rate", "requests",
                                              ap.error_rate_from, ap.error_rate_to),
            "latency_spike": self._latency(window),
            "cache_failure": self._cache(window),
            "provider_timeouts": self._providers(window),
        }
        return readings

    def _ws(self, window: Window) -> Reading:
        trigger = self.triggers["websocket_failures"]
        if not window.ws and window.no_real_token:
            return Reading(trigger, Judgement.UNSURE, f"the progress socket cannot be judged: {window.no_real_token} "
                           "(a made-up token's 401 says nothing about the users' sockets)", None, 0)
        rate = Rate(sum(not w.ok for w in window.ws), len(window.ws))
        reading = self.rate_reading(trigger, rate, "WebSocket failure rate", "real-token handshakes",
                             self.runbook.triggers.immediate.websocket_failure_rate_above)
        if reading.judgement is Judgement.UNSURE and rate.total and rate.events == rate.total and rate.total >= 3:
            # every session failed: a handful is enough when none works at all
            return Reading(trigger, Judgement.BREACH, f"all {rate.total} real-token WebSocket handshakes failed "
                           f"({window.ws[-1].detail})", 1.0, rate.total, rate.events)
        return reading

    def _data_loss(self, window: Window) -> Reading:
        trigger = self.triggers["data_loss"]
        reads: dict[str, list[bool | None]] = {}
        for read in window.canaries:
            reads.setdefault(read.key, []).append(read.intact)
        # confirmed: the two latest reads of a canary both found it missing or changed
        lost = sorted(k for k, v in reads.items() if len(v) >= 2 and v[-1] is False and v[-2] is False)
        if lost:
            return Reading(trigger, Judgement.BREACH, f"canary record(s) {', '.join(lost)} confirmed lost "
                           "(missing or changed on two reads)", float(len(lost)), len(window.canaries))
        if not reads:
            return Reading(trigger, Judgement.UNSURE, "no canary record was read in the window", None, 0)
        if any(v[-1] is None for v in reads.values()):
            return Reading(trigger, Judgement.UNSURE, "the canary records could not be read", None, 0)
        suspect = sorted(k for k, v in reads.items() if v[-1] is False)
        if suspect:
            return Reading(trigger, Judgement.UNSURE, f"canary record(s) {', '.join(suspect)} missing once: "
                           "waiting for a second read to confirm", None, len(window.canaries), len(suspect),
                           reaches=True)
        return Reading(trigger, Judgement.WITHIN, f"all {len(reads)} canary records intact", 0.0, len(window.canaries))

    def _latency(self, window: Window) -> Reading:
        trigger = self.triggers["latency_spike"]
        threshold_ms = self.runbook.triggers.approval.p95_latency_above_s * 1000
        share = slow_share(window.searches, [p for p in window.pending if p.endpoint != "health"], threshold_ms,
                           window.end)
        text = share.describe("P95 latency", self.confidence, self.anytime)
        needed = self._to_decide(share.value, 0.05, share.total)
        low, high = share.bounds(self.confidence, self.anytime)
        if share.total < self.min_samples:
            return Reading(trigger, Judgement.UNSURE, f"{text}: fewer than {self.min_samples} samples", None, share.total,
                           share.slow, needed, low <= 0.05 <= high)
        # a P95 over the threshold is more than 5% of requests slower than it: BREACH fires the trigger
        judgement = share.judge_p95_below(self.confidence, self.anytime)
        relation = {Judgement.BREACH: "more than", Judgement.WITHIN: "fewer than",
                    Judgement.UNSURE: "cannot yet be told apart from"}[judgement]
        p95 = quantile(list(share.latencies), 0.95).value
        return Reading(trigger, judgement, f"{text}, {relation} the 5% of a P95 over the {threshold_ms:.0f} ms threshold",
                       p95 if p95 < float("inf") else None, share.total, share.slow, needed, low <= 0.05 <= high)

    def _cache(self, window: Window) -> Reading:
        repeated = [s for s in window.samples if s.label in KNOWN_GOOD_LABELS and not s.is_error]
        return self.cache_reading(Rate(sum(bool(s.cached) for s in repeated), len(repeated)), "cache hit rate",
                                  "repeated searches")

    def cache_reading(self, rate: Rate, what: str, unit: str) -> Reading:
        """Fires when the hit rate is confidently below the threshold."""
        trigger = self.triggers["cache_failure"]
        text = rate.describe(what, unit, self.confidence, self.anytime)
        threshold = self.runbook.triggers.approval.cache_hit_rate_below
        misses = rate.total - rate.events
        needed = self._to_decide(rate.value, threshold, rate.total)
        low, high = rate.bounds(self.confidence, self.anytime)
        if rate.total < self.min_samples:
            return Reading(trigger, Judgement.UNSURE, f"{text}: fewer than {self.min_samples} samples",
                           None, rate.total, misses, needed, low <= threshold <= high)
        verdict = judge_below(low, high, threshold)
        judgement = {Judgement.WITHIN: Judgement.BREACH, Judgement.BREACH: Judgement.WITHIN,
                     Judgement.UNSURE: Judgement.UNSURE}[verdict]
        relation = {Judgement.BREACH: "is below", Judgement.WITHIN: "is above",
                    Judgement.UNSURE: "cannot yet be told apart from"}[judgement]
        return Reading(trigger, judgement, f"{text} {relation} the {threshold_percent(threshold)} threshold", rate.value,
                       rate.total, misses, needed, low <= threshold <= high)

    def _providers(self, window: Window) -> Reading:
        """REALITY.md: a provider timeout answers 200 with empty lists and provider "none"."""
        trigger = self.triggers["provider_timeouts"]
        # a cached answer says nothing about the providers now: only fresh answers count
        known = [s for s in window.samples if s.label in (*KNOWN_GOOD_LABELS, FRESH_KNOWN_LABEL)
                 and not s.is_error and not s.cached]
        empty = Rate(sum(1 for s in known if not s.results or s.provider == "none"), len(known))
        return self.rate_reading(trigger, empty, "share of empty answers for known records", "uncached searches",
                          self.runbook.triggers.approval.provider_empty_share_above)
