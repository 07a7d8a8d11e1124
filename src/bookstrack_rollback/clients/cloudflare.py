"""The Cloudflare API subset the suite calls (contract/cloudflare-api.md), async, typed.

Versions and deployments (which version serves, rollback = a new deployment), Analytics Engine SQL,
Workers KV and tail sessions. Every call has a deadline; failures raise :mod:`.errors`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..config.secret import Secret
from .errors import (
    DEFAULT_TIMEOUT,
    ApiRefused,
    AuthRefused,
    BadAnswer,
    NotFound,
    RateLimited,
    mapped_errors,
)

SECRETS_CHANGED = 10220


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class VersionInfo:
    id: str
    number: int | None
    created_on: str
    tag: str | None
    message: str | None
    triggered_by: str | None
    bindings: tuple[dict[str, Any], ...] = ()
    compatibility_date: str | None = None
    compatibility_flags: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "VersionInfo":
        annotations = data.get("annotations") or {}
        resources = data.get("resources") or {}
        runtime = resources.get("script_runtime") or {}
        return cls(
            id=data["id"],
            number=data.get("number"),
            created_on=(data.get("metadata") or {}).get("created_on", ""),
            tag=annotations.get("workers/tag"),
            message=annotations.get("workers/message"),
            triggered_by=annotations.get("workers/triggered_by"),
            bindings=tuple(resources.get("bindings") or ()),
            compatibility_date=runtime.get("compatibility_date"),
            compatibility_flags=tuple(runtime.get("compatibility_flags") or ()),
        )

    def var(self, name: str) -> str | None:
        for binding in self.bindings:
            if binding.get("name") == name and binding.get("type") == "plain_text":
                return binding.get("text")
        return None

    @property
    def label(self) -> str:
        """'1.9.0 (9f1c...)' or the bare id."""
        return f"{self.tag} ({self.id})" if self.tag else self.id


@dataclass(frozen=True)
class Module:
    name: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class WorkerCode:
    """A version's code as ``content/v2`` gives it: the main module's name and every module."""

    main_module: str
    modules: tuple[Module, ...]

    def differences(self, other: "WorkerCode") -> list[str]:
        """What differs from ``other``, one phrase per difference (empty: the same code)."""
        found = []
        if self.main_module != other.main_module:
            found.append(f"main module {self.main_module!r} vs {other.main_module!r}")
        mine, theirs = {m.name: m for m in self.modules}, {m.name: m for m in other.modules}
        for name in sorted(mine.keys() | theirs.keys()):
            a, b = mine.get(name), theirs.get(name)
            if a is None or b is None:
                found.append(f"module {name!r} only in {'the second' if a is None else 'the first'}")
            elif a.content != b.content:
                found.append(f"module {name!r} differs ({len(a.content)} vs {len(b.content)} bytes)")
        return found


def _json_or_none(response: httpx.Response) -> Any:
    """An error answer's JSON body, or None when it is not JSON (a proxy's HTML page, say)."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _parse_worker_code(what: str, content_type: str, entrypoint: str | None, body: bytes) -> WorkerCode:
    if not content_type.lower().startswith("multipart/form-data"):
        # a service worker (no modules): one script
        return WorkerCode("index.js", (Module("index.js", content_type or "application/javascript", body),))
    if not entrypoint:
        raise BadAnswer(f"Cloudflare API {what}: modules without a cf-entrypoint header")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    modules = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise BadAnswer(f"Cloudflare API {what}: a multipart part has no name")
        modules.append(Module(name, part.get_content_type(), part.get_payload(decode=True) or b""))
    if entrypoint not in {m.name for m in modules}:
        raise BadAnswer(f"Cloudflare API {what}: the entrypoint {entrypoint!r} is not among the parts "
                        f"{[m.name for m in modules]}")
    return WorkerCode(entrypoint, tuple(modules))


@dataclass(frozen=True)
class DeploymentInfo:
    id: str
    created_on: str
    versions: tuple[tuple[str, int], ...]
    message: str | None
    source: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DeploymentInfo":
        return cls(
            id=data.get("id", ""),
            created_on=data["created_on"],
            versions=tuple((v["version_id"], int(v["percentage"])) for v in data["versions"]),
            message=(data.get("annotations") or {}).get("workers/message"),
            source=data.get("source"),
        )

    @property
    def created_at(self) -> datetime:
        return _parse_time(self.created_on)

    @property
    def main_version_id(self) -> str:
        """The version serving the largest share of traffic."""
        return max(self.versions, key=lambda item: item[1])[0]


