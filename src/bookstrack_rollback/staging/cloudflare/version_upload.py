"""Parsing a version upload: ``POST .../workers/scripts/{script}/versions`` (contract/cloudflare-api.md,
"Versions").

The body is multipart/form-data: a ``metadata`` part (JSON: ``main_module``, ``bindings[]``,
``annotations`` {``workers/message``, ``workers/tag``}, optionally ``compatibility_date``,
``compatibility_flags``, ``keep_bindings``) plus one part per module, named as the module. Anything
malformed is refused with 400 (code ``errors.INVALID_UPLOAD``) before the model is touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from . import errors
from .request_parsing import parse_multipart, read_body, shown
from .workers import DEFAULT_COMPATIBILITY_DATE, Version

SERVER_SET_ANNOTATIONS = ("workers/triggered_by",)
MAX_ANNOTATION_BYTES = 1000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TEXT_BINDINGS = ("plain_text", "secret_text")
INHERIT = "inherit"


@dataclass(frozen=True)
class VersionUpload:
    """A parsed, valid upload: what ``WorkersModel.upload`` takes."""

    main_module: str
    modules: dict[str, bytes]
    bindings: list[dict[str, Any]]
    annotations: dict[str, str]
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    keep_bindings: tuple[str, ...]
    # Durable Object migrations' ``new_tag`` (``PUT .../scripts/{name}`` only: versions cannot carry them)
    migration_tag: str | None = None

    def resolve_bindings(self, latest: Version | None, versions: Callable[[str], Version | None], *,
                         strict: bool = False) -> list[dict[str, Any]]:
        """The bindings as the new version holds them. An ``inherit`` binding is the binding named
        ``old_name`` (default: its own name) of version ``version_id`` (default, or ``"latest"``: the
        latest version), under its own name: how ``wrangler versions secret put`` copies a version. One
        that cannot be resolved is dropped silently, or refused when ``strict``
        (``?bindings_inherit=strict``), as upstream does. The latest version's bindings whose type is
        in ``keep_bindings`` (its secrets) are kept unless redefined by name."""
        resolved = []
        for binding in self.bindings:
            if binding["type"] == INHERIT:
                try:
                    binding = self._inherit(binding, latest, versions)
                except errors.CloudflareError:
                    if strict:
                        raise
                    continue
            resolved.append(binding)
        if latest is None or not self.keep_bindings:
            return resolved
        named = {b["name"] for b in self.bindings}
        kept = [dict(b) for b in latest.bindings if b.get("type") in self.keep_bindings and b.get("name") not in named]
        return [*resolved, *kept]

    @staticmethod
    def _inherit(binding: dict[str, Any], latest: Version | None,
                 versions: Callable[[str], Version | None]) -> dict[str, Any]:
        version_id = binding.get("version_id") or "latest"
        source = latest if version_id == "latest" else versions(version_id)
        if source is None:
            raise errors.invalid_upload(f"binding {binding['name']!r} inherits from version {version_id!r}, "
                                        "which does not exist")
        old_name = binding.get("old_name") or binding["name"]
        for candidate in source.bindings:
            if candidate.get("name") == old_name:
                return {**candidate, "name": binding["name"]}
        raise errors.invalid_upload(f"binding {binding['name']!r} inherits {old_name!r} from version {source.id}, "
                                    "which has no binding of that name")


async def parse_version_upload(request: Request) -> VersionUpload:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise errors.invalid_upload(f"expected a multipart/form-data body, got Content-Type {content_type or 'none'!r}")
    parts = await parse_multipart(content_type, await read_body(request), errors.invalid_upload)
    if not parts:
        raise errors.invalid_upload("the multipart body has no parts; expected a 'metadata' part and the modules")
    if "metadata" not in parts:
        raise errors.invalid_upload(f"the 'metadata' part is missing; parts received: {sorted(parts)}")
    try:
        metadata = json.loads(parts.pop("metadata").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.invalid_upload(f"the 'metadata' part is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise errors.invalid_upload(f"the 'metadata' part must be a JSON object, got {type(metadata).__name__}")
    return _from_metadata(metadata, parts)


def _from_metadata(metadata: dict[str, Any], modules: dict[str, bytes]) -> VersionUpload:
    main_module = metadata.get("main_module", metadata.get("body_part"))
    if not isinstance(main_module, str) or not main_module:
        raise errors.invalid_upload("metadata.main_module must name the module that is the Worker's entry point")
    if main_module not in modules:
        raise errors.invalid_upload(
            f"the main module {main_module!r} is not among the uploaded module parts {sorted(modules)}"
        )
    date = metadata.get("compatibility_date", DEFAULT_COMPATIBILITY_DATE)
    if not isinstance(date, str) or not _DATE.match(date):
        raise errors.invalid_upload(f"metadata.compatibility_date must be YYYY-MM-DD, got {date!r}")
    flags = metadata.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise errors.invalid_upload(f"metadata.compatibility_flags must be a list of strings, got {flags!r}")
    keep = metadata.get("keep_bindings", [])
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise errors.invalid_upload(f"metadata.keep_bindings must be a list of binding types, got {keep!r}")
    migrations = metadata.get("migrations")
    if migrations is not None and not (isinstance(migrations, dict) and isinstance(migrations.get("new_tag"), str)):
        raise errors.invalid_upload(f"metadata.migrations must be an object with a string new_tag, got {migrations!r}")
    return VersionUpload(
        migration_tag=None if migrations is None else migrations["new_tag"],
        main_module=main_module,
        modules=modules,
        bindings=_bindings(metadata.get("bindings", [])),
        annotations=_annotations(metadata.get("annotations", {})),
        compatibility_date=date,
        compatibility_flags=tuple(flags),
        keep_bindings=tuple(keep),
    )


def _bindings(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise errors.invalid_upload(f"metadata.bindings must be a list, got {type(raw).__name__}")
    seen: set[str] = set()
    bindings: list[dict[str, Any]] = []
    for index, binding in enumerate(raw):
        where = f"metadata.bindings[{index}]"
        if not isinstance(binding, dict):
            raise errors.invalid_upload(f"{where} must be an object, got {shown(binding)}")
        kind, name = binding.get("type"), binding.get("name")
        if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
            raise errors.invalid_upload(f"{where} needs a non-empty string 'type' and 'name', got {shown(binding)}")
        if name in seen:
            raise errors.invalid_upload(f"{where}: the binding name {name!r} is used twice")
        if kind in _TEXT_BINDINGS and not isinstance(binding.get("text"), str):
            raise errors.invalid_upload(f"{where}: a {kind} binding needs a string 'text'")
        if kind == INHERIT and not all(isinstance(binding.get(k), (str, type(None))) for k in ("version_id", "old_name")):
            raise errors.invalid_upload(f"{where}: an inherit binding's version_id and old_name must be strings")
        seen.add(name)
        bindings.append(dict(binding))
    return bindings


def _annotations(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise errors.invalid_upload(f"metadata.annotations must be an object, got {type(raw).__name__}")
    annotations: dict[str, str] = {}
    for key, value in raw.items():
        if key in SERVER_SET_ANNOTATIONS:
            continue  # set by the API itself ("upload"), as upstream does
        if not isinstance(value, str):
            raise errors.invalid_upload(f"annotation {key!r} must be a string, got {value!r}")
        annotations[key] = value.encode("utf-8")[:MAX_ANNOTATION_BYTES].decode("utf-8", errors="ignore")
    return annotations
