"""HTTP answers about the Worker as a whole, around its versions: what ``wrangler deploy`` and
``versions upload``/``deploy`` read and write before and after they upload, and what the SDK lists
(notes/real-clients.md, "What the embedded staging still lacks").

- ``GET .../workers/scripts`` (the account's Workers), ``GET .../workers/scripts/{name}`` (the serving
  code, raw), ``PUT .../workers/scripts/{name}`` (upload *and* deploy at once: what ``wrangler deploy``
  uses for a Worker with Durable Object migrations, or a new one);
- ``GET .../workers/services/{name}`` (the first request of ``deploy`` and ``versions upload``; 10007 for
  an unknown Worker, which wrangler reads as "a new Worker");
- ``GET/PATCH .../scripts/{name}/script-settings`` and ``.../settings`` (the latter with bindings: a
  bindings change is a new version, deployed, like a secret edit);
- ``GET/POST/DELETE .../scripts/{name}/subdomain``, ``GET .../workers/subdomain`` (workers.dev),
  ``GET/PUT .../scripts/{name}/schedules`` (cron triggers);
- wrangler 4.1xx's Workers API: ``GET/PATCH .../workers/workers/{name}`` and ``PATCH
  .../workers/workers/{name}/versions/latest`` (``versions secret put``: a new version, not deployed).
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..state import Staging
from . import errors
from .envelope import check_account, ok
from .request_parsing import client_source, json_object, parse_json, parse_multipart, read_body, shown
from .script_settings import USAGE_MODEL, WORKERS_DEV_SUBDOMAIN, ScriptSettings
from .version_edits import check_secret, deploy_secret_version, derive_version, require_latest_fully_deployed
from .version_start import start_version
from .version_upload import parse_version_upload
from .workers import SECRET_BINDING, Version, WorkersModel
from .workers_api import public_bindings, script_workers

INHERIT_BY_NAME = {"type", "name"}  # a settings binding with only these keys keeps the existing one


def script_tag(workers: WorkersModel) -> str:
    """The Worker's 32-hex ``tag``, stable for the life of the staging (not drawn from the seeded
    random source, so that adding it changed no seeded id)."""
    return hashlib.md5(f"{workers.script}\0{workers.author_id}".encode()).hexdigest()


def script_json(workers: WorkersModel) -> dict[str, Any]:
    """The Worker as ``GET .../workers/scripts`` lists it (and ``services`` nests it)."""
    serving = workers.main_serving_version()
    settings = workers.settings
    body: dict[str, Any] = {
        "id": workers.script,
        "tag": script_tag(workers),
        "etag": serving.etag,
        "handlers": list(serving.handlers),
        "named_handlers": [],
        "created_on": settings.created_on,
        "modified_on": workers.serving_deployment().created_on,
        "usage_model": USAGE_MODEL,
        "compatibility_date": serving.compatibility_date,
        "compatibility_flags": list(serving.compatibility_flags),
        "last_deployed_from": serving.source,
        "has_assets": False,
        "has_modules": True,
        "placement": {},
        **settings.non_versioned(),
    }
    if settings.migration_tag is not None:
        body["migration_tag"] = settings.migration_tag
    return body


def subdomain_json(settings: ScriptSettings) -> dict[str, bool]:
    return {"enabled": settings.workers_dev, "previews_enabled": settings.previews_enabled}


def worker_json(workers: WorkersModel) -> dict[str, Any]:
    """The Worker in the Workers API of wrangler 4.1xx (``/workers/workers/{name}``)."""
    settings = workers.settings
    return {
        "id": script_tag(workers),
        "name": workers.script,
        "created_on": settings.created_on,
        "updated_on": workers.serving_deployment().created_on,
        "logpush": settings.logpush,
        "observability": dict(settings.observability),
        "subdomain": subdomain_json(settings),
        "tags": list(settings.tags),
        "tail_consumers": [] if settings.tail_consumers is None else [dict(c) for c in settings.tail_consumers],
        "references": {"dispatch_namespace_outbounds": [], "domains": [], "durable_objects": [], "queues": []},
    }


def worker_version_json(version: Version) -> dict[str, Any]:
    """A version in the Workers API of wrangler 4.1xx; secret texts are never shown."""
    return {
        "id": version.id,
        "number": version.number,
        "created_on": version.created_on,
        "source": version.source,
        "annotations": dict(version.annotations),
        "main_module": version.main_module,
        "compatibility_date": version.compatibility_date,
        "compatibility_flags": list(version.compatibility_flags),
        "bindings": public_bindings(version.bindings),
        "startup_time_ms": version.startup_time_ms,
        "usage_model": USAGE_MODEL,
    }


def settings_json(workers: WorkersModel) -> dict[str, Any]:
    """``GET .../scripts/{name}/settings``: the serving version's bindings and compatibility, with the
    script's non-versioned settings."""
    serving = workers.main_serving_version()
    return {
        "bindings": public_bindings(serving.bindings),
        "compatibility_date": serving.compatibility_date,
        "compatibility_flags": list(serving.compatibility_flags),
        "usage_model": USAGE_MODEL,
        "placement": {},
        "limits": {},
        **workers.settings.non_versioned(),
    }


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise errors.invalid_request(f"{key} must be true or false, got {value!r}")
    return value


