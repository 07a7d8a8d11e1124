"""Users' traffic: the embedded staging sends itself the searches a real target's users would send.

:class:`~.users_traffic.UsersTraffic` is the knob (``StagingConfig.users``, ``PUT /__staging/users``,
``--users-rate``). :class:`UsersGenerator` is the sender: :meth:`UsersGenerator.run` is an asyncio task
in the server's event loop (started and stopped with the server, ``server.py``). Arrivals are open-loop,
with exponential gaps (Poisson, mean ``1 / rate``) drawn from a seeded :class:`UsersPlan`, so the same
seed gives the same sequence of requests. Each arrival is one GET sent in-process through the staging's
own ASGI app, its own task (never waiting for an earlier answer), so it passes the same routes,
faults, edge cache, Analytics Engine points and tail events as an outside request.

The users' requests carry ``scope[AUDIENCE_KEY] == USERS_AUDIENCE``, set by :class:`UsersAudience`
around the generator's transport: no outside client can set an ASGI scope key. For them the fault
resolver composes the users' own ``fault`` with the active faults, or uses it alone when the users
are ``exempt`` (bookstrack/faults.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from faker import Faker
from starlette.types import ASGIApp, Receive, Scope, Send

from .base import StagingConfig
from .bookstrack.catalogue import Catalogue
from .users_traffic import UsersTraffic as UsersTraffic  # also imported from here (the suites' plugin)

MAX_IN_FLIGHT = 200  # an arrival beyond this many unanswered requests is skipped (and counted)
REQUEST_TIMEOUT_S = 10.0
MAX_BACKLOG_S = 1.0  # a stalled event loop catches up at most this much of the schedule
POPULAR_BOOKS = 10  # books whose title and ISBN are the popular searches
USERS_NETWORK = "203.0.113."  # TEST-NET-3 (RFC 5737): the users' cf-connecting-ip addresses
USERS_BASE_URL = "http://users.bookstrack.test"
AUDIENCE_KEY = "bookstrack.audience"
USERS_AUDIENCE = "users"
TITLE_PATH = "/v1/search/title"
ISBN_PATH = "/v1/search/isbn"


def is_users_request(scope: Scope) -> bool:
    """True for a request the staging's users sent (marked by :class:`UsersAudience`)."""
    return scope.get(AUDIENCE_KEY) == USERS_AUDIENCE


