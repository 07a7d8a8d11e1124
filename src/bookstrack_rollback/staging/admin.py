"""Admin routes, under their own prefix and never part of an emulated API: reset, seed, runtime
faults (the KV flag), configuration knobs, the users' traffic (users.py), the request log, and the
webhook sink that a drill's notifications go to (ROLLBACK_PROCEDURE.md, "Communication Procedures")."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..faults import FaultProfileError, parse_fault_profile
from .base import RUNTIME_FAULT_KEY
from .state import Staging
from .users_traffic import UsersTrafficError, users_from_dict
from .webhook_sink import MAX_BODY_BYTES

PREFIX = "/__staging"
_TUNABLE = {"ingestion_lag_s": float, "health_shape": str, "health_status": str}
_HEALTH_STATUSES = ("ok", "degraded")
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    return json.loads(raw)


def describe(staging: Staging, base_url: str = "") -> dict[str, Any]:
    """What a client needs to know (the token is shown only to whoever started the staging)."""
    config = staging.config
    serving = staging.workers.serving_deployment()
    return {
        "bookstrack_base_url": base_url,
        "cloudflare_api_url": f"{base_url}/client/v4",
        "account_id": config.account_id,
        "worker_name": config.worker_name,
        "kv_namespace_id": config.kv_namespace_id,
        "datasets": {"performance": config.performance_dataset, "cache": config.cache_dataset},
        "seed": config.seed,
        "ingestion_lag_s": config.ingestion_lag_s,
        "health_shape": config.health_shape,
        "health_status": config.health_status,
        "users": config.users.to_dict(),
        "serving_deployment": serving.id,
        "serving_versions": [{"version_id": v, "percentage": p} for v, p in serving.versions],
        "runtime": staging.runtime.describe() if staging.runtime is not None else {"name": "python"},
    }


def users_answer(staging: Staging) -> dict[str, Any]:
    """The users' traffic in force and what the users sent and got back since the last reset."""
    return {"users": staging.config.users.to_dict(), "counters": staging.users.counters.to_dict()}


