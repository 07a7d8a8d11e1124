"""The Cloudflare API errors the staging answers, with their codes and messages, in one place
(contract/cloudflare-api.md, "Envelope and errors"; moto keeps its ``exceptions`` module the same way).

Codes seen from the real API and reproduced exactly:
- 7003 "No route for the URI" (unknown route),
- 10405 "<METHOD> method not allowed for the api_token authentication scheme", HTTP 405 with an ``Allow``
  header (a known path asked with a method it does not support),
- 10007 ``workers.api.error.script_not_found`` (unknown Worker),
- 10009 "key not found" (Workers KV),
- 10013 a KV namespace error (wrangler's KV help lists 10010-10014 as namespace errors),
- 10215 a secret edit while the latest version is not the one fully deployed (wrangler's
  ``VERSION_NOT_DEPLOYED_ERR_CODE`` turns it into its "Secret edit failed" advice),
- 10222 no uploaded version to edit (wrangler's ``NO_VERSIONS_ERR_CODE``),
- 10220 "... add a ?force=true query parameter to allow the rollback. The following secrets have changed: ..."
  (wrangler's ``CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE`` parses the names after the colon).

The upstream codes of the other refusals are not documented; the staging uses 10230-10243 for them, each
with a message that names the object and says what was expected. Every one of them is >= 1000 and is
paired with a non-2xx status, which is what both real clients need (notes/real-clients.md).
"""

from __future__ import annotations

from .envelope import CloudflareError

NO_ROUTE = 7003
METHOD_NOT_ALLOWED = 10405
VERSION_NOT_DEPLOYED = 10215
NO_VERSIONS = 10222
SCRIPT_NOT_FOUND = 10007
KEY_NOT_FOUND = 10009
NAMESPACE_NOT_FOUND = 10013
SECRETS_CHANGED = 10220
VERSION_NOT_FOUND = 10230
DEPLOYMENT_NOT_FOUND = 10231
VERSION_TOO_OLD = 10232
ACTIVE_DEPLOYMENT = 10233
INVALID_DEPLOYMENT = 10234
INVALID_UPLOAD = 10235
BODY_TOO_LARGE = 10236
TAIL_NOT_FOUND = 10237
TOO_MANY_TAILS = 10238
INVALID_TAIL = 10239
INVALID_REQUEST = 10240
INVALID_KEY = 10241
SECRET_NOT_FOUND = 10242
INVALID_SECRET = 10243


def no_route() -> CloudflareError:
    return CloudflareError(404, NO_ROUTE, "No route for the URI")


def method_not_allowed(method: str, allowed: list[str]) -> CloudflareError:
    """A known path asked with another method: 405, with the methods it supports in ``Allow``."""
    return CloudflareError(405, METHOD_NOT_ALLOWED, f"{method} method not allowed for the api_token authentication scheme",
                           headers={"Allow": ", ".join(allowed)})


def script_not_found(script: str, only: str | None = None) -> CloudflareError:
    """An unknown Worker; ``only`` names the one Worker this staging has, for a client about to create one."""
    hint = f" (this staging has one Worker, {only!r}: deploy with --name {only})" if only else ""
    return CloudflareError(
        404, SCRIPT_NOT_FOUND,
        f"workers.api.error.script_not_found: there is no Worker named {script!r} on this account{hint}"
    )


def version_not_found(version_id: str, script: str) -> CloudflareError:
    return CloudflareError(
        404, VERSION_NOT_FOUND, f"workers.api.error.version_not_found: Worker {script!r} has no version {version_id!r}"
    )


def deployment_not_found(deployment_id: str, script: str) -> CloudflareError:
    return CloudflareError(
        404,
        DEPLOYMENT_NOT_FOUND,
        f"workers.api.error.deployment_not_found: Worker {script!r} has no deployment {deployment_id!r}",
    )


def version_too_old(version_id: str, number: int, newest: int, window: int) -> CloudflareError:
    return CloudflareError(
        400,
        VERSION_TOO_OLD,
        f"version {version_id!r} (number {number}) cannot be deployed: only the {window} most recent versions "
        f"(numbers {max(1, newest - window + 1)} to {newest}) can be rolled back to",
    )


def secrets_changed(names: list[str]) -> CloudflareError:
    return CloudflareError(
        400,
        SECRETS_CHANGED,
        "A secret has changed since this version was active. If you are sure this is ok, add a ?force=true "
        f"query parameter to allow the rollback. The following secrets have changed: {', '.join(names)}",
    )


def active_deployment(deployment_id: str) -> CloudflareError:
    return CloudflareError(
        400,
        ACTIVE_DEPLOYMENT,
        f"deployment {deployment_id!r} is the latest deployment, actively serving traffic, and cannot be deleted",
    )


def invalid_deployment(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_DEPLOYMENT, f"invalid deployment: {detail}")


def invalid_upload(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_UPLOAD, f"invalid version upload: {detail}")


def body_too_large(limit: int, seen: int | None) -> CloudflareError:
    size = f"{seen} bytes" if seen is not None else "more than that"
    return CloudflareError(
        413, BODY_TOO_LARGE, f"request body too large: the limit is {limit} bytes ({limit // (1024 * 1024)} MiB), got {size}"
    )


def tail_not_found(tail_id: str, script: str) -> CloudflareError:
    return CloudflareError(404, TAIL_NOT_FOUND, f"Worker {script!r} has no open tail {tail_id!r}")


def too_many_tails(limit: int) -> CloudflareError:
    return CloudflareError(
        400, TOO_MANY_TAILS, f"too many open tails: at most {limit} at once; delete one or wait until one expires"
    )


def invalid_tail(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_TAIL, f"invalid tail filters: {detail}")


def invalid_request(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_REQUEST, detail)


def namespace_not_found(namespace_id: str) -> CloudflareError:
    return CloudflareError(404, NAMESPACE_NOT_FOUND, f"namespace not found: there is no KV namespace {namespace_id!r}")


def key_not_found() -> CloudflareError:
    return CloudflareError(404, KEY_NOT_FOUND, "key not found")


def invalid_key(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_KEY, f"invalid key name: {detail}")


def version_not_deployed(latest_id: str) -> CloudflareError:
    return CloudflareError(
        400, VERSION_NOT_DEPLOYED,
        f"Secret edit failed: the latest version {latest_id} is not the one deployed at 100%; deploy it first, "
        "or add the secret to a new version with versions secret put"
    )


def no_versions(script: str) -> CloudflareError:
    return CloudflareError(404, NO_VERSIONS, f"Worker {script!r} has no uploaded version to edit")


def secret_not_found(name: str, script: str) -> CloudflareError:
    return CloudflareError(404, SECRET_NOT_FOUND, f"Worker {script!r} has no secret named {name!r}")


def invalid_secret(detail: str) -> CloudflareError:
    return CloudflareError(400, INVALID_SECRET, f"invalid secret: {detail}")
