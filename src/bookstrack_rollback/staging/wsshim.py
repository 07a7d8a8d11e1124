"""uvicorn's websockets-sansio protocol, made lenient where real clients are not strict.

Placeholder: no change yet (wrangler's unmasked tail frames: notes/real-clients.md).
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LenientWebSocketProtocol(WebSocketsSansIOProtocol):
    pass
