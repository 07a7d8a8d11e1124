"""A lean HTTP/1.1 client for the hop from the staging to a running version's workerd: kept-alive
connections per workerd, one request at a time on each, the whole answer read (BooksTrack answers are
small). httpx costs several times more per request, and this hop carries every request of a drill.

Timeouts: ``CONNECT_TIMEOUT_S`` to connect, ``ANSWER_TIMEOUT_S`` for the whole answer (then
:class:`AnswerTimeout`, which the proxy turns into Cloudflare's 524).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 100.0  # Cloudflare's edge waits 100 s for an answer (then 524)
IDLE_PER_UPSTREAM = 64
_NO_BODY = {204, 304}


class UpstreamError(ConnectionError):
    """The workerd could not be reached, or broke the answer off."""


class AnswerTimeout(TimeoutError):
    """The workerd did not answer within ANSWER_TIMEOUT_S."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]  # without hop-by-hop headers
    body: bytes


_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
               b"transfer-encoding", b"upgrade", b"content-length"}


class Upstreams:
    """Idle connections per (host, port)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def request(self, host: str, port: int, method: str, target: str,
                      headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(host, port, method, target, headers, body), ANSWER_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise AnswerTimeout(f"no answer within {ANSWER_TIMEOUT_S:.0f}s") from None

    async def _exchange(self, host: str, port: int, method: str, target: str,
                        headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        head = [f"{method} {target} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-length: {len(body)}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        payload = b"".join(head) + b"\r\n" + body
        for attempt in (0, 1):  # a kept-alive connection the workerd closed meanwhile gets one retry
            reused, (reader, writer) = await self._connection(host, port)
            try:
                writer.write(payload)
                await writer.drain()
                answer, keep = await _read_answer(reader, method)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                if reused and attempt == 0:
                    continue
                raise UpstreamError(f"{type(exc).__name__}: {exc}") from None
            if keep:
                pool = self._idle.setdefault((host, port), [])
                if len(pool) < IDLE_PER_UPSTREAM:
                    pool.append((reader, writer))
                else:
                    writer.close()
            else:
                writer.close()
            return answer
        raise UpstreamError("unreachable")  # the loop returns or raises

    async def _connection(self, host: str, port: int) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        pool = self._idle.get((host, port))
        while pool:
            reader, writer = pool.pop()
            if not writer.is_closing() and not reader.at_eof():
                return True, (reader, writer)
            writer.close()
        try:
            connection = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}") from None
        return False, connection

    def forget(self, host: str, port: int) -> None:
        for _, writer in self._idle.pop((host, port), []):
            writer.close()

    async def close(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader, method: str) -> tuple[Answer, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
    status = int(parts[1])
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    keep = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep = value.lower() != b"close"
        if name not in _HOP_BY_HOP:
            headers.append((name, value))
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        return Answer(status, headers, b""), keep
    if chunked:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Answer(status, headers, b"".join(chunks)), keep
    if length is not None:
        return Answer(status, headers, await reader.readexactly(length)), keep
    return Answer(status, headers, await reader.read()), False
