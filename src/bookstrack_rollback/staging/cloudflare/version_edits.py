"""New versions made from the latest one: secrets and bindings changed without new code.

Cloudflare keeps a Worker's secrets as ``secret_text`` bindings of its versions, so changing one makes a
version (notes/real-clients.md, "What the embedded staging still lacks"):
- ``secret put`` / ``secret delete`` / ``secret bulk`` (``/scripts/{name}/secrets``, ``secrets-bulk``,
  ``settings``): a copy of the latest version with the change, *deployed* at 100% at once, annotated
  ``workers/triggered_by: secret``. Refused with 10215 unless the latest version is the one fully deployed
  (a deploy must not silently promote a version uploaded for a gradual rollout);
- ``versions secret put`` on wrangler 4.1xx (``PATCH /workers/workers/{name}/versions/latest``): the same
  copy, *not* deployed.

State only, no HTTP. A secret's text lives only in the version's bindings: no answer shows it
(``workers_api.public_bindings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors
from .workers import SECRET_BINDING, Deployment, Version, WorkersModel

TRIGGERED_BY_SECRET = "secret"
MAX_SECRET_NAME = 256


def check_secret(name: Any, text: Any) -> None:
    """A secret has a non-empty name and a string text (refused with 400 otherwise)."""
    if not isinstance(name, str) or not name or len(name) > MAX_SECRET_NAME:
        raise errors.invalid_secret(f"name must be a non-empty string of at most {MAX_SECRET_NAME} characters, got {name!r}")
    if not isinstance(text, str):
        raise errors.invalid_secret(f"the text of secret {name!r} must be a string")


def derive_version(
    workers: WorkersModel,
    changes: Mapping[str, dict[str, Any] | None],
    *,
    annotations: Mapping[str, str | None] | None = None,
    source: str,
    triggered_by: str = TRIGGERED_BY_SECRET,
) -> Version:
    """Upload a copy of the latest version (same code, compatibility and other bindings) in which the
    binding named by each key of ``changes`` is replaced by its value, or removed when the value is None."""
    latest = workers.latest_version()
    bindings = [dict(b) for b in latest.bindings if b.get("name") not in changes]
    bindings += [{**binding, "name": name} for name, binding in changes.items() if binding is not None]
    kept = {k: v for k, v in (annotations or {}).items() if isinstance(v, str)}
    return workers.upload(
        bindings=bindings,
        annotations={"workers/triggered_by": triggered_by, **kept},
        main_module=latest.main_module,
        modules=dict(latest.modules),
        source=source,
        compatibility_date=latest.compatibility_date,
        compatibility_flags=latest.compatibility_flags,
    )


def require_latest_fully_deployed(workers: WorkersModel) -> Version:
    """The latest version, if it alone serves at 100%; else 10215 (a secret edit would deploy it)."""
    latest = workers.latest_version()
    if workers.serving_deployment().versions != [(latest.id, 100)]:
        raise errors.version_not_deployed(latest.id)
    return latest


def secret_names(version: Version) -> list[str]:
    return sorted(version.secrets())


def secret_changes(workers: WorkersModel, secrets: Mapping[str, str | None]) -> dict[str, dict[str, Any] | None]:
    """``secret put`` / ``delete`` / ``bulk``: the binding changes that set these secrets (text) or remove
    them (None), checked. Only while the latest version serves alone (10215 otherwise, since the new
    version is deployed at once); removing a secret the Worker does not have is refused with 404."""
    latest = require_latest_fully_deployed(workers)
    for name, text in secrets.items():
        if text is None:
            if name not in latest.secrets():
                raise errors.secret_not_found(name, workers.script)
        else:
            check_secret(name, text)
    return {name: None if text is None else {"type": SECRET_BINDING, "name": name, "text": text}
            for name, text in secrets.items()}


def deploy_secret_version(workers: WorkersModel, version: Version, *, source: str) -> Deployment:
    """Deploy a version made by a secret edit at 100%, as Cloudflare does."""
    return workers.deploy([(version.id, 100)], annotations={"workers/triggered_by": TRIGGERED_BY_SECRET},
                          source=source, force=True)
