"""Rates and quantiles with their sample counts and confidence intervals.

- :class:`Rate`: k events in n trials, with a Wilson score interval (well behaved at 0 and at small n).
- :class:`QuantileEstimate`: an empirical quantile with a distribution-free interval from order
  statistics (the binomial ranks around ``q * n``).
- :func:`judge_below` / :func:`judge_above`: compare an interval with a threshold. A measurement
  passes only when its whole interval is on the right side; it fails only when its whole interval is on
  the wrong side; otherwise there is not yet enough evidence (INCONCLUSIVE, never PASS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from statistics import NormalDist


def z_for(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def percent(value: float) -> str:
    """0.0789 -> '7.9%'; small values keep one significant decimal."""
    pct = value * 100
    return f"{pct:.1f}%" if pct >= 0.1 or pct == 0 else f"{pct:.2f}%"


def threshold_percent(value: float) -> str:
    """A threshold as the runbook writes it: 0.05 -> '5%', 0.125 -> '12.5%'."""
    return f"{value * 100:g}%"


@dataclass(frozen=True)
class Rate:
    """``events`` out of ``total`` (e.g. errors out of requests)."""

    events: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or not 0 <= self.events <= max(self.total, 0):
            raise ValueError(f"a rate needs 0 <= events <= total, got {self.events}/{self.total}")

    @property
    def value(self) -> float:
        return self.events / self.total if self.total else math.nan

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The Wilson score interval; (0, 1) when there are no trials."""
        n = self.total
        if n == 0:
            return (0.0, 1.0)
        z = z_for(confidence)
        p = self.events / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
        low = 0.0 if self.events == 0 else max(0.0, centre - half)
        high = 1.0 if self.events == n else min(1.0, centre + half)
        return (low, high)

    def describe(self, name: str, unit: str = "requests", confidence: float = 0.95) -> str:
        """'error rate 7.9% (95% CI 6.1-10.2%) over 312 requests'."""
        if self.total == 0:
            return f"{name} unknown (no {unit})"
        low, high = self.interval(confidence)
        level = f"{confidence * 100:g}%"
        return (f"{name} {percent(self.value)} ({level} CI {percent(low)[:-1]}-{percent(high)}) "
                f"over {self.total} {unit}")


def _binomial_cdfs(n: int, p: float) -> list[float]:
    """[P(X <= k) for k in 0..n] for X ~ Binomial(n, p), computed in log space in one pass."""
    log_p, log_q = math.log(p), math.log1p(-p)
    cdfs: list[float] = []
    total, log_coeff = 0.0, 0.0
    for i in range(n + 1):
        if i > 0:
            log_coeff += math.log(n - i + 1) - math.log(i)
        total += math.exp(log_coeff + i * log_p + (n - i) * log_q)
        cdfs.append(min(1.0, total))
    return cdfs


@dataclass(frozen=True)
class QuantileEstimate:
    """The q-quantile of ``count`` samples, with a distribution-free confidence interval."""

    q: float
    value: float
    low: float
    high: float
    count: int

    def describe(self, name: str, unit: str = "requests", confidence: float = 0.95) -> str:
        """'P95 412 ms (95% CI 380-455 ms) over 240 requests'."""
        if self.count == 0:
            return f"{name} unknown (no {unit})"
        high = "unbounded" if math.isinf(self.high) else f"{self.high:.0f}"
        return (f"{name} {self.value:.0f} ms ({confidence * 100:g}% CI {self.low:.0f}-{high} ms) "
                f"over {self.count} {unit}")


def quantile(samples: list[float] | tuple[float, ...], q: float, confidence: float = 0.95) -> QuantileEstimate:
    """Empirical quantile (nearest rank) and an order-statistic interval.

    The interval's ranks (l, u) are chosen so that P(X_(l) <= true quantile <= X_(u)) >= confidence;
    when the samples are too few for an upper rank, the upper bound is +inf (the data cannot bound it).
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        return QuantileEstimate(q, math.nan, math.nan, math.nan, 0)
    point = ordered[max(0, math.ceil(q * n) - 1)]
    alpha = 1 - confidence
    cdf = _binomial_cdfs(n, q)  # cdf[k] = P(B <= k); rank r is the r-th smallest sample (1-based)
    # lower rank: the largest l with P(B <= l-1) <= alpha/2; upper: the smallest u with P(B <= u-1) >= 1-alpha/2
    low_rank = 0
    for rank in range(1, n + 1):
        if cdf[rank - 1] > alpha / 2:
            break
        low_rank = rank
    high_rank = next((rank for rank in range(1, n + 1) if cdf[rank - 1] >= 1 - alpha / 2), None)
    low = ordered[low_rank - 1] if low_rank >= 1 else -math.inf
    high = ordered[high_rank - 1] if high_rank is not None else math.inf
    return QuantileEstimate(q, point, low, high, n)


class Judgement(Enum):
    WITHIN = "within"  # the whole interval is on the good side of the threshold
    BREACH = "breach"  # the whole interval is on the bad side
    UNSURE = "unsure"  # the interval straddles the threshold (or there is no data)


def judge_below(low: float, high: float, threshold: float) -> Judgement:
    """Is the measured quantity below ``threshold``? (error rate < 5%, P95 < 1 s)"""
    if math.isnan(low) or math.isnan(high):
        return Judgement.UNSURE
    if high < threshold:
        return Judgement.WITHIN
    if low > threshold:
        return Judgement.BREACH
    return Judgement.UNSURE


def judge_above(low: float, high: float, threshold: float) -> Judgement:
    """Is the measured quantity above ``threshold``? (cache hit rate > 50%)"""
    if math.isnan(low) or math.isnan(high):
        return Judgement.UNSURE
    if low > threshold:
        return Judgement.WITHIN
    if high < threshold:
        return Judgement.BREACH
    return Judgement.UNSURE
