"""A version made through the API must start before the API accepts it: in workerd mode the runtime
starts its code (Cloudflare refuses code that cannot start with 10021) and records ``startup_time_ms``;
in python mode there is nothing to start. Every endpoint that makes a version calls this once, before
deploying it: uploads, ``PUT .../scripts/{name}``, secret edits, ``versions/latest`` patches.
"""

from __future__ import annotations

from ..state import Staging
from .envelope import CloudflareError
from .workers import Version


async def start_version(staging: Staging, version: Version) -> Version:
    """``version`` as the runtime left it (its startup time set); an upload that cannot start is forgotten
    and its CloudflareError raised."""
    runtime, workers = staging.runtime, staging.workers
    if runtime is None:
        return version
    try:
        startup_ms = await runtime.prepare(version)
    except CloudflareError:
        workers.discard(version.id)
        raise
    return workers.started(version.id, startup_ms)
