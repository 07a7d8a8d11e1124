"""Preserving the logs of a failed deployment (ROLLBACK_PROCEDURE.md, "Post-Rollback Actions": ``wrangler
tail --format json > incident-logs-$(date +%Y%m%d-%H%M%S).log``) against the embedded staging on a real
socket: requests made while the tail is open land in the file as JSON lines, filters are honoured, every
way of stopping works, and the tail is deleted afterwards in every case (error and cancellation too),
without its secret URL ever being logged."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from bookstrack_rollback.clients.cloudflare import CloudflareApi, TailSession
from bookstrack_rollback.comms import TailLogsError, incident_log_name, preserve_tail_logs
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.staging import RunningStaging

DEADLINE_S = 10.0
AT = datetime(2025, 11, 15, 14, 30, 5, tzinfo=timezone.utc)
T = TypeVar("T")


class RecordingApi(CloudflareApi):
    """The real client, remembering the tail sessions it opened (to look for their secrets later)."""

    def __init__(self, *args: Any, tamper: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[TailSession] = []
        self._tamper = tamper

    async def create_tail(self, filters: list[dict[str, Any]] | None = None) -> TailSession:
        session = await super().create_tail(filters)
        self.sessions.append(session)
        if self._tamper:  # a wrong secret: the socket is refused with 403
            return TailSession(session.id, session.url + "x", session.expires_at)
        return session

    @property
    def secrets(self) -> list[str]:
        return [urlsplit(s.url).query.removeprefix("secret=") for s in self.sessions]


def api_for(live: RunningStaging, **kwargs: Any) -> RecordingApi:
    config = live.config
    return RecordingApi(live.cloudflare_api_url, account_id=config.account_id, token=Secret(config.token),
                        worker=config.worker_name, **kwargs)


def cloudflare_requests(live: RunningStaging) -> list[dict[str, Any]]:
    answer = httpx.get(f"{live.base_url}/__staging/requests", params={"api": "cloudflare"}, timeout=5,
                       trust_env=False)
    return answer.json()["requests"]


def assert_tail_deleted(live: RunningStaging, api: RecordingApi) -> None:
    assert live.staging.tails.open_tails() == []
    (session,) = api.sessions
    deletes = [r for r in cloudflare_requests(live) if r["method"] == "DELETE" and r["path"].endswith(f"/tails/{session.id}")]
    assert [r["status"] for r in deletes] == [200], deletes


async def run_while_open(tailing: Awaitable[T], ready: asyncio.Event,
                         traffic: Callable[[], Awaitable[None]]) -> T:
    """Start ``tailing``, wait (with a deadline) until its socket is open, make ``traffic``, return its result."""
    task = asyncio.ensure_future(tailing)
    opened = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({task, opened}, timeout=DEADLINE_S, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        assert opened.done(), f"the tail socket did not open within {DEADLINE_S}s"
        await traffic()
        return await asyncio.wait_for(task, DEADLINE_S)
    finally:
        opened.cancel()
        if not task.done():
            task.cancel()


def bookstrack(live: RunningStaging, *requests: tuple[str, str]) -> Callable[[], Awaitable[None]]:
    async def traffic() -> None:
        async with httpx.AsyncClient(base_url=live.base_url, trust_env=False, timeout=5) as http:
            for method, path in requests:
                await http.request(method, path)

    return traffic


def read_events(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_secret(api: RecordingApi, caplog: pytest.LogCaptureFixture, *things: object) -> None:
    assert api.secrets and all(len(secret) > 20 for secret in api.secrets)
    for secret in api.secrets:
        assert secret not in caplog.text
        for thing in things:
            assert secret not in str(thing) and secret not in repr(thing)


# --- the runbook's case ---------------------------------------------------------------------------------
def test_requests_made_while_the_tail_is_open_land_in_the_file(live: RunningStaging, tmp_path: Path, logs):
    serving = live.staging.workers.serving_deployment().versions[0][0]
    api = api_for(live)

    async def scenario() -> Path:
        ready = asyncio.Event()
        async with api:
            tailing = preserve_tail_logs(api, out_dir=tmp_path / "incident", filters=[{"scriptVersion": serving}],
                                         deadline_s=DEADLINE_S, max_events=3, ready=ready, now=lambda: AT)
            return await run_while_open(tailing, ready, bookstrack(
                live, ("GET", "/health?probe=0"), ("GET", "/health?probe=1"), ("GET", "/health?probe=2")))

    path = asyncio.run(scenario())
    assert path == tmp_path / "incident" / "incident-logs-20251115-143005.log"
    events = read_events(path)
    assert [urlsplit(e["event"]["request"]["url"]).query for e in events] == ["probe=0", "probe=1", "probe=2"]
    for event in events:
        assert event["scriptVersion"] == {"id": serving} and event["scriptName"] == live.config.worker_name
        assert event["event"]["request"]["method"] == "GET" and event["event"]["response"]["status"] == 200
        assert event["outcome"] == "ok" and isinstance(event["eventTimestamp"], int)
    assert len(path.read_text().splitlines()) == 3, "one JSON line per event"
    assert_tail_deleted(live, api)
    tail_sockets = httpx.get(f"{live.base_url}/__staging/requests", params={"api": "tail"}, timeout=5,
                             trust_env=False).json()["requests"]
    assert [(r["status"], r["query"]) for r in tail_sockets] == [(101, "secret=%5Bredacted%5D")]
    assert_no_secret(api, logs, path.read_text())


def test_filters_are_sent_with_the_tail(live: RunningStaging, tmp_path: Path):
    api = api_for(live)

    async def scenario() -> Path:
        ready = asyncio.Event()
        async with api:
            tailing = preserve_tail_logs(api, out_dir=tmp_path, filters=[{"method": ["POST"]}],
                                         deadline_s=DEADLINE_S, max_events=1, ready=ready)
            return await run_while_open(tailing, ready, bookstrack(
                live, ("GET", "/health"), ("GET", "/v1/search/title?q=hamlet"), ("POST", "/drill/marker")))

    (event,) = read_events(asyncio.run(scenario()))
    assert event["event"]["request"]["method"] == "POST" and event["event"]["response"]["status"] == 404
    assert_tail_deleted(live, api)


# --- ways of stopping ------------------------------------------------------------------------------------
def test_the_stop_event_ends_it_and_a_second_file_does_not_overwrite_the_first(live: RunningStaging,
                                                                               tmp_path: Path):
    first = tmp_path / incident_log_name(AT)
    first.write_text("kept\n")
    api = api_for(live)

    async def scenario() -> Path:
        ready, stop = asyncio.Event(), asyncio.Event()

        async def traffic() -> None:
            await bookstrack(live, ("GET", "/health"))()
            stop.set()

        async with api:
            tailing = preserve_tail_logs(api, out_dir=tmp_path, stop=stop, ready=ready, now=lambda: AT)
            return await run_while_open(tailing, ready, traffic)

    path = asyncio.run(scenario())
    assert path.name == "incident-logs-20251115-143005-2.log" and first.read_text() == "kept\n"
    assert len(read_events(path)) <= 1, "the event may or may not beat the stop; nothing else comes"
    assert_tail_deleted(live, api)


def test_the_deadline_ends_a_quiet_tail(live: RunningStaging, tmp_path: Path):
    api = api_for(live)

    async def scenario() -> Path:
        async with api:
            return await asyncio.wait_for(preserve_tail_logs(api, out_dir=tmp_path, deadline_s=0.2), DEADLINE_S)

    path = asyncio.run(scenario())
    assert path.exists() and read_events(path) == []
    assert_tail_deleted(live, api)


def test_a_tail_ended_by_the_server_keeps_what_arrived(live: RunningStaging, tmp_path: Path):
    api = api_for(live)
    config = live.config

    async def scenario() -> Path:
        ready = asyncio.Event()

        async def traffic() -> None:
            await bookstrack(live, ("GET", "/health"))()
            async with httpx.AsyncClient(trust_env=False, timeout=5,
                                         headers={"Authorization": f"Bearer {config.token}"}) as http:
                (await http.delete(f"{live.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/"
                                   f"{config.worker_name}/tails/{api.sessions[0].id}")).raise_for_status()

        async with api:
            tailing = preserve_tail_logs(api, out_dir=tmp_path, deadline_s=DEADLINE_S, ready=ready)
            return await run_while_open(tailing, ready, traffic)

    path = asyncio.run(scenario())
    assert [urlsplit(e["event"]["request"]["url"]).path for e in read_events(path)] == ["/health"]
    assert live.staging.tails.open_tails() == []
    deletes = [r for r in cloudflare_requests(live) if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [200, 404], "ours found it gone, and that is fine"


# --- the tail is deleted whatever happens -------------------------------------------------------------------
def test_cancellation_still_deletes_the_tail(live: RunningStaging, tmp_path: Path):
    api = api_for(live)

    async def scenario() -> None:
        ready = asyncio.Event()
        async with api:
            task = asyncio.ensure_future(preserve_tail_logs(api, out_dir=tmp_path, deadline_s=DEADLINE_S,
                                                            ready=ready))
            await asyncio.wait_for(ready.wait(), DEADLINE_S)
            assert len(live.staging.tails.open_tails()) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert_tail_deleted(live, api)
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("incident-logs-") and path.read_text() == ""


def test_a_refused_socket_is_a_clear_error_and_the_tail_is_deleted(live: RunningStaging, tmp_path: Path, logs):
    api = api_for(live, tamper=True)

    async def scenario() -> None:
        async with api:
            await preserve_tail_logs(api, out_dir=tmp_path, deadline_s=DEADLINE_S)

    with pytest.raises(TailLogsError) as caught:
        asyncio.run(scenario())
    tail_id = api.sessions[0].id
    assert str(caught.value) == f"the socket of tail {tail_id} was refused with HTTP 403"
    assert caught.value.__cause__ is None and caught.value.path is not None and caught.value.events == 0
    assert_tail_deleted(live, api)
    assert_no_secret(api, logs, caught.value, api.sessions[0])


def test_arguments_are_checked_before_a_tail_is_opened(live: RunningStaging, tmp_path: Path):
    api = api_for(live)

    async def attempt(**kwargs: Any) -> None:
        async with api:
            await preserve_tail_logs(api, out_dir=tmp_path, **kwargs)

    with pytest.raises(ValueError, match="needs a deadline_s or a stop event"):
        asyncio.run(attempt(max_events=5))
    with pytest.raises(ValueError, match="max_events must be a positive integer"):
        asyncio.run(attempt(deadline_s=1.0, max_events=0))
    with pytest.raises(ValueError, match="deadline_s must be non-negative finite seconds"):
        asyncio.run(attempt(deadline_s=float("inf")))
    assert api.sessions == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="naive"):
        incident_log_name(datetime(2025, 11, 15, 14, 30))
