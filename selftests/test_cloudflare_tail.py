"""Tails: create/list/delete over HTTP, the trace-v1 socket (in-process and over a real socket with
the ``websockets`` library), filters, expiry, and publishing that never blocks (contract/cloudflare-api.md,
"Tail"; notes/real-clients.md, "tail")."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from bookstrack_rollback.staging import ManualClock, RunningStaging, Staging
from bookstrack_rollback.staging.cloudflare.tail import MAX_OPEN_TAILS, TAIL_TTL_S, Subscriber
from bookstrack_rollback.staging.cloudflare.tail_filters import TailFilters, parse_filters

DEADLINE_S = 10.0


def tails_url(staging: Staging) -> str:
    return (f"/client/v4/accounts/{staging.config.account_id}/workers/scripts/"
            f"{staging.config.worker_name}/tails")


def assert_error(response, status: int, code: int, *, contains: str = "") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["errors"][0]["code"] == code, body
    assert contains in body["errors"][0]["message"], body["errors"][0]["message"]
    return body["errors"][0]["message"]


def event(marker: str, *, outcome: str = "ok", method: str = "GET", version: str | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A trace-v1 event shaped as the contract's Tail section shows it."""
    body: dict[str, Any] = {
        "outcome": outcome,
        "scriptName": "api-worker-staging",
        "eventTimestamp": 1764410000123,
        "event": {
            "request": {"url": f"https://api.example/v1/search/title?q={marker}", "method": method,
                        "headers": headers or {"cf-connecting-ip": "203.0.113.9"}, "cf": {"colo": "SJC"}},
            "response": {"status": 500 if outcome == "exception" else 200},
        },
        "logs": [{"message": [f"log {marker}"], "level": "log", "timestamp": 1764410000120}],
        "exceptions": [],
    }
    if version is not None:
        body["scriptVersion"] = {"id": version}
    return body


# --- HTTP ------------------------------------------------------------------------------------------
def test_create_parses_a_text_plain_body_as_wrangler_sends_it(client: TestClient, staging: Staging, cf_headers):
    body = json.dumps({"filters": [{"outcome": ["exception", "exceededCpu", "exceededMemory", "unknown"]},
                                   {"method": ["GET"]}, {"client_ip": ["self"]}]})
    response = client.post(tails_url(staging), headers={**cf_headers, "Content-Type": "text/plain;charset=UTF-8"},
                           content=body)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    url = urlsplit(result["url"])
    assert (url.scheme, url.netloc, url.path) == ("ws", "staging.test", f"/tail/{result['id']}")
    assert url.query.startswith("secret=") and len(url.query) > 30
    assert result["expires_at"] == staging.clock.iso(staging.clock.now() + TAIL_TTL_S)
    (tail,) = staging.tails.open_tails()
    assert tail.filters.outcomes == {"exception", "exceededCpu", "exceededMemory", "unknown"}
    assert tail.filters.client_ips == {"testclient"}, "'self' is the address of whoever created the tail"


def test_create_accepts_the_sdks_empty_json_body(client: TestClient, staging: Staging, cf_headers):
    response = client.post(tails_url(staging), headers={**cf_headers, "Content-Type": "application/json"})
    assert response.status_code == 200 and staging.tails.open_tails()[0].filters == TailFilters()


@pytest.mark.parametrize(
    ("body", "code", "expected"),
    [
        (b"{nope", 10240, "not valid JSON"),
        (b"[]", 10240, "must be a JSON object"),
        (b'{"filters": {"outcome": ["ok"]}}', 10239, "must be a list"),
        (b'{"filters": [{"colour": ["red"]}]}', 10239, "unknown filter 'colour'"),
        (b'{"filters": [{"outcome": []}]}', 10239, "non-empty list"),
        (b'{"filters": [{"sampling_rate": 1.5}]}', 10239, "from 0 to 1"),
        (b'{"filters": [{"method": ["GET"]}, {"method": ["POST"]}]}', 10239, "given twice"),
        (b'{"filters": [{"header": {"query": "x"}}]}', 10239, "header must be"),
        (b'{"filters": [{"outcome": ["ok"], "method": ["GET"]}]}', 10239, "exactly one"),
    ],
)
def test_bad_tail_bodies_are_400_and_open_nothing(client: TestClient, staging: Staging, cf_headers,
                                                  body: bytes, code: int, expected: str):
    assert_error(client.post(tails_url(staging), headers=cf_headers, content=body), 400, code, contains=expected)
    assert staging.tails.open_tails() == []


