"""The embedded staging: the BooksTrack API and the Cloudflare API subset in one local process.

Reach it only through these entry points and the HTTP it serves:
- :func:`start_in_thread`: a real socket on 127.0.0.1 (ephemeral port by default), for the suites;
- :func:`create_app`: the ASGI app, for in-process unit tests (``httpx.ASGITransport``);
- ``python -m bookstrack_rollback.staging --port 8787``: the command line.
"""

from .app import create_app
from .base import ManualClock, StagingConfig
from .server import RunningStaging, StagingStartError, start_in_thread
from .state import Staging

__all__ = [
    "ManualClock",
    "RunningStaging",
    "Staging",
    "StagingConfig",
    "StagingStartError",
    "create_app",
    "start_in_thread",
]
