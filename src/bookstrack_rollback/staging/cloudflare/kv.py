"""Workers KV: namespaces of keys, raw values and each key's metadata (contract/cloudflare-api.md,
"Workers KV").

A namespace has a 32-hex id (as Cloudflare's) and a title; the Worker's own namespace exists from the
start. Rollback changes code, not data: nothing in the deployments model touches this store.
"""

from __future__ import annotations

from typing import Any

OWN_NAMESPACE_TITLE = "bookstrack-staging-kv"


class KVStore:
    """Every namespace's keys, values and metadata."""

    def __init__(self, own_namespace: str, own_title: str = OWN_NAMESPACE_TITLE) -> None:
        self._own = own_namespace
        self.namespaces: dict[str, dict[str, bytes]] = {own_namespace: {}}
        self.titles: dict[str, str] = {own_namespace: own_title}
        self._metadata: dict[str, dict[str, Any]] = {}  # "namespace\0key" -> the metadata written with it

    def has_namespace(self, namespace_id: str) -> bool:
        return namespace_id in self.namespaces

    def title(self, namespace_id: str) -> str:
        return self.titles.get(namespace_id, namespace_id)

    def get(self, namespace_id: str, key: str) -> bytes | None:
        return self.namespaces.get(namespace_id, {}).get(key)

    def metadata(self, namespace_id: str, key: str) -> Any:
        """The metadata written with the key (any JSON value), or None."""
        return self._metadata.get(f"{namespace_id}\0{key}")

    def put(self, namespace_id: str, key: str, value: bytes, metadata: Any = None) -> None:
        """Write the value; the key's metadata becomes ``metadata`` (None: none), as a KV write replaces both."""
        self.namespaces.setdefault(namespace_id, {})[key] = value
        self.titles.setdefault(namespace_id, namespace_id)
        if metadata is None:
            self._metadata.pop(f"{namespace_id}\0{key}", None)
        else:
            self._metadata[f"{namespace_id}\0{key}"] = metadata

    def delete(self, namespace_id: str, key: str) -> bool:
        self._metadata.pop(f"{namespace_id}\0{key}", None)
        return self.namespaces.get(namespace_id, {}).pop(key, None) is not None

    def keys(self, namespace_id: str, prefix: str = "") -> list[str]:
        return sorted(k for k in self.namespaces.get(namespace_id, {}) if k.startswith(prefix))

    # The staging's own namespace, used by the worker (runtime fault flag, canary records).
    def get_own(self, key: str) -> bytes | None:
        return self.get(self._own, key)

    def put_own(self, key: str, value: bytes) -> None:
        self.put(self._own, key, value)

    def delete_own(self, key: str) -> bool:
        return self.delete(self._own, key)