def test_at_most_ten_tails_at_once(client: TestClient, staging: Staging, cf_headers):
    ids = [client.post(tails_url(staging), headers=cf_headers).json()["result"]["id"] for _ in range(MAX_OPEN_TAILS)]
    assert len(set(ids)) == MAX_OPEN_TAILS
    assert_error(client.post(tails_url(staging), headers=cf_headers), 400, 10238, contains="at most 10")
    listed = client.get(tails_url(staging), headers=cf_headers).json()["result"]
    assert sorted(t["id"] for t in listed) == sorted(ids) and all("url" not in t for t in listed)
    assert client.delete(f"{tails_url(staging)}/{ids[0]}", headers=cf_headers).status_code == 200
    assert client.post(tails_url(staging), headers=cf_headers).status_code == 200


def test_delete_ends_a_tail_once(client: TestClient, staging: Staging, cf_headers):
    tail_id = client.post(tails_url(staging), headers=cf_headers).json()["result"]["id"]
    assert client.delete(f"{tails_url(staging)}/{tail_id}", headers=cf_headers).json()["success"] is True
    assert_error(client.delete(f"{tails_url(staging)}/{tail_id}", headers=cf_headers), 404, 10237, contains=tail_id)


def test_tails_expire_at_expires_at(client: TestClient, staging: Staging, clock: ManualClock, cf_headers):
    ids = [client.post(tails_url(staging), headers=cf_headers).json()["result"]["id"] for _ in range(MAX_OPEN_TAILS)]
    clock.advance(TAIL_TTL_S - 1)
    assert len(client.get(tails_url(staging), headers=cf_headers).json()["result"]) == MAX_OPEN_TAILS
    clock.advance(1)
    assert client.get(tails_url(staging), headers=cf_headers).json()["result"] == []
    assert_error(client.delete(f"{tails_url(staging)}/{ids[0]}", headers=cf_headers), 404, 10237)
    assert client.post(tails_url(staging), headers=cf_headers).status_code == 200


# --- the socket, in-process ----------------------------------------------------------------------------
def open_tail(client: TestClient, staging: Staging, headers, filters: list[dict[str, Any]] | None = None) -> str:
    response = client.post(tails_url(staging), headers=headers, json={"filters": filters or []})
    assert response.status_code == 200, response.text
    return response.json()["result"]["url"]


def test_the_socket_echoes_trace_v1_and_streams_matching_events(client: TestClient, staging: Staging, cf_headers):
    url = open_tail(client, staging, cf_headers, [{"outcome": ["exception"]}])
    with client.websocket_connect(url, subprotocols=["trace-v1"]) as ws:
        assert ws.accepted_subprotocol == "trace-v1"
        ws.send_text(json.dumps({"debug": False}))
        staging.tails.publish(event("healthy"))
        staging.tails.publish(event("broken", outcome="exception"))
        assert ws.receive_json() == event("broken", outcome="exception"), "the ok event is filtered out"


@pytest.mark.parametrize("how", ["delete", "expiry", "reset"])
def test_the_socket_closes_with_1000_when_the_tail_ends(client: TestClient, staging: Staging, clock: ManualClock,
                                                        cf_headers, how: str):
    url = open_tail(client, staging, cf_headers)
    tail_id = urlsplit(url).path.rsplit("/", 1)[1]
    with client.websocket_connect(url, subprotocols=["trace-v1"]) as ws:
        ws.send_text('{"debug":false}')
        if how == "delete":
            client.delete(f"{tails_url(staging)}/{tail_id}", headers=cf_headers)
        elif how == "expiry":
            clock.advance(TAIL_TTL_S)
            staging.tails.publish(event("after expiry"))
        else:
            client.post("/__staging/reset", json={})
        message = ws.receive()
        assert message["type"] == "websocket.close" and message["code"] == 1000


@pytest.mark.parametrize(
    ("mutate", "status", "expected"),
    [
        (lambda url: url.replace("/tail/", "/tail/x"), 404, "no open tail"),
        (lambda url: url.split("?")[0] + "?secret=guess", 403, "secret is missing or wrong"),
        (lambda url: url.split("?")[0], 403, "secret is missing or wrong"),
    ],
)
def test_the_socket_refuses_unknown_tails_and_wrong_secrets(client: TestClient, staging: Staging, cf_headers,
                                                            mutate, status: int, expected: str):
    url = open_tail(client, staging, cf_headers)
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(mutate(url), subprotocols=["trace-v1"]):
            pass
    assert denied.value.status_code == status and expected in denied.value.json()["error"]


def test_the_socket_requires_the_trace_v1_subprotocol(client: TestClient, staging: Staging, cf_headers):
    url = open_tail(client, staging, cf_headers)
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(url):
            pass
    assert denied.value.status_code == 400 and "trace-v1" in denied.value.json()["error"]