@dataclass(frozen=True)
class SqlResult:
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    def scalar(self, column: str) -> Any:
        if not self.rows:
            return None
        return self.rows[0].get(column)


@dataclass(frozen=True)
class TailSession:
    id: str
    url: str = field(repr=False)  # carries the session's secret
    expires_at: str | None


class CloudflareApi:
    """One account, one worker script."""

    def __init__(
        self,
        api_url: str,
        *,
        account_id: str,
        token: Secret,
        worker: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.account_id = account_id
        self.worker = worker
        self._client = httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token.reveal()}", "User-Agent": "bookstrack-rollback-suite"},
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "CloudflareApi":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def _script(self) -> str:
        return f"/accounts/{self.account_id}/workers/scripts/{self.worker}"

    # --- transport and envelope ----------------------------------------------------------------
    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        with mapped_errors(f"Cloudflare API {what}"):
            response = await self._client.request(method, path, **kwargs)
        if response.status_code == 429:
            retry = response.headers.get("retry-after")
            raise RateLimited(
                f"Cloudflare API {what}: rate limited (HTTP 429, retry after {retry or '?'} s)",
                status=429, retry_after=float(retry) if retry and retry.isdigit() else None,
            )
        return response

    def _refusal(self, what: str, response: httpx.Response, body: Any) -> ApiRefused:
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code, message = first.get("code"), first.get("message") or response.reason_phrase
        text = f"Cloudflare API {what}: HTTP {response.status_code}, [{code}] {message}"
        if code in (10000, 9106, 9109) or response.status_code in (401, 403):
            return AuthRefused(text, status=response.status_code, code=code)
        if response.status_code == 404:
            return NotFound(text, status=404, code=code)
        return ApiRefused(text, status=response.status_code, code=code)

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, what, **kwargs)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadAnswer(
                f"Cloudflare API {what}: HTTP {response.status_code} with a body that is not JSON "
                f"({response.text[:80]!r})"
            ) from None
        if not isinstance(body, dict) or body.get("success") is not True or response.status_code >= 400:
            raise self._refusal(what, response, body)
        return body.get("result")

    # --- versions and deployments ----------------------------------------------------------------
    async def deployments(self) -> list[DeploymentInfo]:
        """Newest first; the first is the one serving."""
        result = await self._call("GET", f"{self._script}/deployments", "list deployments")
        try:
            items = result.get("deployments") or result.get("items") or []
            return [DeploymentInfo.from_json(item) for item in items]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"Cloudflare API list deployments: unexpected shape ({exc!r})") from None

    async def serving(self) -> DeploymentInfo:
        deployments = await self.deployments()
        if not deployments:
            raise BadAnswer(f"Cloudflare API list deployments: worker {self.worker} has no deployment")
        return deployments[0]

    async def versions(self, per_page: int = 50) -> list[VersionInfo]:
        """Newest first."""
        result = await self._call("GET", f"{self._script}/versions", "list versions",
                                  params={"deployable": "true", "per_page": per_page})
        try:
            return [VersionInfo.from_json(item) for item in result.get("items", [])]
        except (AttributeError, KeyError, TypeError) as exc:
            raise BadAnswer(f"Cloudflare API list versions: unexpected shape ({exc!r})") from None

    async def version(self, version_id: str) -> VersionInfo:
        result = await self._call("GET", f"{self._script}/versions/{quote(version_id, safe='')}",
                                  f"get version {version_id}")
        try:
            return VersionInfo.from_json(result)
        except (AttributeError, KeyError, TypeError) as exc:
            raise BadAnswer(f"Cloudflare API get version {version_id}: unexpected shape ({exc!r})") from None

    async def clean_version(self, wanted: str, versions: list[VersionInfo] | None = None) -> VersionInfo | None:
        """The newest rollbackable version whose id or ``workers/tag`` is ``wanted`` and that carries no
        ``FAULT_PROFILE`` (a drill's test change is never a known stable version)."""
        for version in versions if versions is not None else await self.versions():  # newest first
            if wanted in (version.id, version.tag):
                full = await self.version(version.id)
                if full.var("FAULT_PROFILE") is None:
                    return full
        return None

    async def deploy(self, version_id: str, message: str, *, force: bool = False) -> DeploymentInfo:
        """Deploy one version to 100% of traffic: a rollback, or the drill's test change."""
        body = {"strategy": "percentage", "versions": [{"version_id": version_id, "percentage": 100}],
                "annotations": {"workers/message": message}}
        result = await self._call("POST", f"{self._script}/deployments", f"deploy version {version_id}",
                                  json=body, params={"force": "true"} if force else None)
        try:
            return DeploymentInfo.from_json(result)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"Cloudflare API deploy: unexpected shape ({exc!r})") from None

    async def upload_version(
        self,
        *,
        main_module: str,
        modules: dict[str, bytes] | tuple[Module, ...],
        bindings: list[dict[str, Any]],
        annotations: dict[str, str],
        compatibility_date: str = "2025-11-01",
        compatibility_flags: tuple[str, ...] = (),
        strict_inherit: bool = False,
    ) -> VersionInfo:
        """A new version (not deployed). ``modules``: name -> ES module source, or :class:`Module` s
        with their own content types; ``strict_inherit``: an ``inherit``
        binding that cannot be resolved fails the upload (``?bindings_inherit=strict``) instead of
        being dropped."""
        metadata: dict[str, Any] = {"main_module": main_module, "bindings": bindings, "annotations": annotations,
                                    "compatibility_date": compatibility_date}
        if compatibility_flags:
            metadata["compatibility_flags"] = list(compatibility_flags)
        if isinstance(modules, dict):
            modules = tuple(Module(name, "application/javascript+module", code) for name, code in modules.items())
        files: list[tuple[str, tuple[str | None, bytes, str]]] = [
            ("metadata", (None, json.dumps(metadata).encode(), "application/json")),
        ]
        files += [(m.name, (m.name, m.content, m.content_type)) for m in modules]
        result = await self._call("POST", f"{self._script}/versions", "upload version", files=files,
                                  params={"bindings_inherit": "strict"} if strict_inherit else None)
        return VersionInfo.from_json(result)

    async def version_content(self, version_id: str) -> WorkerCode:
        """A version's code (``GET .../content/v2?version=``, what ``wrangler versions secret put`` reads)."""
        what = f"get the code of version {version_id}"
        response = await self._send("GET", f"{self._script}/content/v2", what, params={"version": version_id})
        if response.status_code >= 400:
            raise self._refusal(what, response, _json_or_none(response))
        return _parse_worker_code(what, response.headers.get("content-type", ""),
                                  response.headers.get("cf-entrypoint"), response.content)

    # --- Analytics Engine SQL (not enveloped) -------------------------------------------------------
    async def sql(self, query: str) -> SqlResult:
        what = "Analytics Engine SQL"
        response = await self._send("POST", f"/accounts/{self.account_id}/analytics_engine/sql", what,
                                    content=query.encode(), headers={"Content-Type": "text/plain"})
        if response.status_code >= 400:
            body = _json_or_none(response)
            if isinstance(body, dict) and "errors" in body:
                raise self._refusal(what, response, body)
            raise ApiRefused(f"{what}: HTTP {response.status_code}: {response.text[:200].strip()}",
                             status=response.status_code)
        try:
            body = response.json()
            columns = tuple(column["name"] for column in body["meta"])
            return SqlResult(columns, tuple(body["data"]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise BadAnswer(f"{what}: the answer is not {{meta, data, rows}} JSON ({exc!r})") from None

    # --- Workers KV ----------------------------------------------------------------------------
    def _kv(self, namespace_id: str, key: str) -> str:
        return f"/accounts/{self.account_id}/storage/kv/namespaces/{namespace_id}/values/{quote(key, safe='')}"

    async def kv_get(self, namespace_id: str, key: str) -> bytes | None:
        """The raw value, or None when the key does not exist."""
        response = await self._send("GET", self._kv(namespace_id, key), f"read KV key {key!r}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self._refusal(f"read KV key {key!r}", response, _json_or_none(response))
        return response.content

    async def kv_put(self, namespace_id: str, key: str, value: bytes) -> None:
        await self._call("PUT", self._kv(namespace_id, key), f"write KV key {key!r}", content=value)

    async def kv_delete(self, namespace_id: str, key: str) -> None:
        await self._call("DELETE", self._kv(namespace_id, key), f"delete KV key {key!r}")

    # --- tail ------------------------------------------------------------------------------------
    async def create_tail(self, filters: list[dict[str, Any]] | None = None) -> TailSession:
        result = await self._call("POST", f"{self._script}/tails", "create a tail", json={"filters": filters or []})
        try:
            return TailSession(result["id"], result["url"], result.get("expires_at"))
        except (KeyError, TypeError) as exc:
            raise BadAnswer(f"Cloudflare API create a tail: unexpected shape ({exc!r})") from None

    async def delete_tail(self, tail_id: str) -> None:
        await self._call("DELETE", f"{self._script}/tails/{quote(tail_id, safe='')}", f"delete tail {tail_id}")
