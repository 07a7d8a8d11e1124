"""A new version that is an existing one's code and bindings with some variables changed: how the drill
makes its **test change** of a real worker (the known stable version plus ``FAULT_PROFILE``) without
its repository, and how it re-uploads the known stable version to keep it among the versions that can
be rolled back to.

It does through the Cloudflare API what ``wrangler versions secret put`` does: read the version
(``GET .../versions/{id}``: bindings, compatibility date and flags) and its code (``GET
.../content/v2?version=``), and upload both as a new version (not deployed). Variables (``plain_text``
and ``json``) are copied as they are; every other binding (KV, Durable Objects, services, secrets,
...) is sent as ``inherit`` from the source version (``version_id``), as wrangler inherits bindings,
so none takes a round trip through its API shape and secrets keep values the API never shows. The
upload asks ``bindings_inherit=strict``: a binding that cannot be inherited fails the upload instead
of being dropped silently.

Then the copy is read back and compared with the source: the same modules byte for byte and the same
bindings but for the changed variables. A copy that differs is reported with every difference and
must not be deployed (:class:`CopyMismatch`); it harms nothing while it is not deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clients.cloudflare import CloudflareApi, VersionInfo, WorkerCode

VARIABLE_TYPES = ("plain_text", "json")
SECRET_TYPES = ("secret_text", "secret_key")


class CopyMismatch(Exception):
    """The uploaded copy is not the source's code and bindings with the asked changes."""

    def __init__(self, message: str, *, copy: VersionInfo) -> None:
        super().__init__(message)
        self.copy = copy


def _comparable(binding: Mapping[str, Any]) -> dict[str, Any]:
    """A binding as the comparison sees it: a secret by name and type only (its text is never shown)."""
    if binding.get("type") in SECRET_TYPES:
        return {"name": binding.get("name"), "type": binding.get("type")}
    return dict(binding)


def expected_bindings(source: VersionInfo, set_vars: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """name -> binding, as the copy must hold them."""
    wanted = {b["name"]: _comparable(b) for b in source.bindings if b.get("name") not in set_vars}
    for name, text in set_vars.items():
        if text is not None:
            wanted[name] = {"type": "plain_text", "name": name, "text": text}
    return wanted


def upload_bindings(source: VersionInfo, set_vars: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The ``bindings`` of the upload's metadata."""
    bindings: list[dict[str, Any]] = []
    for binding in source.bindings:
        name, kind = binding.get("name"), binding.get("type")
        if name in set_vars:
            continue
        bindings.append(dict(binding) if kind in VARIABLE_TYPES
                        else {"type": "inherit", "name": name, "version_id": source.id})
    bindings += [{"type": "plain_text", "name": name, "text": text}
                 for name, text in sorted(set_vars.items()) if text is not None]
    return bindings


async def copy_version(api: CloudflareApi, source: VersionInfo, *, set_vars: Mapping[str, str | None],
                       tag: str, message: str) -> VersionInfo:
    """Upload ``source``'s code and bindings as a new version with ``set_vars`` set (None: removed);
    read it back and raise :class:`CopyMismatch` unless it is exactly that. ``source`` must come from
    :meth:`CloudflareApi.version` (it carries the bindings)."""
    code = await api.version_content(source.id)
    copy = await api.upload_version(
        main_module=code.main_module, modules=code.modules, bindings=upload_bindings(source, set_vars),
        annotations={"workers/tag": tag, "workers/message": message},
        compatibility_date=source.compatibility_date or "2025-11-01",
        compatibility_flags=source.compatibility_flags, strict_inherit=True,
    )
    copy = await api.version(copy.id)
    problems = copy_differences(source, set_vars, code, copy, await api.version_content(copy.id))
    if problems:
        raise CopyMismatch(f"version {copy.label}, uploaded as a copy of {source.label}, is not its code and "
                           f"bindings: {'; '.join(problems)}; it was not deployed", copy=copy)
    return copy


def copy_differences(source: VersionInfo, set_vars: Mapping[str, str | None], code: WorkerCode,
                     copy: VersionInfo, copy_code: WorkerCode) -> list[str]:
    """How ``copy`` differs from ``source`` with ``set_vars`` applied, one phrase per difference."""
    problems = code.differences(copy_code)
    wanted = expected_bindings(source, set_vars)
    found = {b.get("name"): _comparable(b) for b in copy.bindings}
    for name in sorted(wanted.keys() | found.keys(), key=str):
        if wanted.get(name) != found.get(name):
            problems.append(f"binding {name!r} is {found.get(name)!r}, expected {wanted.get(name)!r}")
    if source.compatibility_date and copy.compatibility_date != source.compatibility_date:
        problems.append(f"compatibility date {copy.compatibility_date!r}, expected {source.compatibility_date!r}")
    if copy.compatibility_flags != source.compatibility_flags:
        problems.append(f"compatibility flags {list(copy.compatibility_flags)}, expected "
                        f"{list(source.compatibility_flags)}")
    return problems