def routes(staging: Staging) -> list[BaseRoute]:
    async def info(request: Request) -> Response:
        return JSONResponse(describe(staging, str(request.base_url).rstrip("/")))

    async def reset(request: Request) -> Response:
        try:
            body = await _json_body(request)
            seed = body.get("seed") if isinstance(body, dict) else None
            if seed is not None and not isinstance(seed, int):
                return _problem(400, f"seed must be an integer, got {seed!r}")
        except json.JSONDecodeError as exc:
            return _problem(400, f"the reset body is not JSON: {exc}")
        staging.reset(seed=seed)
        return JSONResponse({"reset": True, "seed": staging.config.seed})

    async def config(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(describe(staging, str(request.base_url).rstrip("/")))
        try:
            body = await _json_body(request)
        except json.JSONDecodeError as exc:
            return _problem(400, f"the config body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _problem(400, "the config body must be a JSON object")
        changes: dict[str, Any] = {}
        for key, value in body.items():
            kind = _TUNABLE.get(key)
            if kind is None:
                return _problem(400, f"{key!r} cannot be changed at runtime; tunable: {sorted(_TUNABLE)}")
            try:
                changes[key] = kind(value)
            except (TypeError, ValueError):
                return _problem(400, f"{key} must be a {kind.__name__}, got {value!r}")
        if changes.get("health_shape", "version") not in ("version", "constant"):
            return _problem(400, "health_shape must be 'version' or 'constant'")
        if changes.get("health_status", "ok") not in _HEALTH_STATUSES:
            return _problem(400, f"health_status must be 'ok' or 'degraded', got {changes['health_status']!r}")
        staging.config = staging.config.with_overrides(**changes)
        return JSONResponse(describe(staging, str(request.base_url).rstrip("/")))

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            raw = staging.kv.get_own(RUNTIME_FAULT_KEY)
            return JSONResponse({"runtime": json.loads(raw) if raw else None})
        if request.method == "DELETE":
            removed = staging.kv.delete_own(RUNTIME_FAULT_KEY)
            return JSONResponse({"cleared": removed})
        raw = await request.body()
        try:
            profile = parse_fault_profile(raw.decode("utf-8", errors="replace"))
        except FaultProfileError as exc:
            return _problem(400, str(exc))
        staging.kv.put_own(RUNTIME_FAULT_KEY, profile.to_json().encode())
        staging.books.on_runtime_fault(profile)
        return JSONResponse({"runtime": profile.to_dict()})

    async def users(request: Request) -> Response:
        """GET: the users' traffic and counters; PUT: replace the traffic (400 changes nothing)."""
        if request.method == "PUT":
            try:
                traffic = users_from_dict(await _json_body(request))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return _problem(400, f"the users body is not JSON: {exc}")
            except UsersTrafficError as exc:
                return _problem(400, str(exc))
            staging.configure_users(traffic)
        return JSONResponse(users_answer(staging))

    async def requests_log(request: Request) -> Response:
        try:
            since = float(request.query_params.get("since", "0"))
        except ValueError:
            return _problem(400, "since must be a number (epoch seconds)")
        api = request.query_params.get("api")
        records = [
            r.as_json()
            for r in staging.request_log.records
            if r.at >= since and (api is None or r.api == api)
        ]
        return JSONResponse({"requests": records, "count": len(records)})

    async def webhook_post(request: Request) -> Response:
        """POST /__staging/webhooks/{channel}: keep the JSON body (200 {"ok": true}); an injected
        failure answers 503, a body over 256 KiB 413, a body that is not a JSON object 400."""
        channel = request.path_params["channel"]
        if not _CHANNEL.fullmatch(channel):
            return _problem(400, f"a webhook channel is 1-80 letters, digits, '.', '_' or '-', got {channel!r}")
        left = staging.webhooks.take_failure(channel)
        if left is not None:
            return _problem(503, f"injected failure for channel {channel!r} ({left} more to come)")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _problem(413, f"a webhook body is at most {MAX_BODY_BYTES} bytes, this one has {declared}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return _problem(413, f"a webhook body is at most {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _problem(400, f"the webhook body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _problem(400, f"the webhook body must be a JSON object, got {type(body).__name__}")
        staging.webhooks.receive(channel, body, staging.clock.now())
        return JSONResponse({"ok": True})

    async def webhook_list(request: Request) -> Response:
        """GET /__staging/webhooks[?channel=]: the kept messages, oldest first."""
        messages = [m.as_json(staging.clock) for m in staging.webhooks.of(request.query_params.get("channel"))]
        return JSONResponse({"messages": messages, "count": len(messages)})

    async def webhook_failures(request: Request) -> Response:
        """PUT /__staging/webhooks/{channel}/failures {"count": N}: the next N posts answer 503."""
        channel = request.path_params["channel"]
        if not _CHANNEL.fullmatch(channel):
            return _problem(400, f"a webhook channel is 1-80 letters, digits, '.', '_' or '-', got {channel!r}")
        try:
            body = await _json_body(request)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _problem(400, f"the failures body is not JSON: {exc}")
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1000:
            return _problem(400, f'the failures body must be {{"count": N}} with N from 0 to 1000, got {body!r}')
        staging.webhooks.fail_next(channel, count)
        return JSONResponse({"channel": channel, "failures": count})

    return [
        Route(f"{PREFIX}/info", info, methods=["GET"]),
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/config", config, methods=["GET", "PATCH"]),
        Route(f"{PREFIX}/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route(f"{PREFIX}/users", users, methods=["GET", "PUT"]),
        Route(f"{PREFIX}/requests", requests_log, methods=["GET"]),
        Route(f"{PREFIX}/webhooks", webhook_list, methods=["GET"]),
        Route(f"{PREFIX}/webhooks/{{channel}}", webhook_post, methods=["POST"]),
        Route(f"{PREFIX}/webhooks/{{channel}}/failures", webhook_failures, methods=["PUT"]),
    ]
