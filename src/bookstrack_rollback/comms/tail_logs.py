"""Preserve the logs of a failed deployment (ROLLBACK_PROCEDURE.md, "Post-Rollback Actions", "Immediate":
"Preserve logs from failed deployment"), i.e. what
``wrangler tail --format json > incident-logs-$(date +%Y%m%d-%H%M%S).log`` does, through the API:

1. ``POST .../tails`` with the filters (e.g. ``{"scriptVersion": <the failed version id>}`` and/or
   ``{"outcome": [...]}``) → ``{id, url, expires_at}`` (contract/cloudflare-api.md, "Tail");
2. open ``url`` with the WebSocket subprotocol ``trace-v1`` and send ``{"debug": false}`` first;
3. write each event as one JSON line to ``out_dir/incident-logs-YYYYmmdd-HHMMSS.log`` (UTC), flushed
   line by line so that an interruption keeps what arrived;
4. stop at the deadline, when ``stop`` is set, after ``max_events``, or when the tail ends (close 1000);
5. ``DELETE .../tails/{id}`` in ``finally``: after an error, on cancellation, always (at most 10 tails
   may be open at once, and an abandoned one lives until it expires).

The tail URL carries the session's secret (the socket has no other authentication): it is never
logged, printed or put in an error. The ``websockets`` library logs the request line (with the query)
at DEBUG, so its connection gets a logger of its own that redacts and stays at INFO.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    WebSocketException,
)

from ..clients.cloudflare import CloudflareApi, TailSession
from ..clients.errors import NotFound, TargetError

logger = logging.getLogger(__name__)

SUBPROTOCOL = "trace-v1"
FIRST_FRAME = json.dumps({"debug": False})
DEFAULT_OPEN_TIMEOUT_S = 10.0
MAX_EVENT_BYTES = 16 * 1024 * 1024
_SECRET_IN_URL = re.compile(r"((?:secret|token|key|sig)=)[^&\s\"']+", re.I)


class _RedactSecrets(logging.Filter):
    """Redact ``secret=...`` (and the like) from a record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_IN_URL.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_socket_logger = logging.getLogger(f"{__name__}.socket")
_socket_logger.setLevel(logging.INFO)  # websockets logs "> GET /tail/<id>?secret=..." at DEBUG
_socket_logger.addFilter(_RedactSecrets())


