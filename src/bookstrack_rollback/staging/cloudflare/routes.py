"""The Cloudflare API subset's route table (contract/cloudflare-api.md), plus the tail sockets.

The middleware in ``app.py`` has already authenticated and rate limited every ``/client/v4`` HTTP
request; each endpoint checks the account id and the script name. Analytics Engine SQL is registered
before these routes; the last route here answers 7003 "No route for the URI" for any other
``/client/v4`` path or method, so nothing under the prefix falls through to the BooksTrack API.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..state import Staging
from . import errors
from .kv_api import KVApi
from .tail_api import TAIL_PATH, TailApi
from .workers_api import WorkersApi

PREFIX = "/client/v4"
SCRIPT = PREFIX + "/accounts/{account_id}/workers/scripts/{script}"
KV_NAMESPACE = PREFIX + "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def no_route(request: Request) -> Response:
    """Anything else under /client/v4: 404, code 7003 (contract, "Envelope and errors")."""
    raise errors.no_route()


def routes(staging: Staging) -> list[BaseRoute]:
    workers = WorkersApi(staging)
    kv = KVApi(staging)
    tails = TailApi(staging)
    return [
        Route(f"{SCRIPT}/versions", workers.list_versions, methods=["GET"]),
        Route(f"{SCRIPT}/versions", workers.upload_version, methods=["POST"]),
        Route(f"{SCRIPT}/versions/{{version_id}}", workers.get_version, methods=["GET"]),
        Route(f"{SCRIPT}/content/v2", workers.get_content, methods=["GET"]),
        Route(f"{SCRIPT}/script-settings", workers.script_settings, methods=["GET"]),
        Route(f"{SCRIPT}/deployments", workers.list_deployments, methods=["GET"]),
        Route(f"{SCRIPT}/deployments", workers.create_deployment, methods=["POST"]),
        Route(f"{SCRIPT}/deployments/{{deployment_id}}", workers.get_deployment, methods=["GET"]),
        Route(f"{SCRIPT}/deployments/{{deployment_id}}", workers.delete_deployment, methods=["DELETE"]),
        Route(f"{SCRIPT}/tails", tails.create_tail, methods=["POST"]),
        Route(f"{SCRIPT}/tails", tails.list_tails, methods=["GET"]),
        Route(f"{SCRIPT}/tails/{{tail_id}}", tails.delete_tail, methods=["DELETE"]),
        Route(f"{KV_NAMESPACE}/keys", kv.list_keys, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.get_value, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.put_value, methods=["PUT"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.delete_value, methods=["DELETE"]),
        WebSocketRoute(TAIL_PATH, tails.socket),
        Route(PREFIX + "{rest:path}", no_route, methods=ALL_METHODS),  # must stay last: the 7003 catch-all
    ]
