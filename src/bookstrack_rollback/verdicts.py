"""Verdicts: what a check concluded, with its evidence (DESIGN.md, "Checks").

PASS is the only green verdict. FAIL means the service breaches the runbook's threshold.
INCONCLUSIVE means the data cannot tell yet (too few samples, an interval across the threshold,
an untrustworthy signal). ERROR means the checker itself could not measure (target unreachable for
the API it needs, authentication refused, rate limited). In pytest, FAIL raises AssertionError
(Allure: failed); INCONCLUSIVE and ERROR raise their own exceptions (Allure: broken), so a checker
problem is never reported as a service failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"


class InconclusiveError(Exception):
    """Raised by a test whose check could not decide; the message says what to do next."""


class CheckerError(Exception):
    """Raised by a test whose check could not measure; the message says what to do next."""


@dataclass(frozen=True)
class CheckResult:
    """One check's conclusion: a verdict, one sentence, and the evidence behind it."""

    check: str  # e.g. "error rate (probes)"
    verdict: Verdict
    sentence: str
    measurements: dict[str, Any] = field(default_factory=dict)
    next_step: str = ""
    quirks: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        text = f"{self.verdict.value}: {self.sentence}"
        if self.next_step and self.verdict is not Verdict.PASS:
            text += f" Next: {self.next_step}"
        return text

    def raise_unless_pass(self) -> None:
        if self.verdict is Verdict.PASS:
            return
        if self.verdict is Verdict.FAIL:
            raise AssertionError(self.message)
        if self.verdict is Verdict.INCONCLUSIVE:
            raise InconclusiveError(self.message)
        raise CheckerError(self.message)


def passed(check: str, sentence: str, **measurements: Any) -> CheckResult:
    return CheckResult(check, Verdict.PASS, sentence, measurements)


def failed(check: str, sentence: str, next_step: str = "", **measurements: Any) -> CheckResult:
    return CheckResult(check, Verdict.FAIL, sentence, measurements, next_step)


def inconclusive(check: str, sentence: str, next_step: str, quirks: tuple[str, ...] = (), **measurements: Any) -> CheckResult:
    return CheckResult(check, Verdict.INCONCLUSIVE, sentence, measurements, next_step, quirks)


def checker_error(check: str, sentence: str, next_step: str, **measurements: Any) -> CheckResult:
    return CheckResult(check, Verdict.ERROR, sentence, measurements, next_step)
