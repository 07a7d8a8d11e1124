"""The embedded staging's state and its composition root (one reset, one seeded random source, one clock).

:class:`Staging` builds every part in dependency order and hands each one only its collaborators: the
clock, the seeded random source, the configuration values it reads (or ``config()``, the configuration
in force, for the knobs the admin routes change at runtime), the stores it writes to, and callbacks
for what flows upward (the workers model reports a new deployment to the BooksTrack worker through
one). No part sees the whole :class:`Staging`; only the HTTP edge (routes, admin, app, server) does.
``reset()`` rebuilds every part from the seed, so a run can be replayed. Nothing here speaks HTTP.
"""

from __future__ import annotations

from typing import Any

from .analytics.store import AnalyticsStore
from .base import CANARY_RECORDS, RUNTIME_FAULT_KEY, Clock, RequestLog, SeededRandom, StagingConfig
from .bookstrack.faults import FaultResolver
from .bookstrack.jobs import JobBoard
from .bookstrack.models import BooksTrack
from .bookstrack.telemetry import Telemetry
from .cloudflare.envelope import ApiRateLimiter
from .cloudflare.kv import KVStore
from .cloudflare.tail import TailHub
from .cloudflare.workers import WorkersModel
from .users import UsersGenerator
from .users_traffic import UsersTraffic
from .webhook_sink import WebhookSink
from .workerd.runtime import WorkerdRuntime
from .workerd.spec import reference_bindings, reference_modules

RUNTIMES = ("python", "workerd")

# The shared names the suites and their tests import from here, besides Staging (defined in base.py).
__all__ = ["CANARY_RECORDS", "RUNTIME_FAULT_KEY", "SeededRandom", "Staging"]


class Staging:
    """The whole embedded staging's state. Built once per process; ``reset()`` restores it.

    ``config`` may be replaced at any time (the admin routes do); the parts that read a knob at
    runtime read the one in force through ``lambda: self.config``.
    """

    def __init__(self, config: StagingConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or StagingConfig()
        self.clock = clock or Clock()
        if self.config.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.config.runtime!r}")
        # workerd: the deployed versions' code answers (started by server.py in the serving loop)
        self.runtime: WorkerdRuntime | None = WorkerdRuntime(self) if self.config.runtime == "workerd" else None
        # sends only while the server runs it (server.py); outlives resets, so it asks for the
        # catalogue in force rather than holding one
        self.users = UsersGenerator(config=lambda: self.config, catalogue=lambda: self.books.catalogue)
        self.reset()

    def configure_users(self, users: UsersTraffic) -> None:
        """Replace the users' traffic (``config.users``) and apply it at once; callable from any thread."""
        self.config = self.config.with_overrides(users=users)
        self.users.wake()

    def reset(self, seed: int | None = None) -> None:
        """Forget everything: versions, deployments, KV, analytics, tails, caches, jobs, faults, the
        users' counters. The configuration (the users' traffic included) is kept."""
        if seed is not None:
            self.config = self.config.with_overrides(seed=seed)
        self._close()
        config, clock = self.config, self.clock
        # The order of construction is the order of the seeded draws: keep it.
        self.rng = rng = SeededRandom(config.seed)
        self.request_log = RequestLog()
        self.api_limiter = ApiRateLimiter(clock, config.api_rate_limit, config.api_rate_window_s)
        self.kv = KVStore(config.kv_namespace_id)
        for key, value in CANARY_RECORDS.items():
            self.kv.put_own(key, value.encode())
        self.analytics = AnalyticsStore(
            clock, (config.performance_dataset, config.cache_dataset), lambda: self.config.ingestion_lag_s
        )
        self.tails = TailHub(clock, rng)
        # looked up when called, not bound now: the BooksTrack worker is built next
        self.workers = WorkersModel(
            clock, rng, config.worker_name, on_deployment=lambda deployment: self._serving().on_deployment(deployment),
            history_code=self._reference_worker if self.runtime is not None else None,
        )
        self.books = BooksTrack(
            lambda: self.config, clock, rng,
            jobs=JobBoard(rng, clock, self.kv),
            faults=FaultResolver(clock, self.kv, self.workers),
            telemetry=Telemetry(clock, self.analytics, self.tails, performance_dataset=config.performance_dataset,
                                cache_dataset=config.cache_dataset, worker_name=config.worker_name,
                                enabled=config.telemetry),
        )
        self.webhooks = WebhookSink()
        self.users.forget()

    def _serving(self) -> BooksTrack | WorkerdRuntime:
        """What answers the BooksTrack API: the emulation, or the runtime running the versions' code."""
        return self.runtime if self.runtime is not None else self.books

    def _reference_worker(self) -> tuple[str, dict[str, bytes], list[dict[str, Any]]]:
        """The seeded history's code in workerd mode: the reference BooksTrack Worker."""
        config = self.config
        main, modules = reference_modules()
        return main, modules, reference_bindings(
            kv_namespace=config.kv_namespace_id, performance_dataset=config.performance_dataset,
            cache_dataset=config.cache_dataset, health_shape=config.health_shape, health_status=config.health_status,
        )

    def _close(self) -> None:
        """Close the parts a reset replaces (none before the first build)."""
        old_analytics = getattr(self, "analytics", None)
        if old_analytics is not None:
            old_analytics.close()
        old_books = getattr(self, "books", None)
        if old_books is not None:
            old_books.close()  # cancel running enrichment jobs
        old_tails = getattr(self, "tails", None)
        if old_tails is not None:
            old_tails.close_all()
