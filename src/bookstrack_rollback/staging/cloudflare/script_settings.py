"""What a Worker has outside its versions: the script's settings (Cloudflare's ``script-settings`` and
``settings``), its workers.dev route, its cron triggers and its Durable Object migration tag.

Wrangler reads and writes these around every deploy (notes/real-clients.md, "What the embedded staging
still lacks"); none of them changes what a version's code does, and a rollback leaves them as they are.
State only, no HTTP: the answers are shaped in :mod:`.scripts_api`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

USAGE_MODEL = "standard"
WORKERS_DEV_SUBDOMAIN = "bookstrack-staging"  # the account's <subdomain>.workers.dev


@dataclass(frozen=True)
class ScriptSettings:
    created_on: str
    logpush: bool = False
    tail_consumers: tuple[dict[str, Any], ...] | None = None
    observability: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    tags: tuple[str, ...] = ()
    workers_dev: bool = True
    previews_enabled: bool = True
    schedules: tuple[dict[str, Any], ...] = ()
    migration_tag: str | None = None

    def with_changes(self, **changes: Any) -> "ScriptSettings":
        return replace(self, **changes)

    def non_versioned(self) -> dict[str, Any]:
        """The ``script-settings`` answer: logpush, tail consumers, observability, tags."""
        return {
            "logpush": self.logpush,
            "tail_consumers": None if self.tail_consumers is None else [dict(c) for c in self.tail_consumers],
            "observability": dict(self.observability),
            "tags": list(self.tags),
        }
