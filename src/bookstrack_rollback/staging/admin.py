"""Admin routes, under their own prefix and never part of an emulated API: reset, seed, runtime
faults (the KV flag), configuration knobs and the request log."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..faults import FaultProfileError, parse_fault_profile
from .state import RUNTIME_FAULT_KEY, Staging

PREFIX = "/__staging"
_TUNABLE = {"ingestion_lag_s": float, "health_shape": str}


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
        "serving_deployment": serving.id,
        "serving_versions": [{"version_id": v, "percentage": p} for v, p in serving.versions],
    }


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

    return [
        Route(f"{PREFIX}/info", info, methods=["GET"]),
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/config", config, methods=["GET", "PATCH"]),
        Route(f"{PREFIX}/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route(f"{PREFIX}/requests", requests_log, methods=["GET"]),
    ]
