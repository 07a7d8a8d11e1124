"""HTTP answers about the token, its user and the account: ``wrangler whoami`` (``/user/tokens/verify``,
``/user``, ``/accounts``, ``/memberships``), wrangler's account lookup without ``CLOUDFLARE_ACCOUNT_ID``
(``/accounts`` and ``/memberships``, an account counting only if it is in both: notes/real-clients.md,
"Environment") and the SDK's ``accounts.list``.

The staging has one user, one account and one token (the middleware has already checked it); the lists
page as the v4 API does, empty past the last page (the SDK asks until a page is empty).
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..state import Staging
from .envelope import check_account, ok
from .request_parsing import Page
from .workers import DEFAULT_AUTHOR

ACCOUNT_NAME = "BooksTrack staging"
ROLES = ("Administrator",)
TOKEN_VALID = {"code": 10000, "message": "This API Token is valid and active"}


def _stable_id(*parts: str) -> str:
    return hashlib.md5("\0".join(parts).encode()).hexdigest()


class AccountApi:
    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _account(self) -> dict[str, Any]:
        config = self._staging.config
        return {
            "id": config.account_id,
            "name": ACCOUNT_NAME,
            "type": "standard",
            "created_on": self._staging.workers.settings.created_on,
            "settings": {"enforce_twofactor": False, "use_account_custom_ns_by_default": False,
                         "abuse_contact_email": None},
        }

    def _user_id(self) -> str:
        return self._staging.workers.author_id

    async def verify_token(self, request: Request) -> Response:
        """GET /user/tokens/verify (and the account-owned token's ``/accounts/{id}/tokens/verify``): the
        token is active. Its id is derived from the token, which it never shows."""
        if "account_id" in request.path_params:
            check_account(request.path_params["account_id"], self._staging.config.account_id)
        token_id = _stable_id("token", self._staging.config.token)
        return ok({"id": token_id, "status": "active"}, messages=[TOKEN_VALID])

    async def get_user(self, request: Request) -> Response:
        """GET /user: the token's user (wrangler prints its email)."""
        return ok({"id": self._user_id(), "email": DEFAULT_AUTHOR, "first_name": None, "last_name": None,
                   "username": self._user_id(), "suspended": False, "two_factor_authentication_enabled": False,
                   "has_pro_zones": False, "has_business_zones": False, "has_enterprise_zones": False})

    async def list_accounts(self, request: Request) -> Response:
        """GET /accounts[?page=&per_page=]: the one account."""
        items, info = Page.of(request).slice([self._account()])
        return ok(items, result_info=info)

    async def get_account(self, request: Request) -> Response:
        """GET /accounts/{account_id}."""
        check_account(request.path_params["account_id"], self._staging.config.account_id)
        return ok(self._account())

    async def list_memberships(self, request: Request) -> Response:
        """GET /memberships[?page=]: the user's membership of the account, with its roles."""
        account = self._account()
        membership = {"id": _stable_id("membership", account["id"], self._user_id()), "status": "accepted",
                      "account": {"id": account["id"], "name": account["name"]}, "roles": list(ROLES),
                      "permissions": {}}
        items, info = Page.of(request).slice([membership])
        return ok(items, result_info=info)