# --- publishing and filters, as units ----------------------------------------------------------------
def test_a_slow_subscriber_loses_its_oldest_events_not_the_publisher_its_time():
    async def run() -> tuple[list[str | None], int]:
        subscriber = Subscriber(maxsize=3)
        for n in range(5):
            subscriber.offer(f"e{n}")
        return [subscriber.queue.get_nowait() for _ in range(3)], subscriber.dropped

    assert asyncio.run(run()) == (["e2", "e3", "e4"], 2)


def test_publishing_with_no_tail_open_is_a_no_op(staging: Staging):
    staging.tails.publish(event("nobody listens"))
    assert staging.tails.open_tails() == []


FILTER_CASES = [
    ([{"outcome": ["exception"]}], event("a", outcome="exception"), event("a")),
    ([{"method": ["post"]}], event("a", method="POST"), event("a", method="GET")),
    ([{"query": "needle"}], event("the-needle-here"), event("hay")),
    ([{"client_ip": ["198.51.100.7"]}], event("a", headers={"CF-Connecting-IP": "198.51.100.7"}), event("a")),
    ([{"header": {"key": "X-Drill"}}], event("a", headers={"x-drill": "yes"}), event("a")),
    ([{"header": {"key": "x-drill", "query": "run-7"}}], event("a", headers={"X-Drill": "run-7"}),
     event("a", headers={"X-Drill": "run-8"})),
    ([{"scriptVersion": "v-2"}], event("a", version="v-2"), event("a", version="v-1")),
    ([{"scriptVersion": "v-2"}], event("a", version="v-2"), event("a")),
    ([{"outcome": ["ok"]}, {"method": ["GET"]}], event("a"), event("a", method="PUT")),
]


@pytest.mark.parametrize(("filters", "passes", "blocked"), FILTER_CASES)
def test_each_filter_passes_what_it_names_and_blocks_the_rest(filters, passes, blocked):
    parsed = parse_filters(filters, requester_ip="127.0.0.1")
    rng = random.Random(0)
    assert parsed.matches(passes, json.dumps(passes), rng)
    assert not parsed.matches(blocked, json.dumps(blocked), rng)


def test_sampling_is_drawn_from_a_seeded_source_and_replays():
    parsed = parse_filters([{"sampling_rate": 0.25}], requester_ip="")
    sample = event("s")

    def kept(seed: int) -> list[int]:
        rng = random.Random(seed)
        return [n for n in range(400) if parsed.matches(sample, "", rng)]

    assert kept(7) == kept(7) and kept(7) != kept(8)
    assert 60 <= len(kept(7)) <= 140
    for rate, expected in ((0.0, 0), (1.0, 400)):
        only = parse_filters([{"sampling_rate": rate}], requester_ip="")
        rng = random.Random(1)
        assert sum(only.matches(sample, "", rng) for _ in range(400)) == expected


def test_tails_created_in_the_same_order_sample_the_same_events():
    async def run() -> list[str]:
        staging = Staging(clock=ManualClock())
        hub = staging.tails
        subscriber = hub.subscribe(hub.create(parse_filters([{"sampling_rate": 0.5}], requester_ip="")))
        for n in range(40):
            hub.publish(event(f"n{n}"))
        kept: list[str] = []
        while not subscriber.queue.empty():
            item = subscriber.queue.get_nowait()
            assert item is not None
            kept.append(json.loads(item)["logs"][0]["message"][0])
        return kept

    first, second = asyncio.run(run()), asyncio.run(run())
    assert first == second and 5 < len(first) < 35


# --- over a real socket ----------------------------------------------------------------------------------
def live_tail(live: RunningStaging, filters: list[dict[str, Any]] | None = None) -> str:
    config = live.config
    response = httpx.post(
        f"{live.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}/tails",
        headers={"Authorization": f"Bearer {config.token}", "Content-Type": "text/plain;charset=UTF-8"},
        content=json.dumps({"filters": filters or []}), timeout=5, trust_env=False,
    )
    assert response.status_code == 200, response.text
    url = response.json()["result"]["url"]
    assert url.startswith(f"ws://127.0.0.1:{live.port}/tail/")
    return url


def markers(ws, until: str) -> list[str]:
    """The markers of the events received until the one whose marker is ``until``, with a deadline."""
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no event {until!r} within {DEADLINE_S}s; got {seen}"
        got = json.loads(ws.recv(timeout=remaining))["logs"][0]["message"][0].removeprefix("log ")
        seen.append(got)
        if got == until:
            return seen


