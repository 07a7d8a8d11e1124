"""Live request logs (contract/cloudflare-api.md, "Tail"). Placeholder: publish() drops events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..state import Staging


class TailHub:
    def __init__(self, staging: "Staging") -> None:
        self._staging = staging

    def publish(self, event: dict[str, Any]) -> None:
        """Offer one tail event (the trace-v1 JSON object) to every open tail whose filters match."""

    def close_all(self) -> None:
        """Close every open tail socket (reset, shutdown)."""
