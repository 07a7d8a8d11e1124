"""The lenient WebSocket shim: wrangler's unmasked tail frames reach the strict sans-io parser masked
with a zero key (staging/wsshim.py; notes/real-clients.md, "tail", step 3)."""

from __future__ import annotations

import random

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from bookstrack_rollback.staging.wsshim import UnmaskedFrameMasker

PAYLOAD_SIZES = (0, 5, 125, 126, 127, 300, 65535, 65536, 70_000)


def handshake() -> bytes:
    client = ClientProtocol(parse_uri("ws://127.0.0.1:1/tail/abc?secret=x"), subprotocols=None)
    client.send_request(client.connect())
    return b"".join(client.data_to_send())


def frame(payload: bytes, *, masked: bool, opcode: Opcode = Opcode.TEXT) -> bytes:
    return Frame(opcode, payload).serialize(mask=masked)


def open_server(head: bytes) -> ServerProtocol:
    """A strict websockets server that has received ``head`` and accepted the connection."""
    server = ServerProtocol()
    server.receive_data(head)
    (request,) = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    server.data_to_send()
    return server


def strict_server_frames(stream: bytes) -> list[Frame]:
    """What the strict websockets server parser makes of ``stream`` (handshake + frames)."""
    end = stream.index(b"\r\n\r\n") + 4
    server = open_server(stream[:end])
    server.receive_data(stream[end:])
    events = server.events_received()
    assert server.parser_exc is None, f"the strict parser refused the stream: {server.parser_exc!r}"
    return [event for event in events if isinstance(event, Frame)]


def test_without_the_shim_the_strict_parser_refuses_an_unmasked_frame():
    server = open_server(handshake())
    server.receive_data(frame(b'{"debug":false}', masked=False))
    server.events_received()
    assert server.close_sent is not None and server.close_sent.code == 1002
    assert "incorrect masking" in str(server.parser_exc)


def test_an_unmasked_frame_gets_the_mask_bit_and_a_zero_key():
    masker = UnmaskedFrameMasker()
    head = handshake()
    out = masker.feed(head + frame(b'{"debug":false}', masked=False))
    assert out[: len(head)] == head
    rewritten = out[len(head):]
    assert rewritten[0] == 0x81 and rewritten[1] == 0x80 | 15
    assert rewritten[2:6] == b"\x00\x00\x00\x00" and rewritten[6:] == b'{"debug":false}'
    assert masker.frames_masked == 1


@pytest.mark.parametrize("size", PAYLOAD_SIZES)
def test_every_length_encoding_reaches_the_strict_parser_intact(size: int):
    payload = random.Random(size).randbytes(size)
    stream = handshake() + frame(payload, masked=False, opcode=Opcode.BINARY)
    frames = strict_server_frames(UnmaskedFrameMasker().feed(stream))
    assert [(f.opcode, bytes(f.data)) for f in frames] == [(Opcode.BINARY, payload)]


def test_masked_frames_pass_through_unchanged():
    head = handshake()
    masked = frame(b"already masked", masked=True) + frame(b"x" * 300, masked=True)
    masker = UnmaskedFrameMasker()
    assert masker.feed(head + masked) == head + masked
    assert masker.frames_masked == 0


def test_bytes_fed_one_at_a_time_give_the_same_stream_as_one_chunk():
    stream = handshake() + b"".join([
        frame(b'{"debug":false}', masked=False),
        frame(b"wrangler tail ping", masked=False, opcode=Opcode.PING),
        frame(b"m" * 200, masked=True),
        frame(random.Random(1).randbytes(70_000), masked=False, opcode=Opcode.BINARY),
        frame(b"\x03\xe8bye", masked=False, opcode=Opcode.CLOSE),
    ])
    whole = UnmaskedFrameMasker().feed(stream)
    bytewise = UnmaskedFrameMasker()
    pieces = b"".join(bytewise.feed(stream[i:i + 1]) for i in range(len(stream)))
    assert pieces == whole
    assert bytewise.frames_masked == 4
    frames = strict_server_frames(pieces)
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PING, Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE]
    assert bytes(frames[0].data) == b'{"debug":false}' and bytes(frames[1].data) == b"wrangler tail ping"


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 7])
def test_a_handshake_terminator_split_across_reads_is_found(cut: int):
    head = handshake()
    stream = head + frame(b"hi", masked=False)
    split_at = len(head) - 4 + cut  # inside or just after the final \r\n\r\n
    masker = UnmaskedFrameMasker()
    out = masker.feed(stream[:split_at]) + masker.feed(stream[split_at:])
    assert out == UnmaskedFrameMasker().feed(stream)
    assert [bytes(f.data) for f in strict_server_frames(out)] == [b"hi"]


def test_handshake_bytes_are_passed_on_as_they_arrive():
    head = handshake()
    masker = UnmaskedFrameMasker()
    assert masker.feed(head[:10]) == head[:10]
    assert masker.feed(head[10:]) == head[10:]
