"""One boundary for lower-layer errors (as httpx's ``map_httpcore_exceptions`` does).

::

    TargetError                 the suite could not get a usable answer from the target
    ├── Unreachable             refused, reset, DNS: nothing is listening, or the network is down
    ├── TimedOut                connected (or not) but no answer within the deadline
    ├── BadAnswer               an answer that is not what the contract says (not JSON, wrong shape)
    └── ApiRefused              the API answered with an error
        ├── AuthRefused         Cloudflare 10000 / 9106 (token missing, wrong, without permission)
        ├── RateLimited         429; ``retry_after`` seconds
        └── NotFound            404 (unknown route, script, version, key)

Messages name what was called, never the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx


class TargetError(Exception):
    """The suite could not get a usable answer from the target."""

    what_to_do = "check that the target is up and reachable from here, then run again"


class Unreachable(TargetError):
    what_to_do = "check the target URL and that the service is running"


class TimedOut(TargetError):
    what_to_do = "the target is slow or hung; look at its health, or raise the timeout if it is only far away"


class BadAnswer(TargetError):
    what_to_do = "the target does not speak the expected API; check the URL and the deployed version"


class ApiRefused(TargetError):
    def __init__(self, message: str, *, status: int, code: int | str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthRefused(ApiRefused):
    what_to_do = ("check CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID: the token needs Workers Scripts "
                  "Read (Edit for drills), Account Analytics Read and Workers KV Storage Read")


class RateLimited(ApiRefused):
    what_to_do = "wait for the rate limit to reset (Retry-After) and run again"

    def __init__(self, message: str, *, status: int, code: int | str | None = None, retry_after: float | None = None):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class NotFound(ApiRefused):
    what_to_do = "check the worker name, account id and ids in the configuration"


DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0, pool=3.0)


@contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Turn httpx's exceptions into :class:`TargetError` subclasses, naming ``what`` was attempted."""
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.replace("Timeout", " timeout").lower().strip()
        raise TimedOut(f"{what}: no answer in time ({kind})") from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
            httpx.CloseError, httpx.ProxyError) as exc:
        raise Unreachable(f"{what}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise Unreachable(f"{what}: unsupported URL ({exc})") from exc
    except httpx.HTTPError as exc:
        raise TargetError(f"{what}: {type(exc).__name__}: {exc}") from exc
