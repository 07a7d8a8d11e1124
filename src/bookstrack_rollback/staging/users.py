"""Users' traffic: the embedded staging sends itself the searches a real target's users would send.

:class:`UsersTraffic` is the knob (``StagingConfig.users``, ``PUT /__staging/users``, ``--users-rate``).
:class:`UsersGenerator` is the sender: :meth:`UsersGenerator.run` is an asyncio task in the server's
event loop (started and stopped with the server, ``server.py``). Arrivals are open-loop, with
exponential gaps (Poisson, mean ``1 / rate``) drawn from a seeded :class:`UsersPlan`, so the same seed
gives the same sequence of requests. Each arrival is one GET sent in-process through the staging's
own ASGI app, its own task (never waiting for an earlier answer), so it passes the same routes,
faults, edge cache, Analytics Engine points and tail events as an outside request.

The users' requests carry ``scope[AUDIENCE_KEY] == USERS_AUDIENCE``, set by :class:`UsersAudience`
around the generator's transport: no outside client can set an ASGI scope key. For them the fault
resolver composes the users' own ``fault`` with the active faults, or uses it alone when the users
are ``exempt`` (bookstrack/faults.py).
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from faker import Faker
from starlette.types import ASGIApp, Receive, Scope, Send

from ..faults import FaultProfile, FaultProfileError, profile_from_dict

if TYPE_CHECKING:
    from .bookstrack.catalogue import Catalogue
    from .state import Staging

MAX_RATE = 500.0  # requests per second
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


class UsersTrafficError(ValueError):
    """A users' traffic configuration that cannot be used; the message names the field and value."""


@dataclass(frozen=True)
class UsersTraffic:
    """How the staging's users behave: how often they search, what for, and which faults they see.

    ``popular_share`` of their searches ask one of a few fixed popular queries (cache hits after the
    first), the rest fresh queries (always cache misses). ``fault`` applies to their requests only,
    composed with the active faults; ``exempt`` users see only their own ``fault``, not the deployed
    ``FAULT_PROFILE`` nor the runtime flag. ``seed`` None: derived from the staging's seed.
    """

    rate: float = 0.0
    popular_share: float = 0.8
    fault: FaultProfile = FaultProfile()
    exempt: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= MAX_RATE:
            raise UsersTrafficError(f"rate must be from 0 to {MAX_RATE:g} requests per second, got {self.rate!r}")
        if not 0.0 <= self.popular_share <= 1.0:
            raise UsersTrafficError(f"popular_share must be a number from 0 to 1, got {self.popular_share!r}")
        if self.fault.data_loss:
            raise UsersTrafficError(
                f"fault.data_loss cannot apply to users only (it deletes KV keys for everyone), "
                f"got {list(self.fault.data_loss)!r}"
            )
        if self.fault.duration_s is not None:
            raise UsersTrafficError(
                f"fault.duration_s is not supported for the users' fault (replace it with PUT "
                f"/__staging/users instead), got {self.fault.duration_s!r}"
            )

    def effective_seed(self, staging_seed: int) -> int:
        """``seed``, or one derived from the staging's seed (not its random stream)."""
        if self.seed is not None:
            return self.seed
        return random.Random(f"bookstrack-users/{staging_seed}").getrandbits(32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": float(self.rate),
            "popular_share": float(self.popular_share),
            "fault": self.fault.to_dict(),
            "exempt": self.exempt,
            "seed": self.seed,
        }


def _number(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsersTrafficError(f"{name} must be a number, got {value!r}")
    return float(value)


def users_from_dict(data: Any) -> UsersTraffic:
    """Parse a users' traffic JSON object; missing fields take their defaults."""
    if not isinstance(data, dict):
        raise UsersTrafficError(f"the users' traffic must be a JSON object, got {type(data).__name__}")
    known = set(UsersTraffic.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsersTrafficError(f"unknown users' traffic field(s) {unknown}; known: {sorted(known)}")
    exempt = data.get("exempt", False)
    if not isinstance(exempt, bool):
        raise UsersTrafficError(f"exempt must be true or false, got {exempt!r}")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsersTrafficError(f"seed must be an integer or null, got {seed!r}")
    try:
        fault = profile_from_dict(data.get("fault", {}))
    except FaultProfileError as exc:
        raise UsersTrafficError(f"fault: {exc}") from exc
    return UsersTraffic(
        rate=_number(data, "rate", 0.0),
        popular_share=_number(data, "popular_share", 0.8),
        fault=fault,
        exempt=exempt,
        seed=seed,
    )


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

    def __init__(self, seed: int, catalogue: "Catalogue") -> None:
        self.seed = seed
        self.catalogue = catalogue
        self._rng = random.Random(seed)
        self._fake = Faker("en_US")
        self._fake.seed_instance(self._rng.getrandbits(64))
        popular = self._rng.sample(catalogue.books, min(POPULAR_BOOKS, len(catalogue.books)))
        self.popular_titles = tuple(book.title for book in popular)
        self.popular_isbns = tuple(book.isbn13 for book in popular)

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

    It reads ``staging.config.users`` at every arrival; :meth:`configure` replaces it and wakes the
    generator, so a change takes effect at once. At rate 0 it waits on an event.
    """

    def __init__(self, staging: "Staging") -> None:
        self._staging = staging
        self.counters = UsersCounters()
        self._plan: UsersPlan | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def configure(self, users: UsersTraffic) -> None:
        """Replace the users' traffic (``staging.config.users``); callable from any thread."""
        self._staging.config = self._staging.config.with_overrides(users=users)
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
            users = self._staging.config.users
            if users.rate <= 0.0:
                await wake.wait()
                due = loop.time()
                continue
            plan = self._plan_for(users)
            due = max(due, loop.time() - MAX_BACKLOG_S) + plan.gap(users.rate)
            if await _woken_within(wake, due - loop.time()) or self._staging.config.users is not users:
                due = loop.time()  # the traffic changed: the next gap is drawn under the new one
                continue
            self._launch(client, plan.next_request(users.popular_share))

    def _plan_for(self, users: UsersTraffic) -> UsersPlan:
        seed = users.effective_seed(self._staging.config.seed)
        catalogue = self._staging.books.catalogue
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