class UsersAudience:
    """An ASGI wrapper that marks every request through it as the users' (``scope[AUDIENCE_KEY]``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, AUDIENCE_KEY: USERS_AUDIENCE}, receive, send)


@dataclass(frozen=True)
class UsersRequest:
    """One user's search: path, query parameters and the user's address."""

    path: str
    params: dict[str, str]
    client_ip: str


class UsersPlan:
    """The seeded sequence of the users' arrivals: gaps, searches and addresses.

    The same seed and catalogue give the same sequence; the popular searches are the titles and
    ISBNs of ``POPULAR_BOOKS`` books of the catalogue, fresh ones come from Faker.
    """

    def __init__(self, seed: int, catalogue: Catalogue) -> None:
        self.seed = seed
        self.catalogue = catalogue
        self._rng = random.Random(seed)
        self._fake = Faker("en_US")
        self._fake.seed_instance(self._rng.getrandbits(64))
        popular = self._rng.sample(catalogue.books, min(POPULAR_BOOKS, len(catalogue.books)))
        self.popular_titles = tuple(book.title for book in popular)
        self.popular_isbns = tuple(book.isbn13 for book in popular)
        self.warmed = False  # the popular searches were sent once (warm_up)

    def warm_up(self) -> list[UsersRequest]:
        """Each popular search once: the users who came before the staging started, so that the edge
        cache holds the popular books as on a service that has been up for a while."""
        return ([UsersRequest(TITLE_PATH, {"q": title}, f"{USERS_NETWORK}1") for title in self.popular_titles]
                + [UsersRequest(ISBN_PATH, {"isbn": isbn}, f"{USERS_NETWORK}1") for isbn in self.popular_isbns])

    def gap(self, rate: float) -> float:
        """Seconds to the next arrival: exponential with mean ``1 / rate``."""
        return self._rng.expovariate(rate)

    def next_request(self, popular_share: float) -> UsersRequest:
        by_title = self._rng.random() < 0.5
        popular = self._rng.random() < popular_share
        if by_title:
            query = self._rng.choice(self.popular_titles) if popular else self._fake.sentence()
            path, params = TITLE_PATH, {"q": query}
        else:
            isbn = self._rng.choice(self.popular_isbns) if popular else self._fake.isbn13(separator="")
            path, params = ISBN_PATH, {"isbn": isbn}
        return UsersRequest(path, params, f"{USERS_NETWORK}{self._rng.randrange(1, 255)}")


@dataclass
class UsersCounters:
    """What the users sent and got back since the staging started or was last reset."""

    sent: int = 0
    answered: dict[str, int] = field(default_factory=lambda: {"2xx": 0, "4xx": 0, "5xx": 0})
    timed_out: int = 0
    skipped: int = 0  # arrivals not sent: MAX_IN_FLIGHT requests were already unanswered

    def answer(self, status: int) -> None:
        status_class = f"{status // 100}xx"
        self.answered[status_class] = self.answered.get(status_class, 0) + 1

    @property
    def in_flight(self) -> int:
        return self.sent - sum(self.answered.values()) - self.timed_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "answered": dict(self.answered),
            "timed_out": self.timed_out,
            "skipped": self.skipped,
            "in_flight": self.in_flight,
        }


class UsersGenerator:
    """The staging's users: send their requests while :meth:`run` runs (one generator per staging).

    It reads the users' traffic (``config().users``) at every arrival and draws its searches from
    ``catalogue()``, both as they are now (the admin routes replace the config, a reset the
    catalogue). Whoever replaces the traffic calls :meth:`wake`, so a change takes effect at once;
    at rate 0 it waits for that.
    """

    def __init__(self, config: Callable[[], StagingConfig], catalogue: Callable[[], Catalogue]) -> None:
        self._config = config
        self._catalogue = catalogue
        self.counters = UsersCounters()
        self._plan: UsersPlan | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """The users' traffic was just replaced: apply it now; callable from any thread."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def forget(self) -> None:
        """A reset: the counters start from zero (the plan restarts with the new catalogue)."""
        self.counters = UsersCounters()

    async def run(self, app: ASGIApp) -> None:
        """Send the users' requests through ``app`` until cancelled, then cancel those in flight."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        transport = httpx.ASGITransport(app=UsersAudience(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=USERS_BASE_URL) as client:
            try:
                await self._arrivals(client, self._wake)
            finally:
                self._loop = None
                for task in self._in_flight:
                    task.cancel()
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _arrivals(self, client: httpx.AsyncClient, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            wake.clear()
            users = self._config().users
            if users.rate <= 0.0:
                await wake.wait()
                due = loop.time()
                continue
            plan = self._plan_for(users)
            if not plan.warmed:
                plan.warmed = True
                for request in plan.warm_up():
                    self._launch(client, request)
            due = max(due, loop.time() - MAX_BACKLOG_S) + plan.gap(users.rate)
            if await _woken_within(wake, due - loop.time()) or self._config().users is not users:
                due = loop.time()  # the traffic changed: the next gap is drawn under the new one
                continue
            self._launch(client, plan.next_request(users.popular_share))

    def _plan_for(self, users: UsersTraffic) -> UsersPlan:
        seed = users.effective_seed(self._config().seed)
        catalogue = self._catalogue()
        if self._plan is None or self._plan.seed != seed or self._plan.catalogue is not catalogue:
            self._plan = UsersPlan(seed, catalogue)
        return self._plan

    def _launch(self, client: httpx.AsyncClient, request: UsersRequest) -> None:
        counters = self.counters
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            counters.skipped += 1
            return
        counters.sent += 1
        task = asyncio.create_task(_send(client, request, counters))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)


async def _woken_within(wake: asyncio.Event, delay: float) -> bool:
    """Wait up to ``delay`` seconds for ``wake``; True when it was set. A delay of 0 still lets the
    loop run once (an arrival behind its schedule never starves the server)."""
    try:
        async with asyncio.timeout(max(delay, 0.0)):
            await wake.wait()
    except TimeoutError:
        return False
    return True


async def _send(client: httpx.AsyncClient, request: UsersRequest, counters: UsersCounters) -> None:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            response = await client.get(request.path, params=request.params,
                                        headers={"cf-connecting-ip": request.client_ip})
    except TimeoutError:
        counters.timed_out += 1
        return
    counters.answer(response.status_code)
