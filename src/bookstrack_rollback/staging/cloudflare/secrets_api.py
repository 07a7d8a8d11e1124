"""HTTP answers for a Worker's secrets (``wrangler secret put/list/delete/bulk``, the SDK's
``workers.scripts.secrets``): ``/workers/scripts/{name}/secrets[/{secret}]`` and wrangler 4.1xx's
``PATCH .../secrets-bulk``. Each change is a new version, deployed at 100% (:mod:`.version_edits`).

A secret's text goes in and never comes out: the answers name secrets and their type only.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..state import Staging
from . import errors
from .envelope import ok
from .request_parsing import client_source, json_object, shown
from .version_edits import deploy_secret_version, derive_version, secret_changes, secret_names
from .version_start import start_version
from .workers_api import script_workers
from .workers import SECRET_BINDING, WorkersModel


def secret_json(name: str) -> dict[str, str]:
    return {"name": name, "type": SECRET_BINDING}


def _secret_text(name: Any, body: dict[str, Any]) -> str:
    kind = body.get("type", SECRET_BINDING)
    if kind != SECRET_BINDING:
        raise errors.invalid_secret(f"secret {name!r} has type {kind!r}; this staging keeps only {SECRET_BINDING!r}")
    text = body.get("text")
    if not isinstance(text, str):
        raise errors.invalid_secret(f"the text of secret {name!r} must be a string")
    return text


class SecretsApi:
    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _workers(self, request: Request) -> WorkersModel:
        return script_workers(self._staging, request)

    async def _change(self, request: Request, workers: WorkersModel, secrets: dict[str, str | None]) -> None:
        source = client_source(request)
        version = derive_version(workers, secret_changes(workers, secrets), source=source)
        deploy_secret_version(workers, await start_version(self._staging, version), source=source)

    async def list_secrets(self, request: Request) -> Response:
        """GET .../secrets: the serving version's secrets, ``[{name, type}]``."""
        workers = self._workers(request)
        return ok([secret_json(name) for name in secret_names(workers.main_serving_version())])

    async def get_secret(self, request: Request) -> Response:
        """GET .../secrets/{secret}: one secret's name and type (never its text)."""
        workers = self._workers(request)
        name = request.path_params["secret"]
        if name not in workers.main_serving_version().secrets():
            raise errors.secret_not_found(name, workers.script)
        return ok(secret_json(name))

    async def put_secret(self, request: Request) -> Response:
        """PUT .../secrets ``{name, text, type: "secret_text"}``: set one secret (a new version, deployed)."""
        workers = self._workers(request)
        body = await json_object(request, "secret")
        name = body.get("name")
        text = _secret_text(name, body)
        if not isinstance(name, str):
            raise errors.invalid_secret(f"name must be a string, got {name!r}")
        await self._change(request, workers, {name: text})
        return ok(secret_json(name))

    async def delete_secret(self, request: Request) -> Response:
        """DELETE .../secrets/{secret}[?url_encoded=true]: remove one secret (a new version, deployed)."""
        workers = self._workers(request)
        await self._change(request, workers, {request.path_params["secret"]: None})
        return ok(None)

    async def patch_secrets_bulk(self, request: Request) -> Response:
        """PATCH .../secrets-bulk ``{"secrets": {NAME: {name, text, type} | null}}`` (JSON merge patch):
        set and remove several secrets in one new version, deployed."""
        workers = self._workers(request)
        body = await json_object(request, "secrets patch")
        raw = body.get("secrets")
        if not isinstance(raw, dict) or not raw:
            raise errors.invalid_secret(f"secrets must be a non-empty object of secrets by name, got {shown(raw)}")
        secrets: dict[str, str | None] = {}
        for name, entry in raw.items():
            if entry is not None and not isinstance(entry, dict):
                raise errors.invalid_secret(f"secrets.{name} must be an object or null")
            secrets[name] = None if entry is None else _secret_text(name, entry)
        await self._change(request, workers, secrets)
        return ok([secret_json(name) for name in secret_names(workers.main_serving_version())])
