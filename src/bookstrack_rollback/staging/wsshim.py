"""uvicorn's websockets-sansio protocol, made lenient where real clients are not strict.

wrangler 4.x sends its tail client frames (``{"debug":false}``, its keep-alive pings, its close)
UNMASKED (notes/real-clients.md, "tail", step 3). RFC 6455 section 5.1 says a server must close the
connection on an unmasked client frame, and the websockets sans-io parser does (1002 "incorrect
masking"). Masking with a zero key is the identity, so :class:`UnmaskedFrameMasker` rewrites the
incoming byte stream: it passes the HTTP handshake through (up to and including the first
``\\r\\n\\r\\n``), then parses frame headers incrementally (RFC 6455 section 5.2: 2 bytes, then a
16- or 64-bit extended length, then a 4-byte masking key when the mask bit is set) and, for every
unmasked frame, sets the mask bit and inserts the key ``00 00 00 00``. Masked frames and every
payload byte pass through unchanged. Frames may be split across TCP reads at any byte.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_END_OF_HEAD = b"\r\n\r\n"
_MASK_BIT = 0x80
_ZERO_MASK = b"\x00\x00\x00\x00"


class UnmaskedFrameMasker:
    """A sans-io rewriter of the client-to-server byte stream of one WebSocket connection."""

    def __init__(self) -> None:
        self._in_handshake = True
        self._head_tail = b""  # the last bytes of the handshake seen, to find a split terminator
        self._header = bytearray()  # the frame header collected so far
        self._payload_left = 0
        self.frames_masked = 0

    def feed(self, data: bytes) -> bytes:
        """Return the bytes to hand to the strict parser for ``data`` just received."""
        out = bytearray()
        if self._in_handshake:
            window = self._head_tail + data
            end = window.find(_END_OF_HEAD)
            if end < 0:
                self._head_tail = window[-(len(_END_OF_HEAD) - 1) :]
                return data
            cut = end + len(_END_OF_HEAD) - len(self._head_tail)
            out += data[:cut]
            data = data[cut:]
            self._in_handshake = False
            self._head_tail = b""
        position = 0
        while position < len(data):
            if self._payload_left:
                take = min(self._payload_left, len(data) - position)
                out += data[position : position + take]
                position += take
                self._payload_left -= take
                continue
            self._header.append(data[position])
            position += 1
            needed = self._header_size()
            if needed is not None and len(self._header) == needed:
                out += self._emit_header()
        return bytes(out)

    def _header_size(self) -> int | None:
        """The full header size once it is known (after the second byte), else None."""
        if len(self._header) < 2:
            return None
        length7 = self._header[1] & 0x7F
        extended = 2 if length7 == 126 else 8 if length7 == 127 else 0
        mask = 4 if self._header[1] & _MASK_BIT else 0
        return 2 + extended + mask

    def _emit_header(self) -> bytes:
        header = bytes(self._header)
        self._header.clear()
        length7 = header[1] & 0x7F
        if length7 == 126:
            length = int.from_bytes(header[2:4], "big")
        elif length7 == 127:
            length = int.from_bytes(header[2:10], "big")
        else:
            length = length7
        self._payload_left = length
        if header[1] & _MASK_BIT:
            return header
        self.frames_masked += 1
        return bytes([header[0], header[1] | _MASK_BIT]) + header[2:] + _ZERO_MASK


class LenientWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-io WebSocket protocol, accepting unmasked client frames (wrangler's tail)."""

    def connection_made(self, transport: object) -> None:
        self._masker = UnmaskedFrameMasker()
        super().connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        rewritten = self._masker.feed(data)
        if rewritten:
            super().data_received(rewritten)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message.get("type") == "websocket.http.response.body" and not message.get("more_body", False):
            # A denial response (400/401/426/500 to a handshake) is a complete answer: without this,
            # uvicorn logs "ASGI callable returned without completing handshake" for every refusal.
            self.handshake_complete = True
