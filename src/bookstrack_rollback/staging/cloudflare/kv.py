"""Workers KV: namespaces of keys and raw values (contract/cloudflare-api.md, "Workers KV").

Rollback changes code, not data: nothing in the deployments model touches this store.
"""

from __future__ import annotations


class KVStore:
    """Every namespace's keys and values; the worker's own namespace exists from the start."""

    def __init__(self, own_namespace: str) -> None:
        self._own = own_namespace
        self.namespaces: dict[str, dict[str, bytes]] = {own_namespace: {}}

    def has_namespace(self, namespace_id: str) -> bool:
        return namespace_id in self.namespaces

    def get(self, namespace_id: str, key: str) -> bytes | None:
        return self.namespaces.get(namespace_id, {}).get(key)

    def put(self, namespace_id: str, key: str, value: bytes) -> None:
        self.namespaces.setdefault(namespace_id, {})[key] = value

    def delete(self, namespace_id: str, key: str) -> bool:
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
