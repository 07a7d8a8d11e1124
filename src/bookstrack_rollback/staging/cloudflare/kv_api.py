"""HTTP answers for Workers KV (contract/cloudflare-api.md, "Workers KV").

Key names travel URL-encoded in the path and may contain ``/`` and ``:``; the route captures the rest
of the path (``{key:path}``), which the server has already percent-decoded. Values are raw bytes;
``PUT`` also accepts the multipart form of the SDK and of ``wrangler kv key put --metadata`` (a
``value`` part and an optional ``metadata`` part, JSON). The namespaces are listed
(``wrangler kv namespace list``, the SDK's ``kv.namespaces.list``) and a key's metadata read alone
(``kv.namespaces.metadata.get``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..state import Staging
from . import errors
from .envelope import check_account, ok
from .kv import KVStore
from .request_parsing import Page, parse_json, parse_multipart, read_body

MAX_KEY_BYTES = 512
DEFAULT_LIST_LIMIT = 1000


class KVApi:
    def __init__(self, staging: Staging) -> None:
        self._staging = staging

    def _namespace(self, request: Request) -> tuple[KVStore, str]:
        check_account(request.path_params["account_id"], self._staging.config.account_id)
        namespace_id = request.path_params["namespace_id"]
        store = self._staging.kv
        if not store.has_namespace(namespace_id):
            raise errors.namespace_not_found(namespace_id)
        return store, namespace_id

    def _key(self, request: Request) -> str:
        key: str = request.path_params["key"]
        if not key:
            raise errors.invalid_key("the key name is empty")
        if key in (".", ".."):
            raise errors.invalid_key(f"{key!r} cannot be used as a key name")
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise errors.invalid_key(f"key names are at most {MAX_KEY_BYTES} bytes, got {len(key.encode())}")
        return key

    async def put_value(self, request: Request) -> Response:
        """PUT .../values/{key}: body = value (contract, "Workers KV")."""
        store, namespace_id = self._namespace(request)
        key = self._key(request)
        for name in ("expiration", "expiration_ttl"):
            raw = request.query_params.get(name)
            if raw is not None and not raw.isdigit():
                raise errors.invalid_request(f"query parameter {name} must be a whole number of seconds, got {raw!r}")
        body = await read_body(request)
        content_type = request.headers.get("content-type", "")
        metadata: Any = None
        if content_type.lower().startswith("multipart/form-data"):
            body, metadata = await _form_value(content_type, body)
        store.put(namespace_id, key, body, metadata)
        return ok(None)

    async def get_value(self, request: Request) -> Response:
        """GET .../values/{key}: the raw value; a missing key is 404 code 10009 (contract, "Workers KV")."""
        store, namespace_id = self._namespace(request)
        value = store.get(namespace_id, self._key(request))
        if value is None:
            raise errors.key_not_found()
        return Response(value, media_type="application/octet-stream")

    async def delete_value(self, request: Request) -> Response:
        """DELETE .../values/{key}: succeeds whether or not the key existed (contract, "Workers KV")."""
        store, namespace_id = self._namespace(request)
        store.delete(namespace_id, self._key(request))
        return ok(None)

    async def list_keys(self, request: Request) -> Response:
        """GET .../keys?prefix=&limit=&cursor=: ``result: [{"name"}]`` in key order, with
        ``result_info {count, cursor}``; an empty cursor means the listing is complete."""
        store, namespace_id = self._namespace(request)
        prefix = request.query_params.get("prefix", "")
        raw_limit = request.query_params.get("limit", str(DEFAULT_LIST_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= DEFAULT_LIST_LIMIT:
            raise errors.invalid_request(f"query parameter limit must be from 1 to {DEFAULT_LIST_LIMIT}, got {raw_limit!r}")
        after = _decode_cursor(request.query_params.get("cursor", ""))
        names = [name for name in store.keys(namespace_id, prefix) if after is None or name > after]
        page = names[: int(raw_limit)]
        more = len(names) > len(page)
        cursor = _encode_cursor(page[-1]) if more and page else ""
        return ok(
            [_key_json(store, namespace_id, name) for name in page],
            result_info={"count": len(page), "cursor": cursor},
        )

    async def get_metadata(self, request: Request) -> Response:
        """GET .../metadata/{key}: the metadata written with the key (null if none); a missing key is
        404 code 10009."""
        store, namespace_id = self._namespace(request)
        key = self._key(request)
        if store.get(namespace_id, key) is None:
            raise errors.key_not_found()
        return ok(store.metadata(namespace_id, key))

    async def list_namespaces(self, request: Request) -> Response:
        """GET .../storage/kv/namespaces[?page=&per_page=&order=id|title&direction=asc|desc]."""
        check_account(request.path_params["account_id"], self._staging.config.account_id)
        store = self._staging.kv
        order = request.query_params.get("order", "id")
        direction = request.query_params.get("direction", "asc")
        if order not in ("id", "title") or direction not in ("asc", "desc"):
            raise errors.invalid_request(f"order must be id or title and direction asc or desc, got {order!r}, {direction!r}")
        namespaces = [_namespace_json(store, ns) for ns in store.namespaces]
        namespaces.sort(key=lambda ns: ns[order], reverse=direction == "desc")
        items, info = Page.of(request, default_per_page=20).slice(namespaces)
        return ok(items, result_info=info)

    async def get_namespace(self, request: Request) -> Response:
        """GET .../storage/kv/namespaces/{namespace_id}."""
        store, namespace_id = self._namespace(request)
        return ok(_namespace_json(store, namespace_id))


def _namespace_json(store: KVStore, namespace_id: str) -> dict[str, Any]:
    return {"id": namespace_id, "title": store.title(namespace_id), "supports_url_encoding": True}


def _key_json(store: KVStore, namespace_id: str, name: str) -> dict[str, Any]:
    metadata = store.metadata(namespace_id, name)
    return {"name": name} if metadata is None else {"name": name, "metadata": metadata}


async def _form_value(content_type: str, body: bytes) -> tuple[bytes, Any]:
    """(value, metadata) of a multipart KV write; metadata is None when the form has none."""
    parts = await parse_multipart(content_type, body)
    if "value" not in parts:
        raise errors.invalid_request(f"a multipart KV write needs a 'value' part; parts received: {sorted(parts)}")
    metadata = parse_json(parts["metadata"], "metadata part") if parts.get("metadata", b"").strip() else None
    return parts["value"], metadata


def _encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str | None:
    if not cursor:
        return None
    try:
        return base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise errors.invalid_request(f"the cursor {cursor!r} was not issued by this API") from exc
