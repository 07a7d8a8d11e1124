"""What the signals observe, besides probe samples (``clients.bookstrack.ProbeSample``), and the one
sink protocol they write into (verify's evidence, the detector of triage and the drill), a method per
kind of observation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..clients.bookstrack import ProbeSample

# the KV key whose presence means a migration is in progress (the checklist's "No ongoing migration")
MIGRATION_KEY = "migration/in-progress"


@dataclass(frozen=True)
class WsSession:
    """One progress-socket handshake: with a made-up token (``bogus``: a healthy worker refuses it with
    401) or with a real token (a healthy worker answers 101, then ``ready_ack`` to ``ready``)."""

    at: float  # epoch seconds when it started
    ok: bool  # what a healthy worker does with this kind of token
    detail: str = ""
    status: int | None = None  # the handshake's HTTP status (101: accepted; None: no answer)
    real: bool = False  # a token issued for a job (REALITY.md: only such a token connects)


@dataclass(frozen=True)
class PendingProbe:
    """A probe sent and not yet answered: once it has waited longer than a latency threshold it is known
    to be slower than that threshold, answered or not."""

    at: float  # epoch seconds when it was sent
    endpoint: str
    label: str


@dataclass(frozen=True)
class CanaryRead:
    at: float  # epoch seconds when the answer came
    key: str
    intact: bool | None  # None: could not be read
    value: bytes | None = None  # what was read (None: missing, or not read)


class ProbeSink(Protocol):
    def probe(self, sample: ProbeSample) -> None: ...


class HandshakeSink(Protocol):
    def handshake(self, session: WsSession) -> None: ...


class CanarySink(Protocol):
    def canary(self, read: CanaryRead) -> None: ...


class Sink(ProbeSink, HandshakeSink, CanarySink, Protocol):
    """Where the live feed writes all it observes (each feed needs only its own part)."""

    def no_real_token(self, reason: str) -> None:
        """No real-token handshakes will come: the sentence says why (not allowed, rate limited)."""