def non_versioned_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The ``script-settings`` fields a PATCH may change, checked; absent ones stay as they are."""
    changes: dict[str, Any] = {}
    if "logpush" in body:
        changes["logpush"] = _bool(body, "logpush", False)
    if "observability" in body:
        observability = body["observability"]
        if not isinstance(observability, dict):
            raise errors.invalid_request(f"observability must be an object, got {observability!r}")
        changes["observability"] = dict(observability)
    if "tail_consumers" in body:
        consumers = body["tail_consumers"]
        if consumers is not None and not (isinstance(consumers, list) and all(isinstance(c, dict) for c in consumers)):
            raise errors.invalid_request(f"tail_consumers must be a list of objects, got {consumers!r}")
        changes["tail_consumers"] = None if consumers is None else tuple(dict(c) for c in consumers)
    if "tags" in body:
        tags = body["tags"]
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise errors.invalid_request(f"tags must be a list of strings, got {tags!r}")
        changes["tags"] = tuple(tags or ())
    return changes


class ScriptsApi:
    """The endpoints; every one checks the account (and the Worker's name, where the path has one)."""

    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _account(self, request: Request) -> WorkersModel:
        check_account(request.path_params["account_id"], self._staging.config.account_id)
        return self._staging.workers

    def _workers(self, request: Request) -> WorkersModel:
        return script_workers(self._staging, request)

    # --- the account's Workers -----------------------------------------------------------------
    async def list_scripts(self, request: Request) -> Response:
        """GET .../workers/scripts: the one Worker this staging has."""
        return ok([script_json(self._account(request))])

    async def account_subdomain(self, request: Request) -> Response:
        """GET .../workers/subdomain: the account's ``<subdomain>.workers.dev``."""
        self._account(request)
        return ok({"subdomain": WORKERS_DEV_SUBDOMAIN})

    async def get_service(self, request: Request) -> Response:
        """GET .../workers/services/{name}: the Worker with its default (production) environment."""
        workers = self._workers(request)
        script = script_json(workers)
        environment = {"environment": "production", "created_on": script["created_on"],
                       "modified_on": script["modified_on"], "script": script}
        return ok({"id": workers.script, "default_environment": environment, "created_on": script["created_on"],
                   "modified_on": script["modified_on"], "usage_model": USAGE_MODEL,
                   "environments": [{k: v for k, v in environment.items() if k != "script"}]})

    # --- the Worker's code ---------------------------------------------------------------------
    async def get_script(self, request: Request) -> Response:
        """GET .../workers/scripts/{name}: the serving version's main module, raw (the SDK's
        ``workers.scripts.get``)."""
        serving = self._workers(request).main_serving_version()
        return Response(serving.modules.get(serving.main_module, b""), media_type="application/javascript")

    async def put_script(self, request: Request) -> Response:
        """PUT .../workers/scripts/{name}: a version uploaded and deployed to 100% in one call; the
        answer is the Worker, with ``deployment_id`` naming the new version (as wrangler reads it)."""
        workers = self._workers(request)
        upload = await parse_version_upload(request)
        latest = workers.versions_newest_first()[0] if workers.versions else None
        source = client_source(request)
        version = workers.upload(
            bindings=upload.resolve_bindings(latest, workers.get_version,
                                             strict=request.query_params.get("bindings_inherit") == "strict"),
            annotations=upload.annotations,
            main_module=upload.main_module,
            modules=upload.modules,
            source=source,
            compatibility_date=upload.compatibility_date,
            compatibility_flags=upload.compatibility_flags,
        )
        version = await start_version(self._staging, version)
        workers.deploy([(version.id, 100)], annotations={"workers/triggered_by": "upload"}, source=source, force=True)
        if upload.migration_tag is not None:
            workers.settings = workers.settings.with_changes(migration_tag=upload.migration_tag)
        return ok({**script_json(workers), "deployment_id": version.id, "startup_time_ms": version.startup_time_ms})

    # --- settings ------------------------------------------------------------------------------
    async def get_script_settings(self, request: Request) -> Response:
        """GET .../script-settings: the settings that are not versioned."""
        return ok(self._workers(request).settings.non_versioned())

    async def patch_script_settings(self, request: Request) -> Response:
        """PATCH .../script-settings (JSON): change logpush, observability, tail consumers or tags."""
        workers = self._workers(request)
        changes = non_versioned_changes(await json_object(request, "script settings"))
        workers.settings = workers.settings.with_changes(**changes)
        return ok(workers.settings.non_versioned())

    async def get_settings(self, request: Request) -> Response:
        """GET .../settings: bindings and compatibility of the serving version, with the rest."""
        return ok(settings_json(self._workers(request)))

    async def patch_settings(self, request: Request) -> Response:
        """PATCH .../settings (multipart, a ``settings`` JSON part, or JSON): the non-versioned fields
        change in place; ``bindings`` (wrangler 4.86's ``secret bulk``) is the whole new list, where
        ``{type, name}`` alone keeps the existing binding: a new version, deployed at 100%."""
        workers = self._workers(request)
        body = await _settings_body(request)
        if "bindings" in body:
            source = client_source(request)
            version = derive_version(workers, self._binding_changes(workers, body["bindings"]), source=source)
            deploy_secret_version(workers, await start_version(self._staging, version), source=source)
        workers.settings = workers.settings.with_changes(**non_versioned_changes(body))
        return ok(settings_json(workers))

    @staticmethod
    def _binding_changes(workers: WorkersModel, raw: Any) -> dict[str, dict[str, Any] | None]:
        if not isinstance(raw, list) or not all(isinstance(b, dict) and isinstance(b.get("name"), str) for b in raw):
            raise errors.invalid_request(f"settings.bindings must be a list of bindings with names, got {shown(raw)}")
        latest = require_latest_fully_deployed(workers)
        existing = {b["name"]: b for b in latest.bindings}
        changes: dict[str, dict[str, Any] | None] = {name: None for name in existing}
        for binding in raw:
            name = binding["name"]
            if set(binding) <= INHERIT_BY_NAME:
                if name not in existing:
                    raise errors.invalid_request(f"binding {name!r} keeps an existing binding, but there is none")
                changes[name] = dict(existing[name])
            else:
                if binding.get("type") == SECRET_BINDING:
                    check_secret(name, binding.get("text"))
                changes[name] = dict(binding)
        return changes

    # --- workers.dev and cron triggers ---------------------------------------------------------
    async def get_subdomain(self, request: Request) -> Response:
        """GET .../scripts/{name}/subdomain: is the Worker on workers.dev (and its previews)."""
        return ok(subdomain_json(self._workers(request).settings))

    async def post_subdomain(self, request: Request) -> Response:
        """POST .../scripts/{name}/subdomain ``{enabled, previews_enabled}``."""
        workers = self._workers(request)
        body = await json_object(request, "subdomain body")
        settings = workers.settings
        enabled = _bool(body, "enabled", settings.workers_dev)
        workers.settings = settings.with_changes(workers_dev=enabled,
                                                 previews_enabled=_bool(body, "previews_enabled", enabled))
        return ok(subdomain_json(workers.settings))

    async def delete_subdomain(self, request: Request) -> Response:
        """DELETE .../scripts/{name}/subdomain: off workers.dev."""
        workers = self._workers(request)
        workers.settings = workers.settings.with_changes(workers_dev=False, previews_enabled=False)
        return ok(None)

    async def get_schedules(self, request: Request) -> Response:
        """GET .../scripts/{name}/schedules: the cron triggers."""
        return ok({"schedules": [dict(s) for s in self._workers(request).settings.schedules]})

    async def put_schedules(self, request: Request) -> Response:
        """PUT .../scripts/{name}/schedules ``[{"cron": ...}]``: replaces the cron triggers."""
        workers = self._workers(request)
        raw = parse_json(await read_body(request), "schedules body")
        if not isinstance(raw, list) or not all(isinstance(s, dict) and isinstance(s.get("cron"), str) for s in raw):
            raise errors.invalid_request(f"the schedules body must be a list of {{\"cron\": ...}}, got {raw!r}")
        now = self._staging.clock.iso()
        schedules = tuple({"cron": s["cron"], "created_on": now, "modified_on": now} for s in raw)
        workers.settings = workers.settings.with_changes(schedules=schedules)
        return ok({"schedules": [dict(s) for s in schedules]})

    # --- the Workers API of wrangler 4.1xx -----------------------------------------------------
    async def get_worker(self, request: Request) -> Response:
        """GET .../workers/workers/{name}."""
        return ok(worker_json(self._workers(request)))

    async def patch_worker(self, request: Request) -> Response:
        """PATCH .../workers/workers/{name} (JSON merge patch): the non-versioned settings and the
        workers.dev ``subdomain``."""
        workers = self._workers(request)
        body = await json_object(request, "worker patch")
        changes = non_versioned_changes(body)
        subdomain = body.get("subdomain")
        if subdomain is not None:
            if not isinstance(subdomain, dict):
                raise errors.invalid_request(f"subdomain must be an object, got {subdomain!r}")
            settings = workers.settings
            changes["workers_dev"] = _bool(subdomain, "enabled", settings.workers_dev)
            changes["previews_enabled"] = _bool(subdomain, "previews_enabled", settings.previews_enabled)
        workers.settings = workers.settings.with_changes(**changes)
        return ok(worker_json(workers))

    async def patch_latest_version(self, request: Request) -> Response:
        """PATCH .../workers/workers/{name}/versions/latest ``{"env": {NAME: binding | null},
        "annotations": {...}}``: a copy of the latest version with these bindings set or removed, not
        deployed (wrangler 4.1xx's ``versions secret put/delete/bulk``)."""
        workers = self._workers(request)
        body = await json_object(request, "version patch")
        env = body.get("env", {})
        annotations = body.get("annotations", {})
        if not isinstance(env, dict):
            raise errors.invalid_request(f"env must be an object of bindings by name, got {shown(env)}")
        if not isinstance(annotations, dict):
            raise errors.invalid_request(f"annotations must be an object, got {annotations!r}")
        changes: dict[str, dict[str, Any] | None] = {}
        for name, binding in env.items():
            if binding is not None and not (isinstance(binding, dict) and isinstance(binding.get("type"), str)):
                raise errors.invalid_request(f"env.{name} must be a binding with a type, or null, got {shown(binding)}")
            if binding is not None and binding["type"] == SECRET_BINDING:
                check_secret(name, binding.get("text"))
            changes[name] = None if binding is None else {**binding, "name": name}
        version = derive_version(workers, changes, annotations=annotations, source=client_source(request))
        return ok(worker_version_json(await start_version(self._staging, version)))


async def _settings_body(request: Request) -> dict[str, Any]:
    """A settings PATCH: multipart with a ``settings`` part (wrangler, the SDK) or plain JSON."""
    content_type = request.headers.get("content-type", "")
    raw = await read_body(request)
    if content_type.lower().startswith("multipart/form-data"):
        parts = await parse_multipart(content_type, raw)
        if "settings" not in parts:
            raise errors.invalid_request(f"a multipart settings PATCH needs a 'settings' part; got {sorted(parts)}")
        raw = parts["settings"]
    body = parse_json(raw, "settings")
    if not isinstance(body, dict):
        raise errors.invalid_request(f"the settings must be a JSON object, got {type(body).__name__}")
    return body
