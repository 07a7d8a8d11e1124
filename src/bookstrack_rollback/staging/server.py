"""Serve the embedded staging on a real socket: in a thread (fixtures) or in the foreground (CLI).

uvicorn runs the ASGI app; the socket is bound by us first (port 0 picks an ephemeral port) so the
address is known before the server starts, and readiness is signalled by uvicorn's ``started``. The
staging's users (users.py) send their requests from a task in the same event loop, started with the
server and cancelled once it has stopped (:func:`serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .base import StagingConfig
from .state import Staging
from .wsshim import LenientWebSocketProtocol


class StagingStartError(RuntimeError):
    """The staging could not start: the message says where it failed."""


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by accepted connections: no Nagle delay between a response's head and body
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StagingStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(512)
    sock.setblocking(False)
    return sock


def uvicorn_config(app: object, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="h11",
        ws=LenientWebSocketProtocol,
        ws_ping_interval=None,  # the BooksTrack progress socket sends no heartbeats
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


async def serve(server: uvicorn.Server, sock: socket.socket, staging: Staging, app: ASGIApp,
                announce: Callable[[], None] = lambda: None) -> None:
    """uvicorn's ``serve`` on ``sock`` with the staging's users sending their requests to ``app``
    meanwhile; the users' task is cancelled and awaited once the server has stopped."""
    runtime = staging.runtime
    if runtime is not None:  # the serving versions run before the first request comes
        host, port = sock.getsockname()[:2]
        try:
            await runtime.start(f"{host}:{port}")
        except Exception:
            await runtime.close()
            raise
    announce()  # the serving versions run: the staging may say it serves
    users = asyncio.create_task(staging.users.run(app), name="bookstrack-users")
    try:
        await server.serve(sockets=[sock])
    finally:
        users.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await users
        if runtime is not None:
            await runtime.close()


@dataclass
class RunningStaging:
    """A staging serving on 127.0.0.1; ``stop()`` shuts it down cleanly."""

    staging: Staging
    host: str
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cloudflare_api_url(self) -> str:
        return f"{self.base_url}/client/v4"

    @property
    def config(self) -> StagingConfig:
        return self.staging.config

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> "RunningStaging":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    config: StagingConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_timeout: float = 30.0,
) -> RunningStaging:
    """Start a staging in a daemon thread and return once it accepts connections."""
    staging = Staging(config)
    staging.books.catalogue  # generate the catalogue now, not during the first search
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    app = create_app(staging)
    server = uvicorn.Server(uvicorn_config(app))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(serve(server, sock, staging, app))
        except BaseException as exc:  # reported to the starter below
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"embedded-staging-{actual_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if failure or not thread.is_alive():
            reason = f"{type(failure[0]).__name__}: {failure[0]}" if failure else "no error"
            raise StagingStartError(f"the embedded staging stopped while starting: {reason}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise StagingStartError(f"the embedded staging did not start within {ready_timeout:.0f}s")
        time.sleep(0.01)
    return RunningStaging(staging, host, actual_port, server, thread)
