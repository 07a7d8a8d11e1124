"""The suite's settings, resolved once per test session: target, runbook, time scale, seed."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .runbook import Runbook, load_runbook
from .targets import Target, TargetOverrides, resolve_target
from .timebase import Timebase

DEFAULT_SEED = 20251115
ENV_SEED = "BOOKSTRACK_SEED"


@dataclass(frozen=True)
class SuiteSettings:
    target: Target
    runbook: Runbook
    seed: int

    @property
    def time_scale(self) -> float:
        return self.target.time_scale

    @property
    def timebase(self) -> Timebase:
        return Timebase(self.time_scale, self.seed)

    def seconds(self, runbook_minutes: float) -> float:
        """A runbook duration in seconds at this run's time scale."""
        return self.timebase.seconds(runbook_minutes)

    def rng(self, name: str) -> random.Random:
        """The run's random stream ``name``, derived from ``--seed`` (the same seed replays it)."""
        return self.timebase.rng(name)

    def stream_seed(self, name: str) -> int:
        return self.timebase.stream_seed(name)

    def header_lines(self) -> list[str]:
        five = self.seconds(5)
        return [
            f"bookstrack target: {self.target.describe()}",
            f"bookstrack time scale: {self.time_scale:g} (5 runbook minutes = {five:.1f} s); "
            f"seed: {self.seed}; runbook: {self.runbook.source}",
        ]


def resolve_suite_settings(
    *,
    target: str | None,
    overrides: TargetOverrides,
    seed: int | None,
    targets_file: str | None,
    runbook_file: str | None,
    env: Mapping[str, str] | None = None,
) -> SuiteSettings:
    env = os.environ if env is None else env
    resolved_seed = seed
    if resolved_seed is None and env.get(ENV_SEED):
        try:
            resolved_seed = int(env[ENV_SEED])
        except ValueError:
            raise ConfigError(f"environment: {ENV_SEED} must be an integer, got {env[ENV_SEED]!r}") from None
    return SuiteSettings(
        target=resolve_target(target, overrides, env=env, targets_file=targets_file),
        runbook=load_runbook(runbook_file),
        seed=DEFAULT_SEED if resolved_seed is None else resolved_seed,
    )
