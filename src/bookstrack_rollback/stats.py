"""Rates and quantiles with their sample counts and confidence intervals.

- :class:`Rate`: k events in n trials, with a Wilson score interval (well behaved at 0 and at small n).
- :class:`QuantileEstimate`: an empirical quantile with a distribution-free interval from order
  statistics (the binomial ranks around ``q * n``).
- :func:`judge_below` / :func:`judge_above`: compare an interval with a threshold. A measurement
  passes only when its whole interval is on the right side; it fails only when its whole interval is on
  the wrong side; otherwise there is not yet enough evidence (INCONCLUSIVE, never PASS).
- :func:`sequence`: an anytime-valid confidence sequence for a rate, for a judgement looked at again
  and again as the samples arrive (the drill): its error guarantee holds at every look at once.

Why a confidence sequence. A 95% interval is right 95% of the time for one look at a fixed number of
samples. A drill looks every 0.2 s at a growing window; the chance that at least one of those looks
shows a rate exactly at its threshold as confidently above it grows with every look (measured: 18.7%
of drills at a true 10% error rate fired the 10% trigger). A confidence sequence is a sequence of
intervals that all hold at once, whatever the number and timing of the looks (Howard, Ramdas, McAuliffe
and Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021;
Lindon, Sanden and Shirikian, "Rapid regression detection in software deployments through sequential
testing", KDD 2022, for the same idea on Netflix's canaries with a conjugate Dirichlet mixture).

The construction here (written for this suite; PyPI's ``confseq`` and ``savvi`` were read, and a
mixture of a few likelihood ratios is all a Bernoulli rate needs, with no SciPy or C extension):

    For H0: p <= p0 and an alternative q > p0, the likelihood ratio after n samples with k events,
        L_n(q) = (q / p0)^k ((1 - q) / (1 - p0))^(n - k),
    has, under any p <= p0, E[L_{n+1} / L_n] = p q/p0 + (1 - p)(1 - q)/(1 - p0) <= 1 (it is linear
    in p, equals 1 at p = p0 and grows with p since q > p0). So L_n(q) is a nonnegative
    supermartingale starting at 1, and so is any average M_n = sum_j w_j L_n(q_j) with weights summing
    to 1. Ville's inequality: P(M_n >= 1/a for some n) <= a. "Some n" is every look at once.

The alternatives q_j sit at fixed steps in log-odds from p0 (``_STEPS``: from 0.1, about a 10%
relative change near a small rate, to 5.6, a rate near 0 or 1), equally weighted: the test is never
blind to an effect size, and pays about log(11) in evidence for not knowing it. The lower bound of the
sequence is the smallest p0 that the "above p0" test does not reject at a = (1 - confidence) / 2, the
upper the largest p0 the mirrored "below p0" test does not; log M_n is monotone in p0 (each term's
derivative is -n (sigmoid(logit p0 + s) - sigmoid(logit p0)) < 0 for s > 0), so bisection finds them.
A rate exactly at its threshold is then seen confidently past it, at any look, with probability at most
(1 - confidence) / 2 = 2.5% for 95%.
"""

from __future__ import annotations

import functools
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


def interval_text(low: float, high: float, confidence: float, anytime: bool = False) -> str:
    """'95% CI 6.1-10.2%' (a fixed-sample interval), '95% sequential CI 5.2-11.9%' (a confidence sequence)."""
    return f"{confidence * 100:g}%{' sequential' if anytime else ''} CI {percent(low)[:-1]}-{percent(high)}"


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

    def bounds(self, confidence: float = 0.95, anytime: bool = False) -> tuple[float, float]:
        """The fixed-sample interval (one look), or the confidence sequence (``anytime``: many looks)."""
        return sequence(self.events, self.total, confidence) if anytime else self.interval(confidence)

    def describe(self, name: str, unit: str = "requests", confidence: float = 0.95, anytime: bool = False) -> str:
        """'error rate 7.9% (95% CI 6.1-10.2%) over 312 requests'; anytime: '(95% sequential CI ...)'."""
        if self.total == 0:
            return f"{name} unknown (no {unit})"
        return (f"{name} {percent(self.value)} ({interval_text(*self.bounds(confidence, anytime), confidence, anytime)}) "
                f"over {self.total} {unit}")


_STEPS = (0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6)  # alternatives, in log-odds from p0
_EDGE = 1e-12


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def log_evidence(events: int, total: int, p0: float, above: bool) -> float:
    """log M_n: the evidence that the rate is above ``p0`` (``above``) or below it, as the log of the
    mixture martingale of the module's docstring. At least log(1/a) rejects at level a, at any look."""
    p0 = min(max(p0, _EDGE), 1 - _EDGE)
    base = _logit(p0)
    log_p0, log_q0 = _log_sigmoid(base), _log_sigmoid(-base)
    misses = total - events
    terms = []
    for step in _STEPS:
        alt = base + step if above else base - step
        terms.append(events * (_log_sigmoid(alt) - log_p0) + misses * (_log_sigmoid(-alt) - log_q0))
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


@functools.lru_cache(maxsize=1 << 16)
def sequence(events: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The anytime-valid confidence sequence's bounds at this look: ``confidence`` of all looks at once
    (cached: a watcher asks for the same counts again and again)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if total == 0:
        return (0.0, 1.0)
    needed = math.log(2 / (1 - confidence))
    point = events / total

    def edge(inside: float, outside: float, above: bool) -> float:
        # the test rejects at ``outside`` (or it is the end of [0, 1]) and not at ``inside``: bisect
        for _ in range(30):  # to within 1e-9
            middle = (inside + outside) / 2
            if log_evidence(events, total, middle, above) >= needed:
                outside = middle
            else:
                inside = middle
        return inside

    low = 0.0 if events == 0 or log_evidence(events, total, 0.0, True) < needed else edge(point, 0.0, True)
    high = 1.0 if events == total or log_evidence(events, total, 1.0, False) < needed else edge(point, 1.0, False)
    return (low, high)


def samples_to_decide(value: float, threshold: float, confidence: float = 0.95, anytime: bool = False) -> int | None:
    """How many samples a rate of ``value`` needs before its interval (or sequence) leaves ``threshold``
    on one side; None when it sits on the threshold (no number of samples decides it)."""
    if math.isnan(value) or abs(value - threshold) < 1e-9:
        return None

    def decided(n: int) -> bool:
        low, high = Rate(min(n, round(value * n)), n).bounds(confidence, anytime)
        return high < threshold or low > threshold

    high = 1
    while not decided(high):
        high *= 2
        if high > 1 << 26:
            return None
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decided(middle) else (middle, high)
    return high


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
