"""The drill lock: one drill at a time on a target, held as a KV record with an expiry.

Workers KV has no compare-and-swap, so two drills starting in the same instant could both take it;
the lock guards the ordinary case (a second drill, a CI run while a person drills) and expires, so a
killed drill does not block the next one for longer than its lease.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..clients.cloudflare import CloudflareApi

LOCK_KEY = "drill/lock"


class DrillRefused(Exception):
    """Another drill holds the lock on this target."""


@dataclass(frozen=True)
class Lease:
    owner: str
    drill_id: str
    expires_at: float


async def take_lock(api: CloudflareApi, namespace: str, *, owner: str, drill_id: str, lease_s: float) -> str | None:
    """Take the lock; returns a note when an expired lock of a dead drill was taken over."""
    raw = await api.kv_get(namespace, LOCK_KEY)
    note = None
    if raw:
        try:
            held = json.loads(raw)
        except json.JSONDecodeError:
            held = {}
        if held.get("expires_at", 0) > time.time():
            raise DrillRefused(f"drill {held.get('drill_id')} by {held.get('owner')} holds the drill lock on this "
                               f"target until {time.strftime('%H:%M:%S', time.gmtime(held['expires_at']))} UTC: "
                               "concurrent drills on one target are refused")
        note = f"took over the expired drill lock of {held.get('drill_id', 'an unknown drill')}"
    lease = {"owner": owner, "drill_id": drill_id, "expires_at": time.time() + lease_s}
    await api.kv_put(namespace, LOCK_KEY, json.dumps(lease).encode())
    return note


async def release_lock(api: CloudflareApi, namespace: str, *, drill_id: str) -> None:
    raw = await api.kv_get(namespace, LOCK_KEY)
    if raw:
        try:
            held = json.loads(raw)
        except json.JSONDecodeError:
            held = {}
        if held.get("drill_id") not in (drill_id, None):
            return  # not ours any more
    await api.kv_delete(namespace, LOCK_KEY)
