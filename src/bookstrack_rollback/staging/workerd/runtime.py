"""The staging's Workers runtime: which running version answers each BooksTrack request.

Every version that may serve runs in its own workerd (host.mjs), started when it is uploaded (an upload
whose code does not start is refused, as Cloudflare refuses it, and ``startup_time_ms`` is measured)
or, for the seeded history, when first deployed. A deployment then only switches where requests go:
- the serving deployment's versions share the requests by percentage (the workers model draws);
- a version whose workerd is still starting is waited for, so the first answer after a deploy comes
  from the new code;
- every version's Durable Objects keep their data in one storage, as Cloudflare keeps one namespace per
  class: after a deployment the new version's workerd loads an object (an enrichment job) from it;
- versions neither serving nor recently used are stopped (at most ``KEEP`` run).
Data points and tail items the Workers write arrive as host events and go to the staging's Analytics
Engine store and tail hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from ..analytics.store import AnalyticsStore
from ..base import StagingConfig
from ..bookstrack.telemetry import safe_headers, safe_url
from ..cloudflare.kv import KVStore
from ..cloudflare.tail import TailHub
from ..cloudflare.workers import Deployment, Version, WorkersModel
from .forward import Upstreams
from .host import HostError, WorkerHost
from .spec import spec_key, startup_error, worker_spec


class Parts(Protocol):
    """What the runtime reads of the staging (state.Staging), looked up at each use: a reset replaces them."""

    config: StagingConfig
    workers: WorkersModel
    kv: KVStore
    analytics: AnalyticsStore
    tails: TailHub


KEEP = 6  # running versions at most: the serving ones, the rollback target, the recent uploads


@dataclass
class Instance:
    key: str
    version_id: str
    ready: asyncio.Future[str]  # the URL, once started
    startup_ms: int = 0


class WorkerdRuntime:
    """Runs the staging's Worker versions in workerd; built with the staging, started in its event loop."""

    def __init__(self, staging: Parts) -> None:
        self._staging = staging
        self._host = WorkerHost(self._on_event)
        self._instances: OrderedDict[str, Instance] = OrderedDict()
        self._keys: dict[int, tuple[Version, dict[str, Any], str]] = {}  # id(version) -> (version, spec, key)
        self._address = ""
        self._objects = ""  # the Durable Objects' storage, shared by every version
        self.upstreams = Upstreams()  # kept-alive connections to the running versions
        self.dropped_points = 0
        self._tasks: set[asyncio.Task[None]] = set()  # starts and stops in flight (held: the loop keeps weak refs)

    # --- life -------------------------------------------------------------------------------------
    async def start(self, address: str) -> None:
        """Start the host and the serving versions; ``address`` is the staging's host:port (the sinks)."""
        self._address = address
        self._objects = tempfile.mkdtemp(prefix="bookstrack-staging-objects-")
        await self._host.start()
        await self.serve_deployment(self._staging.workers.serving_deployment())

    async def close(self) -> None:
        await self.upstreams.close()
        await self._host.close()
        self._instances.clear()
        if self._objects:
            shutil.rmtree(self._objects, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        """For ``GET /__staging/info``: the versions running, and what went wrong lately."""
        return {
            "name": "workerd",
            "running_versions": [{"version_id": i.version_id, "startup_ms": i.startup_ms, "ready": i.ready.done()}
                                 for i in self._instances.values()],
            "dropped_data_points": self.dropped_points,
            "host_errors": list(self._host.errors)[-5:],
        }

    # --- versions ---------------------------------------------------------------------------------
    def _instance(self, version: Version) -> Instance:
        """The instance running ``version``, started now if it is not running (not awaited)."""
        spec, key = self._spec(version)
        instance = self._instances.get(key)
        if instance is not None and not (instance.ready.done() and instance.ready.exception() is not None):
            self._instances.move_to_end(key)
            return instance
        instance = Instance(key, version.id, asyncio.get_running_loop().create_future())
        self._instances[key] = instance
        self._background(self._start(instance, spec), f"workerd-start-{version.id}")
        return instance

    def _background(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spec(self, version: Version) -> tuple[dict[str, Any], str]:
        """The version's spec and instance key, built once per version (not per request)."""
        known = self._keys.get(id(version))
        if known is not None and known[0] is version:
            return known[1], known[2]
        spec = worker_spec(version, staging_address=self._address, objects_dir=self._objects,
                           kv_exists=self._staging.kv.has_namespace)
        key = spec_key(version, spec)
        if len(self._keys) > 1000:
            self._keys.clear()
        self._keys[id(version)] = (version, spec, key)
        return spec, key

    async def _start(self, instance: Instance, spec: dict[str, Any]) -> None:
        try:
            answer = await self._host.call("start", key=instance.key, worker=spec)
        except HostError as exc:
            instance.ready.set_exception(exc)
            instance.ready.exception()  # retrieved: an unused failure is not an asyncio warning
            self._instances.pop(instance.key, None)
            return
        instance.startup_ms = int(answer.get("startup_ms", 0))
        instance.ready.set_result(str(answer["url"]))

    async def prepare(self, version: Version) -> int:
        """Start an uploaded version: its startup time in ms, or CloudflareError 10021 if it cannot run."""
        instance = self._instance(version)
        try:
            await asyncio.shield(instance.ready)
        except HostError as exc:
            raise startup_error(str(exc)) from None
        self._evict()
        return instance.startup_ms

    async def serve_deployment(self, deployment: Deployment) -> None:
        """Start every version of ``deployment`` and wait for them (the staging's start)."""
        for version_id, _ in deployment.versions:
            workers = self._staging.workers
            version = workers.get_version(version_id)
            if version is not None:
                instance = self._instance(version)
                await asyncio.shield(instance.ready)
                if not version.startup_time_ms:
                    workers.started(version.id, instance.startup_ms)

    def on_deployment(self, deployment: Deployment) -> None:
        """The workers model made a deployment: start its versions now, stop what is no longer needed."""
        for version_id, _ in deployment.versions:
            version = self._staging.workers.get_version(version_id)
            if version is not None:
                self._instance(version)
        self._evict()

    def _evict(self) -> None:
        """Stop the least recently used versions beyond KEEP, never one of the two newest deployments."""
        workers = self._staging.workers
        needed = {v for deployment in workers.deployments[:2] for v, _ in deployment.versions}
        for key in list(self._instances):
            if len(self._instances) <= KEEP:
                break
            instance = self._instances[key]
            if instance.version_id in needed or not instance.ready.done():
                continue
            del self._instances[key]
            self._background(self._stop(key), f"workerd-stop-{key}")

    async def _stop(self, key: str) -> None:
        with contextlib.suppress(HostError):
            await self._host.call("stop", key=key)

    # --- requests ---------------------------------------------------------------------------------
    async def target(self) -> tuple[str, str]:
        """(instance key, base URL) of the running version that answers the next request."""
        version = self._staging.workers.version_for_request()
        instance = self._instance(version)
        return instance.key, await asyncio.shield(instance.ready)

    def forget(self, key: str) -> None:
        """An instance stopped answering: start it again on the next request."""
        instance = self._instances.pop(key, None)
        if instance is not None:
            if instance.ready.done() and instance.ready.exception() is None:
                address, _, port = instance.ready.result()[len("http://"):].rpartition(":")
                self.upstreams.forget(address, int(port))
            self._background(self._stop(key), f"workerd-stop-{key}")

    # --- what the Workers write ---------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "analytics":
            self._write_points(event.get("points") or [])
        elif kind == "tail":
            self._publish_tail(str(event.get("key", "")), event.get("items") or [])

    def _write_points(self, points: list[dict[str, Any]]) -> None:
        staging = self._staging
        if not staging.config.telemetry:
            return
        for point in points:
            try:
                staging.analytics.write(
                    str(point.get("dataset")), index1=str(point.get("index1", "")),
                    blobs=[str(b) for b in point.get("blobs") or []],
                    doubles=[float(d) for d in point.get("doubles") or []],
                    at=float(point["at"]) if isinstance(point.get("at"), (int, float)) else None,
                )
            except (TypeError, ValueError):
                self.dropped_points += 1

    def _publish_tail(self, key: str, items: list[dict[str, Any]]) -> None:
        staging = self._staging
        if not staging.tails.listening:
            return
        version_id = key.partition(":")[0]
        for item in items:
            event = item.get("event") or {}
            request = dict(event.get("request") or {})
            if "url" in request:
                request["url"] = safe_url(str(request["url"]))
            request["headers"] = safe_headers({str(k): str(v) for k, v in (request.get("headers") or {}).items()})
            staging.tails.publish({
                "outcome": item.get("outcome", "ok"),
                "scriptName": staging.config.worker_name,
                "eventTimestamp": item.get("eventTimestamp"),
                "scriptVersion": {"id": version_id},
                "event": {**event, "request": request},
                "logs": item.get("logs") or [],
                "exceptions": item.get("exceptions") or [],
                "diagnosticsChannelEvents": item.get("diagnosticsChannelEvents") or [],
                "truncated": bool(item.get("truncated", False)),
            })
