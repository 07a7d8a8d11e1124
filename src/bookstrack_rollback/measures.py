"""Time to detect, time to rollback and total recovery (DESIGN.md, "Measures"; ROLLBACK_PROCEDURE.md,
"Testing Rollback Procedure": <5, <5 and <10 minutes): one model for the drill record, the post-mortem
and the drill report.

Seconds are at the run's time scale; budgets are scaled with it; the runbook's minutes are read back
with :meth:`Measure.runbook_minutes`. A measure is within its budget when it is under it (the runbook:
"should be <5 min"); a measure never reached is neither within nor over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import runbook_minutes

# (name, short name, the phase to blame when over budget)
TIME_TO_DETECT = ("time to detect", "TTD", "detect")
TIME_TO_ROLLBACK = ("time to rollback", "TTR", "roll back and verify")
TOTAL_RECOVERY = ("total recovery", "total", "the drill from deploy to verified")


@dataclass(frozen=True)
class Measure:
    name: str  # "time to detect"
    short: str  # "TTD"
    seconds: float | None  # None: never reached (e.g. the fault was not detected)
    budget_s: float
    time_scale: float = 1.0
    slow_phase: str = ""  # the phase to blame when over budget

    def __post_init__(self) -> None:
        for what, value in (("seconds", self.seconds), ("budget", self.budget_s), ("time scale", self.time_scale)):
            if value is not None and (isinstance(value, bool) or not math.isfinite(value) or value < 0):
                raise ValueError(f"{self.name}: the {what} must be a finite number of at least 0, got {value!r}")
        if self.time_scale <= 0:
            raise ValueError(f"{self.name}: the time scale must be above 0, got {self.time_scale!r}")

    @property
    def label(self) -> str:
        """'Time to detect (TTD)'."""
        return f"{self.name[0].upper()}{self.name[1:]}" + (f" ({self.short})" if self.short != "total" else "")

    @property
    def reached(self) -> bool:
        return self.seconds is not None

    @property
    def within_budget(self) -> bool:
        return self.seconds is not None and self.seconds < self.budget_s

    @property
    def over_budget(self) -> bool:
        return self.seconds is not None and self.seconds >= self.budget_s

    def runbook_minutes(self, seconds: float) -> float:
        return runbook_minutes(seconds, self.time_scale)

    def figure(self) -> str:
        """'1.21s (1.0 runbook min)', or a dash when it was not reached."""
        if self.seconds is None:
            return "—"
        return f"{self.seconds:.2f}s ({self.runbook_minutes(self.seconds):.1f} runbook min)"

    def budget(self) -> str:
        return f"{self.budget_s:.2f}s ({self.runbook_minutes(self.budget_s):.1f} runbook min)"

    def over_budget_sentence(self) -> str:
        """'time to detect 7.2s (6.0 runbook minutes) exceeded its budget of 6.0s (5 runbook minutes): the slow
        phase was detect' (empty when within budget or not reached)."""
        if not self.over_budget:
            return ""
        assert self.seconds is not None
        return (f"{self.name} {self.seconds:.1f}s ({self.runbook_minutes(self.seconds):.1f} runbook minutes) exceeded "
                f"its budget of {self.budget_s:.1f}s ({self.runbook_minutes(self.budget_s):.0f} runbook minutes): "
                f"the slow phase was {self.slow_phase}")
