"""Batch enrichment jobs and their progress socket (contract/bookstrack-api.md, "POST
/v1/enrichment/batch" and "WebSocket /ws/progress").

``POST /v1/enrichment/batch`` issues a token valid for 2 hours for that jobId only and starts the
job (an asyncio task on the server's loop). The job waits a little for the client's ``ready`` (as
production's ``waitForReady``), then enriches book after book, each step taking a latency drawn
from the staging's random source, and reports ``job_progress`` messages, then ``job_complete``
(close 1000 "Job completed") or ``error`` (close 1011 "Job failed"). A message sent while no client
is connected is lost: progress is never replayed. Job state lives here; the socket lives in
``progress.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...faults import Latency
from ..base import Clock, SeededRandom
from ..cloudflare.kv import KVStore
from .faults import ActiveFaults, draw_latency_ms

PIPELINE = "batch_enrichment"
MESSAGE_VERSION = "1.0.0"
TOKEN_LIFETIME_S = 2 * 60 * 60
STEP_LATENCY = Latency(p50_ms=25.0, p95_ms=80.0)
JOB_BUDGET_MS = 600.0  # the whole job stays well under a second
RESULTS_PREFIX = "enrichment-results:"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BatchBook:
    title: str
    author: str | None = None
    isbn: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """One thing to send on the socket: a message, or a close with code and reason."""

    message: dict[str, Any] | None = None
    close: tuple[int, str] | None = None


@dataclass
class ProgressConnection:
    """One accepted socket of a job: the job puts what to send into its outbox."""

    outbox: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)


@dataclass
class Job:
    job_id: str
    token: str
    expires_at: float
    books: tuple[BatchBook, ...]
    faults: ActiveFaults
    status: str = "pending"  # pending | running | complete | failed
    processed: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    connection: ProgressConnection | None = None
    task: asyncio.Task[None] | None = None
    sent: list[str] = field(default_factory=list)  # types of messages delivered to a client

    async def wait_done(self) -> None:
        await self.done.wait()


class JobBoard:
    """Every job by jobId; runs them, and delivers their messages to a connected client."""

    def __init__(self, rng: SeededRandom, clock: Clock, kv: KVStore, sleep: Sleep = asyncio.sleep) -> None:
        # A job still running after a reset writes into the state it began with (discarded), never
        # into the fresh one: a reset builds a new board over the new state.
        self._rng = rng
        self._clock = clock
        self._kv = kv
        self.sleep = sleep
        self.ready_timeout_s = 5.0  # production waits 5 s for the client's ready, then goes on
        self.jobs: dict[str, Job] = {}

    # --- issuing ----------------------------------------------------------------------------
    def start(self, job_id: str, books: tuple[BatchBook, ...], faults: ActiveFaults) -> Job:
        """A new token for ``job_id`` (replacing an earlier one) and a job that starts running now."""
        previous = self.jobs.get(job_id)
        if previous is not None and previous.task is not None and not previous.task.done():
            previous.task.cancel()
        job = Job(
            job_id=job_id,
            token=self._rng.uuid4(),
            expires_at=self._clock.now() + TOKEN_LIFETIME_S,
            books=books,
            faults=faults,
        )
        if previous is not None:
            job.connection = previous.connection
        self.jobs[job_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job), name=f"enrichment-job-{job_id}")
        return job

    def check_token(self, job_id: str, token: str | None) -> str | None:
        """None when the token opens the socket; else the 401 text of the contract."""
        job = self.jobs.get(job_id)
        if job is None or not token or token != job.token:
            return "Unauthorized"
        if self._clock.now() > job.expires_at:
            return "Token expired"
        return None

    def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()

    # --- messages ---------------------------------------------------------------------------
    def message(self, job: Job, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "jobId": job.job_id,
            "pipeline": PIPELINE,
            "timestamp": int(self._clock.now() * 1000),
            "version": MESSAGE_VERSION,
            "payload": {"type": kind, **payload},
        }

    def deliver(self, job: Job, item: Outgoing) -> None:
        """Hand ``item`` to the connected client, if any: nothing is kept for a later one."""
        if job.connection is None:
            return
        job.connection.outbox.put_nowait(item)
        if item.message is not None:
            job.sent.append(str(item.message["type"]))

    # --- the job ----------------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        rng = self._rng
        started = asyncio.get_running_loop().time()
        try:
            try:
                await asyncio.wait_for(job.ready.wait(), timeout=self.ready_timeout_s)
            except TimeoutError:
                pass  # production goes on without a client: its progress is simply lost
            job.status = "running"
            total = len(job.books)
            fail_at = self._failure_point(job, total)
            self.deliver(job, Outgoing(self.message(job, "job_progress", {
                "progress": 0.0, "status": f"Starting enrichment of {total} books",
                "processedCount": 0, "currentItem": job.books[0].title,
            })))
            step_cap = JOB_BUDGET_MS / max(total, 1)
            successes = 0
            for index, book in enumerate(job.books):
                await self.sleep(min(draw_latency_ms(STEP_LATENCY, rng), step_cap) / 1000.0)
                if fail_at is not None and index == fail_at:
                    raise RuntimeError(f"Enrichment provider failed while enriching {book.title!r}")
                enriched = job.faults.provider_timeout_ms("title", rng) is None
                successes += enriched
                job.processed = index + 1
                suffix = "" if enriched else " [failed]"
                self.deliver(job, Outgoing(self.message(job, "job_progress", {
                    "progress": round(job.processed / total, 4),
                    "status": f"Enriching ({job.processed}/{total}): {book.title}{suffix}",
                    "processedCount": job.processed,
                    "currentItem": book.title,
                })))
            duration = int((asyncio.get_running_loop().time() - started) * 1000.0)
            resource_id = f"{RESULTS_PREFIX}{job.job_id}"
            self._kv.put_own(resource_id, json.dumps({
                "jobId": job.job_id, "totalProcessed": total, "successCount": successes,
            }).encode())
            job.status = "complete"
            self.deliver(job, Outgoing(self.message(job, "job_complete", {
                "pipeline": PIPELINE,
                "summary": {
                    "totalProcessed": total, "successCount": successes, "failureCount": total - successes,
                    "duration": duration, "resourceId": resource_id,
                },
            })))
            self.deliver(job, Outgoing(close=(1000, "Job completed")))
        except Exception as exc:  # production: any failure of the job -> sendError
            job.status = "failed"
            self.deliver(job, Outgoing(self.message(job, "error", {
                "code": "E_BATCH_PROCESSING_FAILED", "message": str(exc), "retryable": True,
            })))
            self.deliver(job, Outgoing(close=(1011, "Job failed")))
        finally:
            job.done.set()

    def _failure_point(self, job: Job, total: int) -> int | None:
        """A job fails as often as the version that accepted it fails requests with a 5xx."""
        rng = self._rng
        profile = job.faults.profile
        if profile.error_rate <= 0.0 or rng.random() >= profile.error_rate * profile.share_5xx:
            return None
        return rng.randrange(total)
