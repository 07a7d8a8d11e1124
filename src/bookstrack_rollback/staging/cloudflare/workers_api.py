"""HTTP answers for Worker versions and deployments: parse the request, call :mod:`.workers`, shape
the wire answer (contract/cloudflare-api.md, "Versions" and "Deployments"; the fields follow
notes/real-clients.md, "What an emulator should do").
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..state import Staging
from . import errors
from .envelope import check_account, ok
from .request_parsing import MAX_PER_PAGE, Page, client_source, flag, json_object
from .version_start import start_version
from .version_upload import parse_version_upload
from .workers import SECRET_BINDING, Deployment, Version, WorkersModel


def public_bindings(bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bindings as every answer shows them: a secret's name and type, never its text."""
    return [{k: v for k, v in b.items() if not (b.get("type") == SECRET_BINDING and k == "text")} for b in bindings]


def version_json(version: Version, *, resources: bool) -> dict[str, Any]:
    """A version as the API shows it; ``resources`` and ``startup_time_ms`` only on
    ``GET .../versions/{id}`` and uploads. Secret texts are never shown."""
    body: dict[str, Any] = {
        "id": version.id,
        "number": version.number,
        "metadata": {
            "author_email": version.author_email,
            "author_id": version.author_id,
            "created_on": version.created_on,
            "modified_on": version.created_on,
            "source": version.source,
            "hasPreview": False,
        },
        "annotations": dict(version.annotations),
    }
    if resources:
        body["startup_time_ms"] = version.startup_time_ms
        body["resources"] = {
            "bindings": public_bindings(version.bindings),
            "script": {"etag": version.etag, "handlers": list(version.handlers), "last_deployed_from": version.source},
            "script_runtime": {
                "compatibility_date": version.compatibility_date,
                "compatibility_flags": list(version.compatibility_flags),
                "usage_model": "standard",
                "limits": {},
            },
        }
    return body


MODULE_TYPES = {".js": "application/javascript+module", ".mjs": "application/javascript+module",
                ".cjs": "application/javascript", ".wasm": "application/wasm", ".map": "application/source-map",
                ".txt": "text/plain", ".json": "application/json"}


def module_multipart(version: Version) -> tuple[bytes, str]:
    """(body, Content-Type) of a version's modules as multipart/form-data, the main module first."""
    names = [version.main_module, *sorted(n for n in version.modules if n != version.main_module)]
    boundary = "staging-" + version.etag[:32]
    while any(boundary.encode() in code for code in version.modules.values()):
        boundary += "x"
    chunks = []
    for name in names:
        kind = MODULE_TYPES.get(name[name.rfind("."):] if "." in name else "", "application/octet-stream")
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"; filename="{quoted}"\r\n'
                      f"Content-Type: {kind}\r\n\r\n".encode() + version.modules.get(name, b"") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "created_on": deployment.created_on,
        "source": deployment.source,
        "strategy": deployment.strategy,
        "author_email": deployment.author_email,
        "annotations": dict(deployment.annotations),
        "versions": [{"version_id": v, "percentage": p} for v, p in deployment.versions],
    }


def script_workers(staging: Staging, request: Request) -> WorkersModel:
    """The Worker a ``.../scripts/{script}/...`` request names, after its account is checked."""
    check_account(request.path_params["account_id"], staging.config.account_id)
    script = request.path_params["script"]
    workers = staging.workers
    if script != workers.script:
        raise errors.script_not_found(script, only=workers.script)
    return workers


