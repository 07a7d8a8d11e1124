"""Latency judged with the requests that have not answered yet (censoring).

A P95 above a threshold is more than 5% of requests slower than it: a P95 is judged as a rate. Every
request sent counts, answered or not:
- answered: slow or fast by its latency (a timeout counts as its timeout);
- unanswered for longer than the threshold: slow, whenever it answers;
- unanswered for less: unknown. It counts as fast when judging that the P95 is over the threshold.

The interval's low end (is the P95 over?) comes from every request, the unknown ones counted fast. Its
high end (is the P95 under?) comes from the requests sent at least the threshold ago, whose every
outcome is known: answered, or unanswered and so slow. Counting the young unanswered requests as slow
instead would hold a PASS back for ever under steady probing (at any moment rate x latency requests are
in flight: 5% of them at 38 requests/s and 80 ms), and keeping the young answered ones would pick the
fast ones. Before any request is that old, the high end counts the unknown as slow. Either way a P95 is
never judged on the answers that came back first, and each end keeps its guarantee, fixed-sample or
anytime-valid.
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
    matured_slow: int = 0  # among the requests sent at least the threshold ago (every outcome known)
    matured_total: int = 0

    @property
    def value(self) -> float:
        return self.slow / self.total if self.total else math.nan

    def bounds(self, confidence: float, anytime: bool) -> tuple[float, float]:
        low = Rate(self.slow, self.total).bounds(confidence, anytime)[0]
        if self.matured_total:
            high = Rate(self.matured_slow, self.matured_total).bounds(confidence, anytime)[1]
        else:
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
    cutoff = now - threshold_ms / 1000.0
    answered = [s for s in samples if not s.is_error or s.outcome == "timeout"]
    overdue = sum(1 for p in pending if p.at < cutoff)
    matured = [s.latency_ms for s in answered if s.at <= cutoff]
    return SlowShare(threshold_ms, sum(s.latency_ms > threshold_ms for s in answered) + overdue,
                     len(pending) - overdue, len(answered) + len(pending),
                     tuple(s.latency_ms for s in answered) + (math.inf,) * len(pending),
                     matured_slow=sum(latency > threshold_ms for latency in matured) + overdue,
                     matured_total=len(matured) + overdue)
