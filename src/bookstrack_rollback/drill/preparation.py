"""Getting a target ready for a drill, and leaving it as it was: the known stable version (kept within
the versions that can be rolled back to), healing what a crashed drill left behind, and the drill's own
backup of the canary records ("Recovery Plan": Data Recovery)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..clients.cloudflare import CloudflareApi, VersionInfo
from ..config import Target
from ..faults import RUNTIME_FLAG_KEY
from .record import PASSED
from .version_copy import CopyMismatch, copy_version
from .worker_repo import FAULT_PROFILE_VAR, WorkerRepo


class DrillError(Exception):
    """The drill could not run (refused, or the target could not be prepared)."""


async def copy(api: CloudflareApi, source: VersionInfo, set_vars: dict[str, str | None], *, tag: str,
               message: str) -> VersionInfo:
    """A copy of ``source`` with ``set_vars`` (version_copy.py), or the drill stops naming every difference."""
    try:
        return await copy_version(api, source, set_vars=set_vars, tag=tag, message=message)
    except CopyMismatch as exc:
        raise DrillError(str(exc)) from exc


async def known_stable(api: CloudflareApi, target: Target, history: Sequence[dict[str, Any]]) -> VersionInfo:
    """The last version that passed verification: the last passed drill's, else the target's known stable
    tag (never merely the previous deployment: the FAQ)."""
    candidates = [line for line in history if line.get("target") == target.name and line.get("status") == PASSED
                  and line.get("verified_version_id")]
    versions = await api.versions()
    by_id = {v.id: v for v in versions}
    for line in reversed(candidates):
        if line["verified_version_id"] in by_id:
            return await api.version(line["verified_version_id"])
    wanted = target.known_stable
    found = await api.clean_version(wanted, versions) if wanted else None
    if found is not None:
        return found
    raise DrillError(f"no known stable version: none of the {len(versions)} rollbackable versions matches "
                     f"{wanted!r} without a FAULT_PROFILE; set known_stable for {target.source}")


async def keep_rollbackable(api: CloudflareApi, stable: VersionInfo, repo: WorkerRepo | None,
                            rollbackable: int) -> tuple[VersionInfo, str | None]:
    """Only the ``rollbackable`` newest versions can be rolled back to, and every drill adds one. When the
    known stable version nears the edge, redeploy it from git (the FAQ: "For older versions, redeploy
    from git"), or for a real worker upload an identical copy of it, so the drill's own rollback target
    stays reachable. Returns the version to roll back to, and what was done (None: nothing)."""
    newest = [v.id for v in await api.versions()]
    margin = rollbackable - 2
    if stable.id in newest[:margin]:
        return stable, None
    if repo is not None:
        version, _ = await repo.deploy(api, tag=stable.tag, message=f"Redeploy of the known stable {stable.label} from git")
        kept = await api.version(version.id)  # with its bindings
        how = "redeployed it from git"
    else:  # the copy is already read back, bindings included
        kept = await copy(api, stable, {}, tag=stable.tag or "known stable",
                          message=f"Re-upload of the known stable {stable.label}, to keep it rollbackable")
        how = "uploaded a copy of it (same code and bindings, not deployed)"
    return kept, (f"the known stable {stable.label} was about to leave the {rollbackable} versions that can be "
                  f"rolled back to: {how} as {kept.label}")


async def heal(api: CloudflareApi, target: Target, stable: VersionInfo) -> list[str]:
    """Remove what a crashed drill left behind: a runtime fault, a faulty version serving, lost canaries."""
    notes = []
    namespace = target.kv_namespace_id
    assert namespace
    if await api.kv_get(namespace, RUNTIME_FLAG_KEY) is not None:
        await api.kv_delete(namespace, RUNTIME_FLAG_KEY)
        notes.append("cleared a runtime fault flag left behind")
    serving = await api.serving()
    current = await api.version(serving.main_version_id)
    if current.var(FAULT_PROFILE_VAR) is not None or len(serving.versions) > 1:
        await api.deploy(stable.id, "Drill cleanup: back to the known stable version")
        notes.append(f"{current.label} (carrying a FAULT_PROFILE) was serving: redeployed {stable.label}")
    for key, expected in target.canaries:
        if await api.kv_get(namespace, key) != expected.encode():
            await api.kv_put(namespace, key, expected.encode())
            notes.append(f"restored canary record {key!r}")
    return notes


async def snapshot(api: CloudflareApi, target: Target) -> dict[str, bytes | None]:
    """The drill's own backup of the canary records, taken before the test change."""
    assert target.kv_namespace_id
    return {key: await api.kv_get(target.kv_namespace_id, key) for key, _expected in target.canaries}


async def restore(api: CloudflareApi, namespace: str, backup: dict[str, bytes | None]) -> list[str]:
    """"Data Recovery": put back from the backup what the test change deleted or changed."""
    restored = []
    for key, value in backup.items():
        if value is not None and await api.kv_get(namespace, key) != value:
            await api.kv_put(namespace, key, value)
            restored.append(key)
    return restored
