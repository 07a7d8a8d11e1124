"""Per-test deadlines from the plan, not a constant.

Each suite test gets the time its plan needs: its windows at the run's time scale, the analytics lag,
its request timeouts and some slack. pytest-timeout enforces them through a ``timeout`` marker. A
user's explicit ``--timeout``, ``-o timeout=`` or ``PYTEST_TIMEOUT`` is honoured only when it is longer
(or 0, no limit): a shorter one would kill the run before it can judge, so the plan's deadline applies
instead and the report header says so. The project's own ini ``timeout`` (for its selftests) is simply
overridden for the suite's tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ..clients.errors import DEFAULT_TIMEOUT
from ..config import SuiteSettings
from ..drill.runner import API_STEPS_S, longest_drill_s, watching_min
from ..verify.plan import SLACK_S, VerifyPlan

SUITES = ("verify", "triage", "drill")
API_CALLS_TRIAGE = 6  # serving, version, history, migration flag, versions, a clean version


@dataclass(frozen=True)
class Deadline:
    suite: str
    seconds: float
    made_of: str  # what the plan adds up to, for the header

    def describe(self) -> str:
        return f"{self.suite} {self.seconds:.0f} s ({self.made_of})"


def plan_deadlines(settings: SuiteSettings, verify: VerifyPlan, watch_on_s: float = 0.0) -> dict[str, Deadline]:
    runbook = settings.runbook
    api_s = DEFAULT_TIMEOUT.read or 10.0
    persistence = settings.seconds(runbook.checklist.not_transient_min)
    watch_on = f", {watch_on_s:.1f} s of watching on until decided" if watch_on_s else ""
    return {
        "verify": Deadline("verify", verify.deadline_s,
                           f"a {verify.window_s:.1f} s window with its top-up, {verify.analytics_lag_s:g} s analytics "
                           f"lag, request timeouts, {SLACK_S:.0f} s slack"),
        "triage": Deadline("triage", persistence + watch_on_s + API_CALLS_TRIAGE * api_s + SLACK_S,
                           f"the {persistence:.1f} s persistence window{watch_on}, {API_CALLS_TRIAGE} API calls, "
                           f"{SLACK_S:.0f} s slack"),
        "drill": Deadline("drill", longest_drill_s(settings) + SLACK_S,
                          f"{watching_min(runbook):g} runbook minutes of watching at most, {API_STEPS_S:.0f} s of API "
                          f"calls and git, {settings.timebase.cleanup_wait_s:.0f} s of cleanup, {SLACK_S:.0f} s slack; "
                          "per drill"),
    }


def explicit_timeout(config: pytest.Config) -> tuple[float, str] | None:
    """The user's own per-test timeout and where it came from (not the project's ini file)."""
    value = config.getoption("timeout", None)
    if value is not None:
        return float(value), f"--timeout={value:g}"
    for entry in reversed(config.getoption("override_ini", None) or []):
        key, _, text = entry.partition("=")
        if key.strip() == "timeout":
            try:
                return float(text), f"-o timeout={text}"
            except ValueError:
                return None  # pytest-timeout refuses it itself
    if os.environ.get("PYTEST_TIMEOUT"):
        try:
            return float(os.environ["PYTEST_TIMEOUT"]), f"PYTEST_TIMEOUT={os.environ['PYTEST_TIMEOUT']}"
        except ValueError:
            return None
    return None


def cuts_the_plan(user: tuple[float, str] | None, deadlines: dict[str, Deadline]) -> list[str]:
    """The suites whose plan the user's timeout would cut."""
    if user is None or user[0] <= 0:
        return []
    return [d.suite for d in deadlines.values() if user[0] < d.seconds]


def header_lines(deadlines: dict[str, Deadline], user: tuple[float, str] | None) -> list[str]:
    lines = ["bookstrack deadlines per test: " + "; ".join(d.describe() for d in deadlines.values())]
    cut = cuts_the_plan(user, deadlines)
    if user is not None and cut:
        lines.append(f"bookstrack WARNING: {user[1]} is shorter than the plan of {', '.join(cut)}: those tests get "
                     "their plan's deadline instead (a shorter limit would kill them before they can judge)")
    return lines


def apply(items: list[pytest.Item], deadlines: dict[str, Deadline], user: tuple[float, str] | None) -> None:
    """Give each suite test its plan's deadline, unless the user's own limit is longer (or none)."""
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue  # the test's own marker wins
        suite = next((s for s in SUITES if item.get_closest_marker(s) is not None), None)
        if suite is None:
            continue
        deadline = deadlines[suite].seconds
        if user is not None and (user[0] <= 0 or user[0] >= deadline):
            continue
        item.add_marker(pytest.mark.timeout(round(deadline, 1)))
