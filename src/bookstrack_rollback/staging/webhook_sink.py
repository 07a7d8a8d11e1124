"""The webhook sink of the embedded staging: where a drill's Slack messages and status page updates go
(ROLLBACK_PROCEDURE.md, "Communication Procedures"), kept so that a test can read them back.

State only, no HTTP (the routes are in :mod:`.admin`, under ``/__staging/webhooks``). Messages are kept
in arrival order with a sequence number and the staging clock's time; ``fail_next(channel, n)`` makes
the next ``n`` posts to a channel fail (the route answers 503), to exercise a poster's retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Clock

MAX_BODY_BYTES = 256 * 1024
MAX_KEPT = 10_000  # the oldest messages are forgotten beyond this


@dataclass(frozen=True)
class WebhookMessage:
    seq: int
    channel: str
    received_at: float  # epoch seconds, staging clock
    body: Any  # the posted JSON

    def as_json(self, clock: Clock) -> dict[str, Any]:
        return {"seq": self.seq, "channel": self.channel, "received_at": clock.iso(self.received_at),
                "body": self.body}


@dataclass
class WebhookSink:
    """The messages posted to each channel since the last reset, and the failures still to inject."""

    messages: list[WebhookMessage] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # channel -> posts still to fail
    _seq: int = 0

    def fail_next(self, channel: str, count: int) -> None:
        """The next ``count`` posts to ``channel`` fail (0 clears)."""
        if count:
            self.failures[channel] = count
        else:
            self.failures.pop(channel, None)

    def take_failure(self, channel: str) -> int | None:
        """If a failure is pending for ``channel``, use it up and return how many remain."""
        left = self.failures.get(channel, 0)
        if not left:
            return None
        self.fail_next(channel, left - 1)
        return left - 1

    def receive(self, channel: str, body: Any, at: float) -> WebhookMessage:
        self._seq += 1
        message = WebhookMessage(self._seq, channel, at, body)
        self.messages.append(message)
        if len(self.messages) > MAX_KEPT:
            del self.messages[: len(self.messages) - MAX_KEPT]
        return message

    def of(self, channel: str | None = None) -> list[WebhookMessage]:
        return [m for m in self.messages if channel is None or m.channel == channel]
