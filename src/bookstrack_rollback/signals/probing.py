"""The one open-loop probe schedule of verify, triage and the drill.

Probes leave at fixed slots (``start + k / rate``) whatever the target does: an open loop, so a slow
target cannot slow the probing down and hide its own latency. At most ``MAX_IN_FLIGHT`` probes wait for
answers at once; a slot that finds them all busy is skipped and counted, so a slow target or a starved
checker never builds a queue inside the checker that would inflate the latencies it measures. Each
answer is written into the sink as it arrives.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from ..clients import bookstrack
from .endpoints import Endpoint, QueryMaker, schedule
from .observations import PendingProbe, ProbeSink

MAX_IN_FLIGHT = 160


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``stop`` is set first; True when it was."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
        return True
    except TimeoutError:
        return False


class InFlight:
    """Requests sent and not yet answered, each a named task: counted, drained up to a deadline, and
    what is left then cancelled."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], name: str = "") -> None:
        task = asyncio.create_task(work, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def named(self, name: str) -> int:
        return sum(1 for task in self._tasks if task.get_name() == name)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the answers still due, then cancel the rest."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        left = list(self._tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


async def open_loop(launch: Callable[[int], None], *, every_s: float, stop: asyncio.Event | None = None,
                    keep_going: Callable[[float], bool] = lambda _offset: True,
                    tick: Callable[[float], None] = lambda _elapsed: None) -> float:
    """Call ``launch(k)`` at each slot ``start + k * every_s`` while ``keep_going(slot's offset)`` holds and
    ``stop`` is not set; returns the seconds it ran. A slot already due still yields once: a loop that has
    fallen behind must not starve the other feeds (and the answers) while it catches up."""
    loop = asyncio.get_running_loop()
    start, k = loop.time(), 0
    while stop is None or not stop.is_set():
        offset = k * every_s
        if not keep_going(offset):
            break
        delay = max(0.0, start + offset - loop.time())
        if stop is None:
            await asyncio.sleep(delay)
        elif await stopped_within(stop, delay):
            break
        launch(k)
        k += 1
        tick(loop.time() - start)
    return loop.time() - start


class ProbeLoop:
    def __init__(self, base_url: str, endpoints: tuple[Endpoint, ...], *, rate: float, seed: int, sink: ProbeSink,
                 timeout: httpx.Timeout, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        if rate <= 0:
            raise ValueError(f"a probe rate must be above 0, got {rate}")
        self.cycle = schedule(endpoints, random.Random(seed))
        self.queries = QueryMaker(seed)
        self.rate, self.sink, self.timeout = rate, sink, timeout
        self.clients = bookstrack.ProbeClients(base_url, size=max_in_flight, timeout=timeout)
        self.skipped: dict[str, int] = {}  # slots skipped per endpoint: every client was waiting
        self._in_flight = InFlight()
        self._waiting: dict[int, PendingProbe] = {}
        self._ids = itertools.count()

    def pending(self, key: str) -> int:
        """Probes of this endpoint still waiting for their answers."""
        return self._in_flight.named(key)

    def in_flight(self) -> tuple[PendingProbe, ...]:
        """Every probe still waiting for its answer, with when it was sent."""
        return tuple(self._waiting.values())

    async def _one(self, endpoint: Endpoint, client: httpx.AsyncClient, ident: int) -> None:
        path, params = self.queries.params(endpoint)
        try:
            self.sink.probe(await bookstrack.probe(client, endpoint.endpoint, path, params, label=endpoint.key))
        finally:
            self._waiting.pop(ident, None)
            self.clients.release(client)

    def _launch(self, k: int) -> None:
        endpoint = self.cycle[k % len(self.cycle)]
        if not self.clients.available():
            self.skipped[endpoint.key] = self.skipped.get(endpoint.key, 0) + 1
            return
        ident = next(self._ids)
        self._waiting[ident] = PendingProbe(time.time(), endpoint.endpoint, endpoint.key)
        self._in_flight.start(self._one(endpoint, self.clients.lease(), ident), endpoint.key)

    async def run(self, keep_going: Callable[[float], bool], *, stop: asyncio.Event | None = None,
                  tick: Callable[[float], None] = lambda _elapsed: None) -> float:
        """Send one probe per slot while ``keep_going(slot's offset in seconds)`` holds and ``stop`` is not
        set; then wait for the last answers up to the request timeout. Returns the seconds probed."""
        try:
            return await open_loop(self._launch, every_s=1.0 / self.rate, stop=stop, keep_going=keep_going, tick=tick)
        finally:
            await self._in_flight.drain((self.timeout.read or 5.0) + 1)
            await self.clients.aclose()
