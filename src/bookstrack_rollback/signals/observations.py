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
    """One progress-socket handshake with a made-up token: a healthy worker refuses it with 401."""

    at: float  # epoch seconds when it started
    ok: bool  # refused with 401, as a healthy worker refuses a made-up token
    detail: str = ""
    status: int | None = None  # the handshake's HTTP status (101: accepted; None: no answer)


@dataclass(frozen=True)
class CanaryRead:
    at: float  # epoch seconds when the answer came
    key: str
    intact: bool | None  # None: could not be read


class ProbeSink(Protocol):
    def probe(self, sample: ProbeSample) -> None: ...


class HandshakeSink(Protocol):
    def handshake(self, session: WsSession) -> None: ...


class CanarySink(Protocol):
    def canary(self, read: CanaryRead) -> None: ...


class Sink(ProbeSink, HandshakeSink, CanarySink, Protocol):
    """Where the live feed writes all it observes (each feed needs only its own part)."""