class TailLogsError(Exception):
    """The logs could not be (fully) preserved. ``path`` is the file written so far (or None), and
    ``events`` how many events it holds. The message never contains the tail URL."""

    def __init__(self, message: str, *, path: Path | None = None, events: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.events = events


def incident_log_name(moment: datetime) -> str:
    """``incident-logs-20251115-143005.log``: the runbook's ``$(date +%Y%m%d-%H%M%S)``, in UTC."""
    if moment.tzinfo is None:
        raise ValueError(f"an incident log name needs a time with a time zone, got the naive {moment!r}")
    return f"incident-logs-{moment.astimezone(timezone.utc):%Y%m%d-%H%M%S}.log"


def _open_new(out_dir: Path, moment: datetime) -> tuple[Path, TextIO]:
    """Create the log file; never overwrite one (a second run in the same second gets ``-2``...)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = incident_log_name(moment).removesuffix(".log")
    for suffix in ["", *(f"-{n}" for n in range(2, 100))]:
        path = out_dir / f"{base}{suffix}.log"
        try:
            return path, path.open("x", encoding="utf-8", newline="\n")
        except FileExistsError:
            continue
    raise TailLogsError(f"{out_dir} already holds 99 incident logs named {base}*.log")


def _json_line(frame: str | bytes) -> str:
    """One event as one compact JSON line; a frame that is not JSON is kept as ``{"unparsed": text}``."""
    text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
    try:
        event: Any = json.loads(text)
    except json.JSONDecodeError:
        event = {"unparsed": text}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


async def preserve_tail_logs(
    api: CloudflareApi,
    *,
    out_dir: Path,
    filters: list[dict[str, Any]] | None = None,
    stop: asyncio.Event | None = None,
    deadline_s: float | None = None,
    max_events: int | None = None,
    open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
    ready: asyncio.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> Path:
    """Tail the worker into a new ``incident-logs-*.log`` under ``out_dir``; return its path.

    Stops at ``deadline_s`` seconds after the socket opened, when ``stop`` is set, after
    ``max_events`` events, or when the tail ends; at least ``stop`` or ``deadline_s`` is required
    (traffic may never come). ``ready`` is set once the socket is open and ``{"debug": false}`` sent:
    events from then on are captured. The tail is deleted in every case.
    """
    if stop is None and deadline_s is None:
        raise ValueError("preserving tail logs needs a deadline_s or a stop event: events may never come")
    if deadline_s is not None and (not math.isfinite(deadline_s) or deadline_s < 0):
        raise ValueError(f"deadline_s must be non-negative finite seconds, got {deadline_s!r}")
    if max_events is not None and (isinstance(max_events, bool) or max_events < 1):
        raise ValueError(f"max_events must be a positive integer, got {max_events!r}")
    tail = await api.create_tail(filters or [])
    logger.info("tail %s opened for %s (filters %s); expires %s", tail.id, api.worker,
                json.dumps(filters or []), tail.expires_at or "at an unknown time")
    path: Path | None = None
    events = 0
    failed = True
    try:
        path, sink = _open_new(Path(out_dir), now())
        with sink:
            events = await _record(tail, sink, path, stop=stop, deadline_s=deadline_s, max_events=max_events,
                                   open_timeout_s=open_timeout_s, ready=ready)
        failed = False
        logger.info("tail %s: %d event(s) preserved in %s", tail.id, events, path)
        return path
    finally:
        problem = await _delete_tail(api, tail)
        if problem is not None:
            if failed:  # the error already on its way says more; this one is only logged
                logger.warning("%s", problem)
            else:
                raise TailLogsError(problem, path=path, events=events)


async def _delete_tail(api: CloudflareApi, tail: TailSession) -> str | None:
    """DELETE the tail, shielded from a second cancellation; None when done (or already gone)."""
    deletion = asyncio.ensure_future(api.delete_tail(tail.id))
    try:
        await asyncio.shield(deletion)
    except NotFound:
        return None  # it ended already (expired, or deleted by someone else)
    except TargetError as exc:
        return (f"tail {tail.id} could not be deleted ({exc}); it stays open until {tail.expires_at or 'it expires'}"
                " and counts against the limit of 10 open tails")
    except asyncio.CancelledError:
        # cancelled again while deleting: the shielded deletion still runs to its end
        deletion.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise
    logger.info("tail %s deleted", tail.id)
    return None


async def _record(
    tail: TailSession,
    sink: TextIO,
    path: Path,
    *,
    stop: asyncio.Event | None,
    deadline_s: float | None,
    max_events: int | None,
    open_timeout_s: float,
    ready: asyncio.Event | None,
) -> int:
    """Connect to the tail socket and write events until a stop condition; return how many."""
    events = 0
    try:
        async with connect(tail.url, subprotocols=[SUBPROTOCOL], proxy=None,  # type: ignore[list-item]
                           open_timeout=open_timeout_s, max_size=MAX_EVENT_BYTES, logger=_socket_logger,
                           user_agent_header="bookstrack-rollback-suite") as socket:
            await socket.send(FIRST_FRAME)
            if ready is not None:
                ready.set()
            loop = asyncio.get_running_loop()
            ends_at = None if deadline_s is None else loop.time() + deadline_s
            while max_events is None or events < max_events:
                frame = await _next_frame(socket, stop, None if ends_at is None else ends_at - loop.time())
                if frame is None:
                    break
                sink.write(_json_line(frame) + "\n")
                sink.flush()
                events += 1
    except ConnectionClosedOK:
        logger.info("tail %s ended on the server's side after %d event(s)", tail.id, events)
    except ConnectionClosedError as exc:
        raise TailLogsError(f"the socket of tail {tail.id} closed abnormally ({exc}) after {events} event(s); "
                            f"what arrived is in {path}", path=path, events=events) from None
    except InvalidStatus as exc:
        raise TailLogsError(f"the socket of tail {tail.id} was refused with HTTP {exc.response.status_code}",
                            path=path) from None
    except (WebSocketException, OSError, TimeoutError) as exc:
        # no chaining: a websockets exception may hold the URL (InvalidURI does, in its message)
        detail = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            detail = f"{detail}: {exc.strerror}"
        raise TailLogsError(f"could not open the socket of tail {tail.id} ({detail})", path=path) from None
    return events


async def _next_frame(socket: ClientConnection, stop: asyncio.Event | None,
                      remaining_s: float | None) -> str | bytes | None:
    """The next frame, or None at the deadline or when ``stop`` is set (cancelling ``recv()`` loses
    nothing: websockets documents it as cancellation-safe)."""
    if (remaining_s is not None and remaining_s <= 0) or (stop is not None and stop.is_set()):
        return None
    receiving = asyncio.ensure_future(socket.recv())
    waiting = {receiving}
    stopping = None
    if stop is not None:
        stopping = asyncio.ensure_future(stop.wait())
        waiting.add(stopping)
    try:
        done, _ = await asyncio.wait(waiting, timeout=remaining_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
    if receiving in done:
        return receiving.result()  # raises ConnectionClosed when the tail ended
    return None
