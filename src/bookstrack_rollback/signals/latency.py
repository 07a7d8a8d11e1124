"""Latency judged with the requests that have not answered yet (censoring).

A P95 above a threshold is more than 5% of requests slower than it: a P95 is judged as a rate. Every
request sent counts, answered or not:
- answered: slow or fast by its latency (a timeout counts as its timeout);
- unanswered for longer than the threshold: slow, whenever it answers;
- unanswered for less: unknown. It counts as slow when judging that the P95 is under the threshold, and
  as fast when judging that it is over: either judgement holds whatever those requests turn out to be.

So a P95 is never judged on the answers that came back first, and the answers already in need not wait
for the threshold to pass. (The interval's low end comes from the known slow requests, its high end from
the known slow and the unknown; each end keeps its guarantee, fixed-sample or anytime-valid, since
the true count lies between the two.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..clients.bookstrack import ProbeSample
from ..stats import Judgement, Rate, interval_text, judge_below, percent, quantile
from .observations import PendingProbe


@dataclass(frozen=True)
class SlowShare:
    """The requests slower than a threshold, among all sent: known slow, and still unknown."""

    threshold_ms: float
    slow: int  # answered slower than the threshold, or unanswered for longer than it
    unknown: int  # unanswered, for less than the threshold
    total: int  # every request sent and judged: answered (errors other than timeouts aside) and unanswered
    latencies: tuple[float, ...]  # the answered ones' latencies, the unanswered ones' as +inf

    @property
    def value(self) -> float:
        return self.slow / self.total if self.total else math.nan

    def bounds(self, confidence: float, anytime: bool) -> tuple[float, float]:
        low = Rate(self.slow, self.total).bounds(confidence, anytime)[0]
        high = Rate(self.slow + self.unknown, self.total).bounds(confidence, anytime)[1]
        return low, high

    def judge_p95_below(self, confidence: float, anytime: bool) -> Judgement:
        """Is the P95 under the threshold? (WITHIN: fewer than 5% slow; BREACH: more; UNSURE)."""
        return judge_below(*self.bounds(confidence, anytime), 0.05)

    def describe(self, name: str, confidence: float, anytime: bool) -> str:
        """'P95 of title:hamlet 412 ms over 240 requests (3 unanswered): 2.1% slower than 1000 ms (95% CI 0.9-4.8%)'."""
        if not self.total:
            return f"{name} unknown (no request yet)"
        point = quantile(list(self.latencies), 0.95).value
        shown = "not yet known (its slowest requests have not answered)" if math.isinf(point) else f"{point:.0f} ms"
        waiting = sum(1 for latency in self.latencies if math.isinf(latency))
        unanswered = f" ({waiting} unanswered)" if waiting else ""
        return (f"{name} {shown} over {self.total} requests{unanswered}: {percent(self.value)} slower than "
                f"{self.threshold_ms:.0f} ms ({interval_text(*self.bounds(confidence, anytime), confidence, anytime)})")


def slow_share(samples: Sequence[ProbeSample], pending: Sequence[PendingProbe], threshold_ms: float,
               now: float) -> SlowShare:
    answered = [s.latency_ms for s in samples if not s.is_error or s.outcome == "timeout"]
    overdue = sum(1 for p in pending if (now - p.at) * 1000 > threshold_ms)
    return SlowShare(threshold_ms, sum(latency > threshold_ms for latency in answered) + overdue,
                     len(pending) - overdue, len(answered) + len(pending),
                     tuple(answered) + (math.inf,) * len(pending))
