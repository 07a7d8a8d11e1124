"""BooksTrack worker state. Placeholder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...faults import FaultProfile
    from ..cloudflare.workers import Deployment
    from ..state import Staging


class BooksTrack:
    def __init__(self, staging: "Staging") -> None:
        self._staging = staging

    def on_deployment(self, deployment: "Deployment") -> None:
        """Called by the workers model after every new deployment (a deploy or a rollback)."""

    def on_runtime_fault(self, profile: "FaultProfile") -> None:
        """Called by the admin routes after a runtime fault profile was set (the KV flag)."""
