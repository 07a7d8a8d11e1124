"""A small closed-loop HTTP/1.1 load generator on raw asyncio sockets (keep-alive, N connections).

Python HTTP clients cost more per request than the server under test; raw sockets keep the
generator out of the measurement. Only for the project's own servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)


async def _connection(host: str, port: int, paths: list[str], stop_at: float, offset: int,
                      out: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
    i = offset
    try:
        while time.perf_counter() < stop_at:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await asyncio.wait_for(reader.readexactly(length), timeout=10)
            out.append((time.perf_counter() - started) * 1000.0)
            if not head.startswith(b"HTTP/1.1 2"):
                errors[0] += 1
    finally:
        writer.close()


async def _run(host: str, port: int, paths: list[str], seconds: float, connections: int) -> LoadResult:
    latencies: list[float] = []
    errors = [0]
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(
        _connection(host, port, paths, stop_at, k * 7, latencies, errors) for k in range(connections)
    ))
    return LoadResult(len(latencies), errors[0], time.perf_counter() - started, latencies)


def run_load(host: str, port: int, paths: list[str], *, seconds: float, connections: int) -> LoadResult:
    return asyncio.run(_run(host, port, paths, seconds, connections))


class StagingProcess:
    """The embedded staging as a separate process (so the generator does not share its GIL)."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bookstrack_rollback.staging", "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        self.base_url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if "BooksTrack base URL" in line:
                self.base_url = line.split()[-1]
                break
        if not self.base_url:
            self.stop()
            raise RuntimeError("the staging process did not print its base URL")
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> "StagingProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
