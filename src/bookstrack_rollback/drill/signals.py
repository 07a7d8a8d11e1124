"""The drill's live signals: probes, progress-socket handshakes and canary reads, all at once, from
preflight until the drill has verified its recovery. They feed one :class:`Detector`."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import httpx

from ..clients import bookstrack
from ..clients.cloudflare import CloudflareApi
from ..clients.errors import TargetError
from ..config import Target
from ..triage.detector import Detector
from ..triage.triggers import CanaryRead, WsSession
from ..verify.collect import QueryMaker
from ..verify.plan import KNOWN_ISBN, KNOWN_TITLE, Endpoint

DRILL_ENDPOINTS = (
    Endpoint("health", "health", 1),
    Endpoint(f"title:{KNOWN_TITLE}", "title", 2, KNOWN_TITLE, known_good=True),
    Endpoint(f"isbn:{KNOWN_ISBN}", "isbn", 2, KNOWN_ISBN, known_good=True),
    Endpoint("title:<faker>", "title", 1, fresh=True),
    # known records with ever-new words: never cached, so provider trouble shows at once
    Endpoint("advanced:<known>", "advanced", 3, fresh=True, known_good=True),
)
MAX_IN_FLIGHT = 48


class SignalFeed:
    """Runs until ``stop`` is set; every observation lands in the detector's lists."""

    def __init__(self, target: Target, api: CloudflareApi, detector: Detector, *, rate: float, seed: int,
                 handshakes_per_s: float = 4.0, canary_every_s: float = 0.5, timeout_s: float = 5.0) -> None:
        assert target.base_url is not None
        self.target, self.api, self.detector = target, api, detector
        self.rate, self.seed = rate, seed
        self.handshakes_per_s, self.canary_every_s = handshakes_per_s, canary_every_s
        self.timeout = httpx.Timeout(timeout_s, connect=min(3.0, timeout_s))
        self.skipped = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._probes(stop), self._handshakes(stop), self._canaries(stop))

    async def _probes(self, stop: asyncio.Event) -> None:
        assert self.target.base_url is not None
        cycle = [e for e in DRILL_ENDPOINTS for _ in range(e.weight)]
        random.Random(self.seed).shuffle(cycle)
        queries = QueryMaker(self.seed)
        clients = bookstrack.ProbeClients(self.target.base_url, size=MAX_IN_FLIGHT, timeout=self.timeout)
        pending: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        start, k = loop.time(), 0

        async def one(endpoint: Endpoint, client: httpx.AsyncClient) -> None:
            path, params = queries.params(endpoint)
            try:
                self.detector.samples.append(
                    await bookstrack.probe(client, endpoint.endpoint, path, params, label=endpoint.key))
            finally:
                clients.release(client)

        try:
            while not stop.is_set():
                delay = start + k / self.rate - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                        break
                    except TimeoutError:
                        pass
                endpoint = cycle[k % len(cycle)]
                k += 1
                if not clients.available():
                    self.skipped += 1
                    continue
                task = asyncio.create_task(one(endpoint, clients.lease()))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending, timeout=self.timeout.read or 5.0)
        finally:
            for task in pending:
                task.cancel()
            await clients.aclose()

    async def _handshakes(self, stop: asyncio.Event) -> None:
        """A made-up token must get 401: a 500 (or no answer) means the socket endpoint is failing,
        and needs no job to be created (the batch endpoint allows only 10 a minute)."""
        assert self.target.base_url is not None
        rng = random.Random(self.seed + 7)
        while not stop.is_set():
            at = time.time()
            run = await bookstrack.run_progress_socket(
                self.target.base_url, "drill-handshake-probe", str(uuid.UUID(int=rng.getrandbits(128))),
                timeout=self.timeout.read or 5.0)
            ok = run.handshake_status == 401
            self.detector.ws.append(WsSession(at, ok, "" if ok else run.detail or f"HTTP {run.handshake_status}"))
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0 / self.handshakes_per_s)
            except TimeoutError:
                pass

    async def _canaries(self, stop: asyncio.Event) -> None:
        namespace = self.target.kv_namespace_id
        if not namespace or not self.target.canaries:
            return
        while not stop.is_set():
            for key, expected in self.target.canaries:
                try:
                    value = await self.api.kv_get(namespace, key)
                    intact: bool | None = value == expected.encode("utf-8")
                except TargetError:
                    intact = None
                # stamped when the answer came: a read sent just before the deploy but answered after it
                # shows the data after it, and must not count in the baseline before it
                self.detector.canaries.append(CanaryRead(time.time(), key, intact))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.canary_every_s)
            except TimeoutError:
                pass
