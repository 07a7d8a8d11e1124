"""Live request logs: open tails and the events offered to them (contract/cloudflare-api.md, "Tail").

The BooksTrack worker calls :meth:`TailHub.publish` once per request with a trace-v1 event. Publishing
never blocks: each connected socket has a bounded queue, and when a consumer is slow the oldest
event is dropped (and counted). uvicorn serves the staging on one asyncio loop; the hub remembers that
loop when a socket subscribes, and a ``publish``/``close_all`` made from another thread (a test) is
handed to it with ``call_soon_threadsafe``, so queues are only touched on their own loop.

A tail lives until ``DELETE .../tails/{id}`` or its ``expires_at`` (wrangler 4.86 never deletes its
tail, and a socket may vanish without a close frame). At most ``MAX_OPEN_TAILS`` at once.
Tail ids are drawn from the staging's seeded random source; the secret in a tail's URL is not (a
replayable secret would be guessable), since the socket is not authenticated otherwise.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from ..base import Clock, SeededRandom
from . import errors
from .tail_filters import TailFilters

MAX_OPEN_TAILS = 10
TAIL_TTL_S = 3600.0
QUEUE_SIZE = 1000
CLOSED = None  # the sentinel a subscriber receives when its tail ends


class Subscriber:
    """One connected tail socket's queue of serialised events (``CLOSED`` ends it)."""

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, item: str | None) -> None:
        """Enqueue without blocking, dropping the oldest item when full. Call on the queue's loop."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


@dataclass
class Tail:
    id: str
    secret: str
    filters: TailFilters
    created_at: float
    expires_at: float
    rng: random.Random
    subscribers: list[Subscriber] = field(default_factory=list)


class TailHub:
    """The open tails and their sockets; tail ids are drawn from ``rng``, expiry is on ``clock``."""

    def __init__(self, clock: Clock, rng: SeededRandom) -> None:
        self._clock = clock
        self._rng = rng
        self._tails: dict[str, Tail] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- tails -------------------------------------------------------------------------------
    def create(self, filters: TailFilters) -> Tail:
        self.prune()
        if len(self._tails) >= MAX_OPEN_TAILS:
            raise errors.too_many_tails(MAX_OPEN_TAILS)
        now = self._clock.now()
        rng = self._rng
        tail = Tail(
            id=rng.hex_id(16),
            secret=secrets.token_urlsafe(24),
            filters=filters,
            created_at=now,
            expires_at=now + TAIL_TTL_S,
            rng=random.Random(rng.getrandbits(64)),
        )
        self._tails[tail.id] = tail
        return tail

    def get(self, tail_id: str) -> Tail | None:
        self.prune()
        return self._tails.get(tail_id)

    def open_tails(self) -> list[Tail]:
        self.prune()
        return list(self._tails.values())

    def delete(self, tail_id: str) -> bool:
        tail = self._tails.pop(tail_id, None)
        if tail is None:
            return False
        self._end(tail)
        return True

    def prune(self) -> None:
        """End every tail whose ``expires_at`` has passed on the staging clock."""
        now = self._clock.now()
        for tail in [t for t in self._tails.values() if t.expires_at <= now]:
            del self._tails[tail.id]
            self._end(tail)

    def close_all(self) -> None:
        """Close every open tail socket (reset, shutdown)."""
        tails = list(self._tails.values())
        self._tails.clear()
        for tail in tails:
            self._end(tail)

    # --- sockets -----------------------------------------------------------------------------
    def subscribe(self, tail: Tail) -> Subscriber:
        """A queue for one socket of ``tail``; call on the serving loop (the socket handler)."""
        self._loop = asyncio.get_running_loop()
        subscriber = Subscriber()
        tail.subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, tail: Tail, subscriber: Subscriber) -> None:
        if subscriber in tail.subscribers:
            tail.subscribers.remove(subscriber)

    @property
    def listening(self) -> bool:
        """Whether any socket is connected (a publisher may skip building events otherwise)."""
        return any(t.subscribers for t in list(self._tails.values()))

    def publish(self, event: dict[str, Any]) -> None:
        """Offer one tail event (the trace-v1 JSON object) to every open tail whose filters match."""
        if not self._tails:
            return
        self._on_loop(self._publish_now, event)

    def _publish_now(self, event: dict[str, Any]) -> None:
        self.prune()
        text: str | None = None
        for tail in list(self._tails.values()):
            if not tail.subscribers:
                continue
            if text is None:
                text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)
            if tail.filters.matches(event, text, tail.rng):
                for subscriber in list(tail.subscribers):
                    subscriber.offer(text)

    def _end(self, tail: Tail) -> None:
        subscribers = list(tail.subscribers)
        if subscribers:
            self._on_loop(lambda: [s.offer(CLOSED) for s in subscribers])

    def _on_loop(self, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action`` now if on the serving loop (or none is known), else hand it to that loop."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            action(*args)
            return
        try:
            loop.call_soon_threadsafe(action, *args)
        except RuntimeError:  # the serving loop is closed: nobody is listening any more
            pass