class WorkersApi:
    """The endpoints; every one checks the account and the script name first."""

    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _workers(self, request: Request) -> WorkersModel:
        return script_workers(self._staging, request)

    # --- versions ----------------------------------------------------------------------------
    async def list_versions(self, request: Request) -> Response:
        """GET .../versions[?deployable=true&page=&per_page=]: ``result.items`` newest first (contract,
        "Versions"); ``deployable=true`` keeps the versions that can still be deployed (the 10 newest);
        the SDK pages until a page is empty, so a page past the end is empty."""
        workers = self._workers(request)
        deployable = request.query_params.get("deployable", "false").lower()
        if deployable not in ("true", "false"):
            raise errors.invalid_request(f"query parameter deployable must be true or false, got {deployable!r}")
        versions = workers.versions_newest_first(deployable_only=deployable == "true")
        items, info = Page.of(request).slice(versions)
        return ok({"items": [version_json(v, resources=False) for v in items]}, result_info=info)

    async def get_version(self, request: Request) -> Response:
        """GET .../versions/{version_id}: one version with ``resources`` (contract, "Versions")."""
        workers = self._workers(request)
        return ok(version_json(workers.require_version(request.path_params["version_id"]), resources=True))

    async def get_content(self, request: Request) -> Response:
        """GET .../content/v2[?version=ID]: a version's code (default: the serving one) as
        multipart/form-data, one part per module, the ``cf-entrypoint`` header naming the main module:
        what ``wrangler versions secret put`` reads to copy a version, and what the drill copies to
        make a test change of a real worker."""
        workers = self._workers(request)
        version_id = request.query_params.get("version")
        if version_id is None:
            serving = workers.serving_deployment().versions
            version_id = max(serving, key=lambda pair: pair[1])[0]
        version = workers.require_version(version_id)
        body, content_type = module_multipart(version)
        return Response(body, media_type=None, headers={"content-type": content_type,
                                                        "cf-entrypoint": version.main_module})

    async def script_settings(self, request: Request) -> Response:
        """GET .../script-settings: the script's settings that are not versioned (wrangler reads them
        when it copies a version); this staging has no logpush, tail consumers or observability."""
        self._workers(request)
        return ok({"logpush": False, "tail_consumers": None, "observability": {"enabled": False}})

    async def upload_version(self, request: Request) -> Response:
        """POST .../versions (multipart: ``metadata`` + modules) -> the new version, not deployed
        (contract, "Versions")."""
        workers = self._workers(request)
        upload = await parse_version_upload(request)
        latest = workers.versions_newest_first()[0] if workers.versions else None
        version = workers.upload(
            bindings=upload.resolve_bindings(latest, workers.get_version, strict=_strict_inherit(request)),
            annotations=upload.annotations,
            main_module=upload.main_module,
            modules=upload.modules,
            source=client_source(request),
            compatibility_date=upload.compatibility_date,
            compatibility_flags=upload.compatibility_flags,
        )
        version = await start_version(self._staging, version)  # workerd mode: the code must start (else 10021)
        return ok(version_json(version, resources=True))

    # --- deployments -------------------------------------------------------------------------
    async def list_deployments(self, request: Request) -> Response:
        """GET .../deployments: newest first, the serving one first, under both ``deployments``
        (wrangler) and ``items`` (SDK 5.9); page 2 and later are empty unless ``per_page`` is smaller
        (contract, "Deployments", client quirks)."""
        workers = self._workers(request)
        items, info = Page.of(request, default_per_page=MAX_PER_PAGE).slice(workers.deployments)
        shown = [deployment_json(d) for d in items]
        return ok({"deployments": shown, "items": shown}, result_info=info)

    async def create_deployment(self, request: Request) -> Response:
        """POST .../deployments[?force=true]: a new deployment; a rollback is just this (contract,
        "Deployments"). Refused with 10220 over a changed secret unless forced."""
        workers = self._workers(request)
        body = await json_object(request, "deployment body")
        traffic = _traffic(body)
        annotations = _annotations(body.get("annotations", {}))
        strategy = body.get("code_update_strategy")
        if strategy is not None and not isinstance(strategy, dict):
            raise errors.invalid_deployment(f"code_update_strategy must be an object, got {strategy!r}")
        deployment = workers.deploy(
            traffic, annotations=annotations, source=client_source(request), force=flag(request, "force")
        )
        return ok(deployment_json(deployment))

    async def get_deployment(self, request: Request) -> Response:
        """GET .../deployments/{deployment_id} (contract, "Deployments")."""
        workers = self._workers(request)
        return ok(deployment_json(workers.get_deployment(request.path_params["deployment_id"])))

    async def delete_deployment(self, request: Request) -> Response:
        """DELETE .../deployments/{deployment_id}: not the serving one (contract, "Deployments")."""
        workers = self._workers(request)
        workers.delete_deployment(request.path_params["deployment_id"])
        return ok(None)


def _strict_inherit(request: Request) -> bool:
    mode = request.query_params.get("bindings_inherit")
    if mode not in (None, "strict"):
        raise errors.invalid_request(f"query parameter bindings_inherit must be \"strict\", got {mode!r}")
    return mode == "strict"


def _traffic(body: dict[str, Any]) -> list[tuple[str, float]]:
    strategy = body.get("strategy")
    if strategy != "percentage":
        raise errors.invalid_deployment(f"strategy must be \"percentage\", got {strategy!r}")
    versions = body.get("versions")
    if not isinstance(versions, list) or not versions:
        raise errors.invalid_deployment(
            f"versions must be a non-empty list of {{version_id, percentage}}, got {versions!r}"
        )
    traffic: list[tuple[str, float]] = []
    for index, entry in enumerate(versions):
        version_id = entry.get("version_id") if isinstance(entry, dict) else None
        percentage = entry.get("percentage") if isinstance(entry, dict) else None
        if not isinstance(version_id, str) or not version_id:
            raise errors.invalid_deployment(f"versions[{index}].version_id must be a version id, got {entry!r}")
        if isinstance(percentage, bool) or not isinstance(percentage, (int, float)):
            raise errors.invalid_deployment(f"versions[{index}].percentage must be a number, got {entry!r}")
        traffic.append((version_id, float(percentage)))
    return traffic


def _annotations(raw: Any) -> dict[str, str]:
    """What the client sent, kept as sent (wrangler sends only ``workers/message``)."""
    if not isinstance(raw, dict):
        raise errors.invalid_deployment(f"annotations must be an object, got {raw!r}")
    annotations: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise errors.invalid_deployment(f"annotation {key!r} must be a string, got {value!r}")
        annotations[key] = value.encode("utf-8")[:1000].decode("utf-8", errors="ignore")
    return annotations
