"""What the Worker host runs for one version: its modules and its bindings, from the version's metadata
(contract/cloudflare-api.md, "Versions"), as the host's ``start`` command takes them (host.mjs).

Bindings, by Cloudflare type:
- ``plain_text``, ``secret_text``, ``json``: variables (secrets are variables inside the runtime);
- ``kv_namespace``: the staging's KV namespace of that id (the same keys the KV API shows);
- ``durable_object_namespace``: a class the version itself exports (another script's class is refused);
- ``analytics_engine``: a dataset whose data points reach the staging's SQL;
- ``service``: the staging's fake book provider for :data:`PROVIDER_SERVICES`; another service answers 502;
- ``version_metadata``: ``{id, tag, timestamp}`` of the version.
Any other type is refused with a sentence naming it, as an upload Cloudflare cannot run is.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ..cloudflare.envelope import CloudflareError
from ..cloudflare.workers import Version
from .host import REPO

# Cloudflare's code for a script that does not start ("Uncaught SyntaxError ...", a missing class)
SCRIPT_STARTUP_ERROR = 10021
PROVIDER_SERVICES = ("bookstrack-fake-provider",)
REFERENCE_DIR = REPO / "drills" / "reference-worker"
HOOK = REPO / "drills" / "staging-hook" / "fault-hook.mjs"


def startup_error(detail: str) -> CloudflareError:
    return CloudflareError(400, SCRIPT_STARTUP_ERROR, f"Uncaught error while starting the Worker: {detail}"
                           if not detail.startswith("Uncaught") else detail)


def worker_spec(version: Version, *, staging_address: str, objects_dir: str,
                kv_exists: Callable[[str], bool]) -> dict[str, Any]:
    """The host's worker spec for ``version``; raises :class:`CloudflareError` (10021) for a binding
    the embedded staging cannot provide."""
    spec: dict[str, Any] = {
        "modules": [{"name": name, "b64": base64.b64encode(code).decode("ascii")}
                    for name, code in sorted(version.modules.items())],
        "main": version.main_module,
        "compatibilityDate": version.compatibility_date,
        "compatibilityFlags": list(version.compatibility_flags),
        "vars": {}, "kv": {}, "durableObjects": {}, "analytics": {}, "services": {},
        "staging": staging_address,
        "objects": objects_dir,
    }
    for binding in version.bindings:
        kind, name = binding.get("type"), str(binding.get("name"))
        if kind in ("plain_text", "secret_text"):
            spec["vars"][name] = str(binding.get("text", ""))
        elif kind == "json":
            spec["vars"][name] = binding.get("json")
        elif kind == "kv_namespace":
            namespace = str(binding.get("namespace_id", ""))
            if not kv_exists(namespace):
                raise startup_error(f"KV namespace {namespace!r} bound as {name} does not exist")
            spec["kv"][name] = namespace
        elif kind == "durable_object_namespace":
            other = binding.get("script_name")
            if other:
                raise startup_error(f"binding {name} names a Durable Object class of another script ({other}); "
                                    "the embedded staging runs one script")
            spec["durableObjects"][name] = str(binding.get("class_name", ""))
        elif kind == "analytics_engine":
            spec["analytics"][name] = str(binding.get("dataset") or name)
        elif kind == "service":
            service = str(binding.get("service", ""))
            spec["services"][name] = "staging" if service in PROVIDER_SERVICES else f"missing:{service}"
        elif kind == "version_metadata":
            spec["vars"][name] = {"id": version.id, "tag": version.tag or "", "timestamp": version.created_on}
        else:
            raise startup_error(f"binding {name} has type {kind!r}, which the embedded staging cannot provide "
                                "(it provides plain_text, secret_text, json, kv_namespace, durable_object_namespace, "
                                "analytics_engine, service and version_metadata)")
    return spec


def spec_key(version: Version, spec: dict[str, Any]) -> str:
    """One running instance per distinct code and bindings: a reset may draw a used id again."""
    text = json.dumps({k: v for k, v in spec.items() if k not in ("staging", "objects")}, sort_keys=True)
    return version.id + ":" + hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the reference BooksTrack Worker (drills/reference-worker), the code the staging's history runs ----
def reference_modules() -> tuple[str, dict[str, bytes]]:
    """(main module, modules) of the reference Worker, named relative to ``drills/`` as its relative
    imports expect (``reference-worker/src/index.mjs`` imports ``../../staging-hook/fault-hook.mjs``)."""
    drills = REFERENCE_DIR.parent
    sources = sorted((REFERENCE_DIR / "src").rglob("*.mjs"))
    if not sources:
        raise FileNotFoundError(f"the reference Worker's modules are missing: no {REFERENCE_DIR / 'src'}/*.mjs")
    modules = {str(path.relative_to(drills)): path.read_bytes() for path in sources}
    modules["staging-hook/fault-hook.mjs"] = HOOK.read_bytes()
    return "reference-worker/src/index.mjs", modules


def reference_bindings(*, kv_namespace: str, performance_dataset: str, cache_dataset: str,
                       health_shape: str, health_status: str) -> list[dict[str, Any]]:
    """The bindings the reference Worker's wrangler.toml declares, for the staging's own names (a selftest
    holds the two together)."""
    return [
        {"type": "kv_namespace", "name": "KV", "namespace_id": kv_namespace},
        {"type": "durable_object_namespace", "name": "JOB_PROGRESS", "class_name": "JobProgress"},
        {"type": "analytics_engine", "name": "PERFORMANCE_ANALYTICS", "dataset": performance_dataset},
        {"type": "analytics_engine", "name": "CACHE_ANALYTICS", "dataset": cache_dataset},
        {"type": "service", "name": "PROVIDER", "service": PROVIDER_SERVICES[0]},
        {"type": "version_metadata", "name": "CF_VERSION_METADATA"},
        {"type": "plain_text", "name": "HEALTH_SHAPE", "text": health_shape},
        {"type": "plain_text", "name": "HEALTH_STATUS", "text": health_status},
        # the hook reads the runtime fault flag every 100 ms, not 5 s: a drill at time scale 0.02 sets the
        # flag 1.2 s before its deploy (the emulation applies it at once)
        {"type": "plain_text", "name": "FAULT_FLAG_TTL_MS", "text": "100"},
    ]
