"""The feeds beside the probes: progress-socket handshakes with made-up tokens and canary reads, and the
live feed of triage and the drill that runs all three until it is stopped."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import httpx

from ..clients import bookstrack
from ..clients.cloudflare import CloudflareApi
from ..clients.errors import TargetError
from ..config import Target, Timebase
from .endpoints import DRILL_ENDPOINTS
from .observations import CanaryRead, CanarySink, HandshakeSink, PendingProbe, Sink, WsSession
from .probing import InFlight, ProbeLoop, open_loop, stopped_within
from .sessions import SocketToken, socket_token

BOGUS_JOB = "bookstrack-handshake-probe"


async def bogus_handshake(base_url: str, rng: random.Random, timeout: float) -> WsSession:
    """One handshake with a made-up token: a healthy worker refuses it with 401. It needs no job (the
    batch endpoint allows only 10 a minute); a 500 or no answer means the socket endpoint is failing,
    a 101 that it accepts any token."""
    at = time.time()
    run = await bookstrack.run_progress_socket(base_url, BOGUS_JOB, str(uuid.UUID(int=rng.getrandbits(128))),
                                               timeout=timeout)
    ok = run.handshake_status == 401
    return WsSession(at, ok, "" if ok else run.detail or f"HTTP {run.handshake_status}", run.handshake_status)


async def real_handshake(base_url: str, token: SocketToken, timeout: float) -> WsSession:
    """One handshake with a real token: a healthy worker answers 101, then ``ready_ack`` to ``ready``
    (REALITY.md: that is connectivity); the socket is closed right after."""
    at = time.time()
    run = await bookstrack.run_progress_socket(base_url, token.job_id, token.token, timeout=timeout, until="ready_ack")
    ok = run.connected
    detail = "" if ok else run.detail or (f"HTTP {run.handshake_status}" if run.handshake_status != 101
                                          else f"101 without ready_ack (got {list(run.message_types)[:3]})")
    return WsSession(at, ok, detail, run.handshake_status, real=True)


async def handshakes(base_url: str, sink: HandshakeSink, stop: asyncio.Event, *, every_s: float, seed: int,
                     timeout: float, max_in_flight: int = 64, token: SocketToken | None = None) -> None:
    """Handshakes, one every ``every_s`` seconds until ``stop``, open-loop like the probes (a slow answer
    does not delay the next one; a slot that finds ``max_in_flight`` waiting is skipped): with a made-up
    token, or with ``token``."""
    rng = random.Random(seed)
    in_flight = InFlight()

    async def one() -> None:
        if token is None:
            sink.handshake(await bogus_handshake(base_url, rng, timeout))
        else:
            sink.handshake(await real_handshake(base_url, token, timeout))

    def launch(_k: int) -> None:
        if len(in_flight) < max_in_flight:
            in_flight.start(one())

    try:
        await open_loop(launch, every_s=every_s, stop=stop)
    finally:
        await in_flight.drain(timeout + 1)


async def canaries(api: CloudflareApi, target: Target, sink: CanarySink, stop: asyncio.Event, *, every_s: float) -> None:
    """Read the target's canary records back, every ``every_s`` seconds, until ``stop``."""
    namespace = target.kv_namespace_id
    if not namespace or not target.canaries:
        return
    while not stop.is_set():
        for key, expected in target.canaries:
            value = None
            try:
                value = await api.kv_get(namespace, key)
                intact: bool | None = value == expected.encode("utf-8")
            except TargetError:
                intact = None
            # stamped when the answer came: a read sent just before a deploy but answered after it shows
            # the data after it, and must not count in the baseline before it
            sink.canary(CanaryRead(time.time(), key, intact, value))
        if await stopped_within(stop, every_s):
            return


class LiveFeed:
    """Probes, handshakes (made-up tokens and, where a real token can be had, real ones) and canary reads
    at once, until ``stop``: what triage watches and what the drill watches from its preflight until it
    has verified its recovery. Its cadences come from the run's timebase, its randomness from the named
    streams ``{stream}/probes``, ``{stream}/handshakes`` and ``{stream}/token``."""

    def __init__(self, target: Target, api: CloudflareApi, sink: Sink, *, rate: float, timebase: Timebase,
                 stream: str) -> None:
        assert target.base_url is not None
        self.target, self.api, self.sink, self.timebase, self.stream = target, api, sink, timebase, stream
        timeout = timebase.request_timeout_s
        self.probes = ProbeLoop(target.base_url, DRILL_ENDPOINTS, rate=rate, seed=timebase.stream_seed(f"{stream}/probes"),
                                sink=sink, timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)))

    @property
    def skipped(self) -> int:
        return sum(self.probes.skipped.values())

    def in_flight(self) -> tuple[PendingProbe, ...]:
        return self.probes.in_flight()

    async def _real_handshakes(self, stop: asyncio.Event) -> None:
        assert self.target.base_url is not None
        tb = self.timebase
        timeout = httpx.Timeout(tb.request_timeout_s, connect=min(3.0, tb.request_timeout_s))
        async with httpx.AsyncClient(base_url=self.target.base_url, timeout=timeout, trust_env=False) as client:
            token = await socket_token(client, self.target.base_url, request_token=self.target.request_ws_token,
                                       seed=tb.stream_seed(f"{self.stream}/token"), timeout=tb.request_timeout_s)
        if isinstance(token, str):
            self.sink.no_real_token(token)
            return
        await handshakes(self.target.base_url, self.sink, stop, every_s=tb.handshake_every_s,
                         seed=tb.stream_seed(f"{self.stream}/real-handshakes"), timeout=tb.request_timeout_s, token=token)

    async def run(self, stop: asyncio.Event) -> None:
        assert self.target.base_url is not None
        tb = self.timebase
        await asyncio.gather(
            self.probes.run(lambda _offset: True, stop=stop),
            handshakes(self.target.base_url, self.sink, stop, every_s=tb.handshake_every_s,
                       seed=tb.stream_seed(f"{self.stream}/handshakes"), timeout=tb.request_timeout_s),
            self._real_handshakes(stop),
            canaries(self.api, self.target, self.sink, stop, every_s=tb.canary_every_s))
