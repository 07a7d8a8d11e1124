"""Posting the runbook's messages to webhooks (ROLLBACK_PROCEDURE.md, "Communication Procedures": "Slack
Channels" ``#bookstrack-alerts`` and ``#engineering``; "2. Update Status Page").

Wire shapes:

- Slack (incoming-webhook style): ``{"text": <the message>, "channel": "#bookstrack-alerts"}``;
- status page: ``{"status": "investigating" | "identified" | "monitoring" | "resolved", "title", "body"}``
  (the runbook's four states, written as Atlassian Statuspage writes them).

Every attempt has a deadline (``httpx.Timeout``: connect, read, write, pool). A 5xx answer, a refused
or reset connection and a timeout are retried at most twice, after a short backoff whose waiting goes
through an injectable ``sleep`` (so tests never sleep). A timeout is retried too, although the message
may have arrived: during an incident a duplicate notice is better than a lost one. Errors::

    WebhookError             the message was not delivered; names the channel, the kind and the attempts
    ├── WebhookRefused       the webhook answered 3xx or 4xx: not retried
    └── WebhookUnavailable   5xx, connection refused or reset, or no answer in time, on every attempt

The webhook URL is a :class:`~bookstrack_rollback.config.secret.Secret` (a Slack webhook carries its
credential in its path): it appears in no exception, log line, repr or receipt. That is why requests
go to the transport itself (``httpx.AsyncClient`` logs every request URL at INFO level), and why no
error chains an httpx exception (which holds the request, hence the URL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import httpx

from ..config.secret import Secret
from .templates import SlackMessage, StatusPageUpdate

logger = logging.getLogger(__name__)

Kind = Literal["slack", "status_page"]
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0, pool=3.0)
MAX_RETRIES = 2
DEFAULT_BACKOFF_S = (0.5, 1.0)  # before the first and the second retry
_WITHHELD = "[webhook URL withheld]"
_KIND_WORDS = {"slack": "Slack message", "status_page": "status page update"}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class WebhookReceipt:
    """A delivered message: where, what, the answer's status code, after how many attempts, when."""

    channel: str
    kind: Kind
    status_code: int
    attempts: int
    sent_at: datetime


class WebhookError(Exception):
    """A message was not delivered. The message says where and why, never the webhook URL."""

    what_to_do = "check the webhook's service and its URL in the environment, then post again"

    def __init__(self, message: str, *, channel: str, kind: Kind, attempts: int, status: int | None = None):
        super().__init__(message)
        self.channel = channel
        self.kind = kind
        self.attempts = attempts
        self.status = status


class WebhookRefused(WebhookError):
    what_to_do = "the webhook rejected the message: check the URL (revoked or mistyped?) and the payload"


class WebhookUnavailable(WebhookError):
    what_to_do = "the webhook's service is down or unreachable from here; post the message by hand"


def slack_payload(message: SlackMessage, channel: str) -> dict[str, str]:
    return {"text": message.text, "channel": channel}


def status_page_payload(update: StatusPageUpdate) -> dict[str, str]:
    return {"status": update.state.value.lower(), "title": update.title, "body": update.body}


class Webhook:
    """One webhook URL (a secret) for one channel: ``await webhook.post(message)`` → a receipt."""

    def __init__(
        self,
        url: Secret,
        *,
        channel: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = MAX_RETRIES,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        now: Callable[[], datetime] = _utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(url, Secret):
            raise TypeError("the webhook URL must be given as a Secret")
        try:
            parsed = httpx.URL(url.reveal())
        except (httpx.InvalidURL, TypeError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"the webhook URL for {channel} is not an http(s) URL ({_WITHHELD})")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise ValueError(f"retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
        backoff = tuple(float(b) for b in backoff_s)
        if not backoff or any(not math.isfinite(b) or b < 0 for b in backoff):
            raise ValueError(f"backoff_s must be non-negative finite seconds, got {backoff_s!r}")
        self.channel = channel
        self._url = url
        self._secret_parts = tuple(part for part in {url.reveal(), parsed.raw_path.decode("ascii", "replace"),
                                                     parsed.query.decode("ascii", "replace")} if len(part) > 1)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._now = now
        self._owns_transport = transport is None
        self._transport = transport or httpx.AsyncHTTPTransport(retries=0)

    def __repr__(self) -> str:
        return f"Webhook(channel={self.channel!r}, url={self._url!r})"

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> "Webhook":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _scrub(self, text: str) -> str:
        for part in sorted(self._secret_parts, key=len, reverse=True):
            text = text.replace(part, _WITHHELD)
        return text

    async def post(self, message: SlackMessage | StatusPageUpdate) -> WebhookReceipt:
        """Deliver ``message``; retry 5xx, connection errors and timeouts at most ``retries`` times."""
        kind: Kind
        if isinstance(message, SlackMessage):
            kind, payload = "slack", slack_payload(message, self.channel)
        elif isinstance(message, StatusPageUpdate):
            kind, payload = "status_page", status_page_payload(message)
        else:
            raise TypeError(f"a webhook posts a SlackMessage or a StatusPageUpdate, got {type(message).__name__}")
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        what = f"posting the {_KIND_WORDS[kind]} to {self.channel}"
        problems: list[str] = []
        last_status: int | None = None
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await self._sleep(self._backoff[min(attempt - 2, len(self._backoff) - 1)])
            status, answer, problem = await self._attempt(body)
            last_status = status or None
            if problem is None:
                if 200 <= status < 300:
                    logger.info("%s: delivered (HTTP %d, attempt %d of %d)", what, status, attempt, attempts)
                    return WebhookReceipt(self.channel, kind, status, attempt, self._now())
                if status < 500:
                    raise WebhookRefused(
                        f"{what}: the webhook refused it with HTTP {status} ({answer or 'no body'}); "
                        "not retried", channel=self.channel, kind=kind, attempts=attempt, status=status)
                problem = f"HTTP {status} ({answer or 'no body'})"
            problems.append(f"attempt {attempt}: {problem}")
            if attempt < attempts:
                logger.warning("%s: attempt %d of %d failed (%s); retrying", what, attempt, attempts, problem)
        raise WebhookUnavailable(f"{what} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
                                 + "; ".join(problems), channel=self.channel, kind=kind, attempts=attempts,
                                 status=last_status)

    async def _attempt(self, body: bytes) -> tuple[int, str, str | None]:
        """One POST: (status, the answer's first words, None) or (0, "", what went wrong)."""
        request = httpx.Request(
            "POST", self._url.reveal(), content=body,
            headers={"Content-Type": "application/json", "User-Agent": "bookstrack-rollback-suite"},
            extensions={"timeout": self._timeout.as_dict()},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            return 0, "", f"no answer in time ({type(exc).__name__})"
        except httpx.HTTPError as exc:  # refused, reset, protocol or decoding errors
            return 0, "", self._scrub(f"{type(exc).__name__}: {exc or 'connection failed'}")
        answer = self._scrub(" ".join(response.text[:120].split()))
        return response.status_code, answer, None
