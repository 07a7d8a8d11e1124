"""The drill's journal and its listeners (in the manner of chaostoolkit-lib's ``RunEventHandler``).

The runner only runs phases; it says what happens to the :class:`Journal`, which records it in the
drill record and tells every :class:`DrillListener`. Listeners (the record store, the notifier, the
post-mortem writer, the Allure writer, the terminal's progress line) subscribe; the runner does not know
them. Every hook has a no-op default, so a listener overrides only what it needs.

``Journal.phase(name)`` closes its phase in ``finally``, whatever happens inside: "ok" (or what the phase
set), "error" with the exception's text, or "interrupted" on Ctrl-C or cancellation; with its end time;
and tells the listeners, so the record store saves the record after every phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .record import DrillRecord, PhaseRecord

if TYPE_CHECKING:
    from ..comms import IncidentFacts, RecoveryFacts
    from ..triage.decision import Decision

RUNNING, OK, ERROR_OUTCOME, INTERRUPTED_OUTCOME = "running", "ok", "error", "interrupted"


class DrillListener:
    """What a drill tells those who listen; every hook does nothing unless overridden."""

    async def drill_started(self, record: DrillRecord) -> None:
        return None

    async def phase_started(self, record: DrillRecord, phase: PhaseRecord) -> None:
        return None

    async def phase_ended(self, record: DrillRecord, phase: PhaseRecord) -> None:
        return None

    async def said(self, record: DrillRecord, text: str) -> None:
        """A line of progress within a phase."""
        return None

    async def detected(self, record: DrillRecord, facts: "IncidentFacts") -> None:
        return None

    async def decided(self, record: DrillRecord, facts: "IncidentFacts", decision: "Decision") -> None:
        return None

    async def rollback_started(self, record: DrillRecord, facts: "IncidentFacts") -> None:
        return None

    async def rollback_serving(self, record: DrillRecord, facts: "IncidentFacts") -> None:
        return None

    async def verified(self, record: DrillRecord, facts: "IncidentFacts", recovery: "RecoveryFacts") -> None:
        return None

    async def drill_ended(self, record: DrillRecord) -> None:
        return None


class Journal:
    """The drill record, written as the drill goes, and the listeners told of each step."""

    def __init__(self, record: DrillRecord, listeners: Sequence[DrillListener], clock: Callable[[], float]) -> None:
        self.record, self.listeners, self.clock = record, list(listeners), clock

    async def tell(self, hook: str, *args: object) -> None:
        """Call ``hook`` on every listener, in order."""
        for listener in self.listeners:
            await getattr(listener, hook)(self.record, *args)

    async def say(self, text: str) -> None:
        await self.tell("said", text)

    @asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[PhaseRecord]:
        """One phase of the drill: begun now, ended in ``finally`` with its outcome, and told."""
        phase = PhaseRecord(name, self.clock())
        self.record.phases.append(phase)
        try:
            await self.tell("phase_started", phase)
            yield phase
            if phase.outcome == RUNNING:
                phase.outcome = OK
        except (asyncio.CancelledError, KeyboardInterrupt):
            phase.outcome, phase.detail = INTERRUPTED_OUTCOME, phase.detail or "interrupted (Ctrl-C or cancelled)"
            raise
        except BaseException as exc:
            if phase.outcome == RUNNING:
                phase.outcome = ERROR_OUTCOME
                phase.detail = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            phase.ended_at = self.clock()
            await asyncio.shield(self.tell("phase_ended", phase))

    def mark(self, name: str, at: float | None = None) -> None:
        """A moment of the drill (fault live, detected, serving, verified...), the first one kept."""
        self.record.markers.setdefault(name, self.clock() if at is None else at)
