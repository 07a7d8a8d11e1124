"""One timebase for a run (DESIGN.md, "Time"), and the run's named random streams.

The runbook speaks in minutes; every duration of a run is those minutes times one time scale
(:meth:`Timebase.seconds`), and reports read seconds back as runbook minutes
(:meth:`Timebase.runbook_minutes`). The waits of the suite are here too, each either scaled (it stands
for a runbook duration) or fixed (it stands for the network): the look cadence of the drill's detector,
the canary reads, the request deadline, the cleanup's patience. The clock is a seam: tests move it.

Random streams are named (``probes``, ``handshakes``, ``drill/error-spike/api_rollback/probes`` ...) and
each derived from the run's ``--seed`` by a stable hash, so one seed replays every stream, and a new
stream never shifts the others.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()


def scaled(runbook_minutes: float, time_scale: float) -> float:
    """A runbook duration in seconds at ``time_scale`` (5 minutes at 0.02: 6 s)."""
    return runbook_minutes * 60.0 * time_scale


def runbook_minutes(seconds: float, time_scale: float) -> float:
    """Seconds at ``time_scale`` back as the runbook minutes they stand for."""
    return seconds / 60.0 / (time_scale or 1.0)


def stream_seed(seed: int, name: str) -> int:
    """The seed of the random stream ``name`` of a run seeded with ``seed`` (stable across processes)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Timebase:
    time_scale: float
    seed: int
    request_timeout_s: float = 5.0  # fixed: the network does not run faster at a small time scale
    clock: Clock = field(default_factory=WallClock, compare=False, repr=False)

    def seconds(self, minutes: float) -> float:
        """A runbook duration in seconds at this run's time scale (5 minutes at 0.02: 6 s)."""
        return scaled(minutes, self.time_scale)

    def runbook_minutes(self, seconds: float) -> float:
        return runbook_minutes(seconds, self.time_scale)

    @property
    def tick_s(self) -> float:
        """How often a watcher looks again: every 10 runbook seconds, between 0.2 and 5 real seconds."""
        return min(5.0, max(0.2, self.seconds(10 / 60)))

    @property
    def canary_every_s(self) -> float:
        """How often the canary records are read back: every half runbook minute."""
        return self.seconds(0.5)

    @property
    def handshake_every_s(self) -> float:
        """How often a watcher tries a made-up-token handshake: every 2.5 runbook seconds (120 in the 5-minute
        persistence window), at most 10 a second."""
        return max(0.1, self.seconds(2.5 / 60))

    @property
    def cleanup_wait_s(self) -> float:
        """How long a cleanup waits for its signal tasks: three request deadlines."""
        return 3 * self.request_timeout_s

    def now(self) -> float:
        return self.clock.now()

    def stream_seed(self, name: str) -> int:
        return stream_seed(self.seed, name)

    def rng(self, name: str) -> random.Random:
        """The random stream ``name`` of this run."""
        return random.Random(self.stream_seed(name))