def test_live_socket_streams_events_with_filters_honoured(live: RunningStaging):
    version = live.staging.workers.serving_deployment().versions[0][0]
    url = live_tail(live, [{"method": ["POST"]}, {"query": "needle"}, {"client_ip": ["self"]},
                           {"header": {"key": "x-drill", "query": "on"}}, {"scriptVersion": version}])
    good = {"cf-connecting-ip": "127.0.0.1", "x-drill": "on"}
    with connect(url, subprotocols=["trace-v1"], proxy=None, open_timeout=DEADLINE_S) as ws:
        assert ws.subprotocol == "trace-v1"
        ws.send(json.dumps({"debug": False}))
        hub = live.staging.tails
        hub.publish(event("needle-get", method="GET", version=version, headers=good))
        hub.publish(event("hay-post", method="POST", version=version, headers=good))
        hub.publish(event("needle-other-ip", method="POST", version=version,
                          headers={**good, "cf-connecting-ip": "192.0.2.1"}))
        hub.publish(event("needle-no-header", method="POST", version=version, headers={"cf-connecting-ip": "127.0.0.1"}))
        hub.publish(event("needle-old-version", method="POST", version="v-old", headers=good))
        hub.publish(event("needle-1", method="POST", version=version, headers=good))
        hub.publish(event("needle-2", method="POST", version=version, headers=good))
        assert markers(ws, until="needle-2") == ["needle-1", "needle-2"]


def test_live_socket_closes_with_1000_on_delete(live: RunningStaging):
    url = live_tail(live)
    tail_id = urlsplit(url).path.rsplit("/", 1)[1]
    config = live.config
    with connect(url, subprotocols=["trace-v1"], proxy=None, open_timeout=DEADLINE_S) as ws:
        response = httpx.delete(
            f"{live.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}/tails/{tail_id}",
            headers={"Authorization": f"Bearer {config.token}"}, timeout=5, trust_env=False,
        )
        assert response.status_code == 200
        with pytest.raises(ConnectionClosedOK) as closed:
            ws.recv(timeout=DEADLINE_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_live_a_stalled_consumer_loses_old_events_and_blocks_nobody(live: RunningStaging):
    url = live_tail(live)
    padding = "p" * 10_000
    with connect(url, subprotocols=["trace-v1"], proxy=None, open_timeout=DEADLINE_S, max_queue=1) as ws:
        hub = live.staging.tails
        (tail,) = hub.open_tails()
        deadline = time.monotonic() + DEADLINE_S
        published = 0
        while not (tail.subscribers and tail.subscribers[0].dropped > 0):
            assert time.monotonic() < deadline, f"nothing was dropped after {published} events"
            for _ in range(200):
                hub.publish({**event(f"bulk-{published}"), "padding": padding})
                published += 1
        health = httpx.get(f"{live.base_url}/__staging/info", timeout=5, trust_env=False)
        assert health.status_code == 200, "the server still answers while a tail consumer is stalled"
        hub.publish(event("newest"))
        seen = markers(ws, until="newest")
        assert len(seen) < published + 1, "the oldest events were dropped"
        assert seen[-1] == "newest"


def read_frame(sock: socket.socket) -> Frame:
    """One server frame from a raw socket (the server never masks)."""
    buffer = b""

    def read_exact(n: int):
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffer += chunk
        data, buffer = buffer[:n], buffer[n:]
        return data

    def reader(n: int):
        return read_exact(n)
        yield  # a generator, as Frame.parse expects

    parser = Frame.parse(reader, mask=False)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        return done.value


def test_live_socket_accepts_unmasked_client_frames_as_wrangler_sends_them(live: RunningStaging):
    url = urlsplit(live_tail(live))
    with socket.create_connection((live.host, live.port), timeout=DEADLINE_S) as sock:
        sock.sendall(
            f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: trace-v1\r\nUser-Agent: wrangler/4.86.0\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"the server closed during the handshake: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101") and b"sec-websocket-protocol: trace-v1" in head.lower()
        sock.sendall(Frame(Opcode.TEXT, b'{"debug":false}').serialize(mask=False))
        sock.sendall(Frame(Opcode.PING, b"wrangler tail ping").serialize(mask=False))
        pong = read_frame(sock)
        assert (pong.opcode, bytes(pong.data)) == (Opcode.PONG, b"wrangler tail ping")
        live.staging.tails.publish(event("after-unmasked-frames"))
        message = read_frame(sock)
        assert message.opcode == Opcode.TEXT
        assert json.loads(message.data)["logs"][0]["message"] == ["log after-unmasked-frames"]
