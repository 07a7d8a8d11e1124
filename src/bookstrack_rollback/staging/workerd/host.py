"""The Worker host process (host.mjs, on Node) seen from Python: start it, send it commands, receive what
the Workers write.

One JSON line per command on its stdin, answered by id on its stdout; the other lines on stdout are
events (Analytics Engine data points, tail items) handed to ``on_event``. Every command has a timeout.
Closing stdin stops the host and every workerd it runs, so a staging that dies leaves none behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST_SCRIPT = Path(__file__).with_name("host.mjs")
REPO = Path(__file__).resolve().parents[4]
COMMAND_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 20.0


class HostError(RuntimeError):
    """The host could not be started, or a command failed: the message says which and why."""


def host_command() -> list[str]:
    """``node host.mjs``, or a HostError saying what to install."""
    node = shutil.which("node")
    if node is None:
        raise HostError("the workerd runtime needs Node.js 18 or newer on PATH (node was not found)")
    if not (REPO / "node_modules" / "miniflare" / "package.json").is_file():
        raise HostError(f"the workerd runtime needs miniflare and workerd in {REPO / 'node_modules'}: run `make clients`")
    return [node, str(HOST_SCRIPT)]


class WorkerHost:
    """A running host.mjs. ``on_event(event)`` gets each event line (a dict) on the event loop."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self._on_event = on_event
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[None] | None = None
        self.errors: deque[str] = deque(maxlen=50)  # the host's own stderr, for error sentences

    async def start(self) -> None:
        ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[0] = ready
        self._process = await asyncio.create_subprocess_exec(
            *host_command(), cwd=str(REPO), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024,
        )
        self._reader = asyncio.create_task(self._read(), name="workerd-host-stdout")
        self._stderr = asyncio.create_task(self._read_errors(), name="workerd-host-stderr")
        try:
            await asyncio.wait_for(ready, READY_TIMEOUT_S)
        except (asyncio.TimeoutError, HostError) as exc:
            await self.close()
            raise HostError(f"the Worker host did not start within {READY_TIMEOUT_S:.0f}s: "
                            f"{'; '.join(self.errors) or exc}") from None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def call(self, op: str, timeout: float = COMMAND_TIMEOUT_S, **fields: Any) -> dict[str, Any]:
        """Send one command and return its answer; HostError when it fails or times out."""
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise HostError(f"the Worker host is not running ({'; '.join(list(self.errors)[-3:]) or 'stopped'})")
        command_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = answer
        try:
            process.stdin.write(json.dumps({"id": command_id, "op": op, **fields}).encode() + b"\n")
            await process.stdin.drain()
            result = await asyncio.wait_for(answer, timeout)
        except asyncio.TimeoutError:
            raise HostError(f"the Worker host did not answer {op!r} within {timeout:.0f}s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise HostError("the Worker host stopped") from None
        finally:
            self._waiting.pop(command_id, None)
        if not result.get("ok"):
            raise HostError(str(result.get("error", "failed")))
        return result

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while line := await stdout.readline():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self.errors.append(line.decode(errors="replace").strip())
                continue
            if message.get("event") == "ready":
                self._resolve(0, {"ok": True})
            elif "event" in message:
                try:
                    self._on_event(message)
                except Exception as exc:  # a bad event must not stop the reader
                    self.errors.append(f"event {message.get('event')!r} could not be handled: {exc}")
            elif isinstance(message.get("id"), int):
                self._resolve(message["id"], message)
        for future in list(self._waiting.values()):
            if not future.done():
                future.set_exception(HostError(f"the Worker host stopped: {'; '.join(list(self.errors)[-3:])}"))

    async def _read_errors(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        while line := await self._process.stderr.readline():
            self.errors.append(line.decode(errors="replace").rstrip())

    def _resolve(self, command_id: int, message: dict[str, Any]) -> None:
        future = self._waiting.get(command_id)
        if future is not None and not future.done():
            future.set_result(message)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the host (it disposes every workerd) and wait for it; kill it past ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        for task in (self._reader, self._stderr):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 2.0)
