"""Real-token progress-socket sessions (contract/bookstrack-api.md, "WebSocket"; REALITY.md: only a token
issued for a job by ``POST /v1/enrichment/batch`` connects).

Where the target allows it (``request_ws_token``) each session first creates one enrichment job, the
suite's only write, within the batch endpoint's limit of 10 a minute; otherwise a token given in
``BOOKSTRACK_WS_JOB``/``BOOKSTRACK_WS_TOKEN`` is used; otherwise the socket is not tested and the check
says so.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass, field

import httpx

from ..clients import bookstrack
from ..clients.bookstrack import ProgressRun
from ..clients.errors import RateLimited, TargetError, TimedOut, Unreachable

ENV_WS_JOB, ENV_WS_TOKEN = "BOOKSTRACK_WS_JOB", "BOOKSTRACK_WS_TOKEN"
JOB_BOOKS = [{"title": "Hamlet", "author": "William Shakespeare"}]


@dataclass
class SocketSessions:
    """What the real-token sessions showed (filled in as they go)."""

    runs: list[ProgressRun] = field(default_factory=list)
    error: str | None = None  # the checker could not get a token (rate limited)
    token_failures: list[str] = field(default_factory=list)  # token requests the service failed
    token_source: str = ""  # where the tokens came from, for the sentence; "" when none could be had


async def real_token_sessions(client: httpx.AsyncClient, base_url: str, found: SocketSessions, *,
                              request_token: bool, sessions: int, attempts: int, timeout: float, seed: int) -> None:
    """Up to ``sessions`` sessions, each with a token of its own (at most ``attempts`` token requests)."""
    rng = random.Random(seed)
    if request_token:
        found.token_source = "POST /v1/enrichment/batch (request_ws_token)"
        tried = silent = 0
        while len(found.runs) < sessions and tried < attempts:
            tried += 1
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            try:
                grant = await bookstrack.request_progress_token(client, job_id, JOB_BOOKS)
            except RateLimited as exc:
                found.error = f"{exc} ({exc.what_to_do})"
                return
            except (TimedOut, Unreachable) as exc:  # nobody answers: asking again only costs time
                found.token_failures.append(str(exc))
                silent += 1
                if silent >= 2:
                    return
                continue
            except TargetError as exc:  # the service failed to issue a token: try again, within the limit
                found.token_failures.append(str(exc))
                continue
            found.runs.append(await bookstrack.run_progress_socket(base_url, grant.job_id, grant.token,
                                                                   timeout=timeout))
    elif os.environ.get(ENV_WS_JOB) and os.environ.get(ENV_WS_TOKEN):
        found.token_source = f"{ENV_WS_JOB}/{ENV_WS_TOKEN}"
        found.runs.append(await bookstrack.run_progress_socket(base_url, os.environ[ENV_WS_JOB],
                                                               os.environ[ENV_WS_TOKEN], timeout=timeout))


@dataclass(frozen=True)
class SocketToken:
    job_id: str
    token: str
    source: str  # where it came from, for sentences (never the token itself)
    issued_at: float  # monotonic seconds


TOKEN_REUSE_S = 3600.0  # a token is valid for 2 hours (contract): reused for one, never near its end
_issued: dict[str, SocketToken] = {}  # base URL -> the token this process was issued there


async def socket_token(client: httpx.AsyncClient, base_url: str, *, request_token: bool, seed: int,
                       timeout: float) -> SocketToken | str:
    """One real progress-socket token for repeated handshakes, or the sentence saying why there is none.

    A token given in the environment comes first; else, where the target allows it, one enrichment job
    is created, and its token is reused by this process for an hour (the contract's token lives 2 hours
    and may open the socket again and again): drills back to back stay within the batch endpoint's 10
    a minute."""
    if os.environ.get(ENV_WS_JOB) and os.environ.get(ENV_WS_TOKEN):
        return SocketToken(os.environ[ENV_WS_JOB], os.environ[ENV_WS_TOKEN], f"{ENV_WS_JOB}/{ENV_WS_TOKEN}",
                           time.monotonic())
    if not request_token:
        return ("no real token: the target does not allow creating an enrichment job (request_ws_token = false) "
                f"and {ENV_WS_JOB}/{ENV_WS_TOKEN} are not set")
    known = _issued.get(base_url)
    if known is not None and time.monotonic() - known.issued_at < TOKEN_REUSE_S:
        # the service at this URL may have been replaced since (a restarted staging): a 401 says so
        check = await bookstrack.run_progress_socket(base_url, known.job_id, known.token, timeout=timeout,
                                                     until="ready_ack")
        if check.handshake_status != 401:
            return known
    job_id = str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))
    try:
        grant = await bookstrack.request_progress_token(client, job_id, JOB_BOOKS)
    except TargetError as exc:
        return f"no real token: POST /v1/enrichment/batch failed ({exc})"
    _issued[base_url] = SocketToken(grant.job_id, grant.token, "POST /v1/enrichment/batch (request_ws_token)",
                                    time.monotonic())
    return _issued[base_url]
