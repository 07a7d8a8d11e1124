"""The Cloudflare API subset's route table (contract/cloudflare-api.md), plus the tail sockets.

The middleware in ``app.py`` has already authenticated and rate limited every ``/client/v4`` HTTP
request; each endpoint checks the account id and the script name. Analytics Engine SQL is registered
before these routes; the last route here answers every other ``/client/v4`` request, so nothing under
the prefix falls through to the BooksTrack API: a known path asked with a method it does not support
gets 405 (code 10405, ``Allow`` naming its methods), any other path 404 code 7003 "No route for the URI".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..state import Staging
from . import errors
from .account_api import AccountApi
from .kv_api import KVApi
from .scripts_api import ScriptsApi
from .secrets_api import SecretsApi
from .tail_api import TAIL_PATH, TailApi
from .workers_api import WorkersApi

PREFIX = "/client/v4"
ACCOUNT = PREFIX + "/accounts/{account_id}"
SCRIPT = ACCOUNT + "/workers/scripts/{script}"
WORKER = ACCOUNT + "/workers/workers/{script}"  # the Workers API of wrangler 4.1xx
KV_NAMESPACES = ACCOUNT + "/storage/kv/namespaces"
KV_NAMESPACE = KV_NAMESPACES + "/{namespace_id}"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def allowed_methods(known: list[Route], path: str) -> list[str]:
    """The methods the known routes support on ``path`` (empty: the path is unknown)."""
    methods: set[str] = set()
    for route in known:
        if route.path_regex.match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def answer_the_rest(known: list[Route]) -> Callable[[Request], Awaitable[Response]]:
    async def the_rest(request: Request) -> Response:
        """Anything else under /client/v4: 405 on a known path, else 404 code 7003 (contract,
        "Envelope and errors")."""
        allowed = allowed_methods(known, request.scope["path"])
        if allowed:
            raise errors.method_not_allowed(request.method, allowed)
        raise errors.no_route()

    return the_rest


def routes(staging: Staging) -> list[BaseRoute]:
    workers = WorkersApi(staging)
    scripts = ScriptsApi(staging)
    secrets = SecretsApi(staging)
    account = AccountApi(staging)
    kv = KVApi(staging)
    tails = TailApi(staging)
    known = [
        # the token, its user and the account (whoami, account lookup)
        Route(f"{PREFIX}/user/tokens/verify", account.verify_token, methods=["GET"]),
        Route(f"{ACCOUNT}/tokens/verify", account.verify_token, methods=["GET"]),
        Route(f"{PREFIX}/user", account.get_user, methods=["GET"]),
        Route(f"{PREFIX}/memberships", account.list_memberships, methods=["GET"]),
        Route(f"{PREFIX}/accounts", account.list_accounts, methods=["GET"]),
        Route(ACCOUNT, account.get_account, methods=["GET"]),
        # the Worker as a whole
        Route(f"{ACCOUNT}/workers/scripts", scripts.list_scripts, methods=["GET"]),
        Route(f"{ACCOUNT}/workers/subdomain", scripts.account_subdomain, methods=["GET"]),
        Route(f"{ACCOUNT}/workers/services/{{script}}", scripts.get_service, methods=["GET"]),
        Route(SCRIPT, scripts.get_script, methods=["GET"]),
        Route(SCRIPT, scripts.put_script, methods=["PUT"]),
        Route(f"{SCRIPT}/script-settings", workers.script_settings, methods=["GET"]),
        Route(f"{SCRIPT}/script-settings", scripts.patch_script_settings, methods=["PATCH"]),
        Route(f"{SCRIPT}/settings", scripts.get_settings, methods=["GET"]),
        Route(f"{SCRIPT}/settings", scripts.patch_settings, methods=["PATCH"]),
        Route(f"{SCRIPT}/subdomain", scripts.get_subdomain, methods=["GET"]),
        Route(f"{SCRIPT}/subdomain", scripts.post_subdomain, methods=["POST"]),
        Route(f"{SCRIPT}/subdomain", scripts.delete_subdomain, methods=["DELETE"]),
        Route(f"{SCRIPT}/schedules", scripts.get_schedules, methods=["GET"]),
        Route(f"{SCRIPT}/schedules", scripts.put_schedules, methods=["PUT"]),
        Route(WORKER, scripts.get_worker, methods=["GET"]),
        Route(WORKER, scripts.patch_worker, methods=["PATCH"]),
        Route(f"{WORKER}/versions/latest", scripts.patch_latest_version, methods=["PATCH"]),
        # secrets
        Route(f"{SCRIPT}/secrets", secrets.list_secrets, methods=["GET"]),
        Route(f"{SCRIPT}/secrets", secrets.put_secret, methods=["PUT"]),
        Route(f"{SCRIPT}/secrets/{{secret:path}}", secrets.get_secret, methods=["GET"]),
        Route(f"{SCRIPT}/secrets/{{secret:path}}", secrets.delete_secret, methods=["DELETE"]),
        Route(f"{SCRIPT}/secrets-bulk", secrets.patch_secrets_bulk, methods=["PATCH"]),
        # versions and deployments
        Route(f"{SCRIPT}/versions", workers.list_versions, methods=["GET"]),
        Route(f"{SCRIPT}/versions", workers.upload_version, methods=["POST"]),
        Route(f"{SCRIPT}/versions/{{version_id}}", workers.get_version, methods=["GET"]),
        Route(f"{SCRIPT}/content/v2", workers.get_content, methods=["GET"]),
        Route(f"{SCRIPT}/deployments", workers.list_deployments, methods=["GET"]),
        Route(f"{SCRIPT}/deployments", workers.create_deployment, methods=["POST"]),
        Route(f"{SCRIPT}/deployments/{{deployment_id}}", workers.get_deployment, methods=["GET"]),
        Route(f"{SCRIPT}/deployments/{{deployment_id}}", workers.delete_deployment, methods=["DELETE"]),
        # tails
        Route(f"{SCRIPT}/tails", tails.create_tail, methods=["POST"]),
        Route(f"{SCRIPT}/tails", tails.list_tails, methods=["GET"]),
        Route(f"{SCRIPT}/tails/{{tail_id}}", tails.delete_tail, methods=["DELETE"]),
        # Workers KV
        Route(KV_NAMESPACES, kv.list_namespaces, methods=["GET"]),
        Route(KV_NAMESPACE, kv.get_namespace, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/keys", kv.list_keys, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/metadata/{{key:path}}", kv.get_metadata, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.get_value, methods=["GET"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.put_value, methods=["PUT"]),
        Route(f"{KV_NAMESPACE}/values/{{key:path}}", kv.delete_value, methods=["DELETE"]),
    ]
    return [
        *known,
        WebSocketRoute(TAIL_PATH, tails.socket),
        Route(PREFIX + "{rest:path}", answer_the_rest(known), methods=ALL_METHODS),  # must stay last
    ]
