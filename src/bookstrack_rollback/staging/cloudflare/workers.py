"""Worker versions and deployments (contract/cloudflare-api.md, "Versions", "Deployments").

A version is immutable code + bindings + annotations; a deployment says which version(s) serve, at
which percentage. A rollback is nothing but a new deployment of an older version. The first
deployment in ``deployments`` (newest first) is the one serving. This module holds the state and the
rules (no HTTP): at most two versions per deployment, percentages summing to 100, only the
``ROLLBACK_WINDOW`` newest versions deployable, and the 10220 refusal when a secret changed.

Interface used by the rest of the staging (keep it stable):
- ``serving_deployment()`` / ``version_for_request()``: what answers a request now;
- ``get_version(id)``: a version or None;
- ``Version.var(name)``: a ``plain_text`` binding's text (e.g. ``FAULT_PROFILE``), or None;
- ``Version.tag``: its ``workers/tag`` annotation, or None;
- ``Deployment.created_at``: epoch seconds on the staging clock;
- ``settings``: what the Worker has outside its versions (:mod:`.script_settings`);
- ``upload(...)`` and ``deploy(...)``: used by the HTTP routes and the admin seed; ``deploy`` hands
  each new deployment to the ``on_deployment`` callback it was built with (the BooksTrack worker's
  hook, wired by ``state.py``: this model knows nothing of the worker).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..base import Clock, SeededRandom
from . import errors
from .script_settings import ScriptSettings

ROLLBACK_WINDOW = 10  # "Only the 10 newest versions can be rolled back to" (contract, "Versions")
MAX_VERSIONS_PER_DEPLOYMENT = 2
DEFAULT_COMPATIBILITY_DATE = "2025-09-01"
DEFAULT_AUTHOR = "drill@bookstrack.example"
SECRET_BINDING = "secret_text"
# the seeded history's code when it must run: () -> (main module, modules, bindings)
HistoryCode = Callable[[], tuple[str, dict[str, bytes], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Version:
    id: str
    number: int
    created_on: str
    created_at: float
    annotations: dict[str, str]
    bindings: list[dict[str, Any]]
    main_module: str = "index.js"
    modules: dict[str, bytes] = field(default_factory=dict)
    source: str = "wrangler"
    author_email: str = DEFAULT_AUTHOR
    author_id: str = ""
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE
    compatibility_flags: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ("fetch",)
    # how long the runtime took to start this version's code (the API's ``startup_time_ms``); set by
    # whatever runs the code, 0 until something does
    startup_time_ms: int = 0

    @property
    def tag(self) -> str | None:
        return self.annotations.get("workers/tag")

    def var(self, name: str) -> str | None:
        for binding in self.bindings:
            if binding.get("name") == name and binding.get("type") in ("plain_text", "json"):
                text = binding.get("text", binding.get("json"))
                return text if isinstance(text, str) else None
        return None

    def secrets(self) -> dict[str, str]:
        """The ``secret_text`` bindings: name -> text."""
        return {
            str(b.get("name")): str(b.get("text", ""))
            for b in self.bindings
            if b.get("type") == SECRET_BINDING
        }

    @property
    def etag(self) -> str:
        """A content hash of the code, as ``resources.script.etag`` reports it."""
        digest = hashlib.sha256(self.main_module.encode())
        for name in sorted(self.modules):
            digest.update(b"\0" + name.encode() + b"\0" + self.modules[name])
        return digest.hexdigest()


@dataclass(frozen=True)
class Deployment:
    id: str
    created_on: str
    created_at: float
    source: str
    versions: list[tuple[str, float]]  # (version_id, percentage)
    annotations: dict[str, str]
    strategy: str = "percentage"
    author_email: str = DEFAULT_AUTHOR


class WorkersModel:
    """One Worker's versions and deployments, with a seeded history of three releases.

    Ids are drawn from ``rng``, times read from ``clock``; ``on_deployment`` is called with every
    deployment made after the seeded history (a deploy or a rollback).
    """

    def __init__(
        self, clock: Clock, rng: SeededRandom, script: str, on_deployment: Callable[[Deployment], None],
        history_code: HistoryCode | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng
        self.script = script
        self.author_id = rng.hex_id()
        self.versions: list[Version] = []  # oldest first
        self.deployments: list[Deployment] = []  # newest first
        self.settings = ScriptSettings(created_on=clock.iso(clock.now() - 30 * 86400.0))
        self._on_deployment: Callable[[Deployment], None] | None = None  # nobody listens to the past
        self._seed_history(history_code)
        self._on_deployment = on_deployment

    def _seed_history(self, history_code: HistoryCode | None) -> None:
        """A short, plausible history: three stable releases days apart, the newest serving. Their code
        is a placeholder, or ``history_code()`` (main module, modules, bindings) when it must run."""
        now = self._clock.now()
        main, modules, bindings = history_code() if history_code else ("index.js", None, [])
        for days_ago, tag, message in (
            (14, "1.7.0", "Stable release"),
            (7, "1.8.0", "Hotfix cache issue"),
            (2, "1.9.0", "Stable release 1.9.0"),
        ):
            uploaded = now - days_ago * 86400.0
            version = self.upload(
                bindings=bindings,
                annotations={"workers/tag": tag, "workers/message": message},
                main_module=main,
                modules=modules or {"index.js": f"// BooksTrack API worker {tag}\n".encode()},
                at=uploaded,
            )
            self.deploy([(version.id, 100)], annotations={"workers/message": message}, at=uploaded + 600.0)

    # --- reads -------------------------------------------------------------------------------
    def get_version(self, version_id: str) -> Version | None:
        for version in self.versions:
            if version.id == version_id:
                return version
        return None

    def require_version(self, version_id: str) -> Version:
        version = self.get_version(version_id)
        if version is None:
            raise errors.version_not_found(version_id, self.script)
        return version

    def latest_version(self) -> Version:
        """The version uploaded last (what ``inherit`` bindings and secret edits start from)."""
        if not self.versions:
            raise errors.no_versions(self.script)
        return max(self.versions, key=lambda v: v.number)

    def main_serving_version(self) -> Version:
        """The serving deployment's version with the largest share."""
        return self.require_version(max(self.serving_deployment().versions, key=lambda pair: pair[1])[0])

    def versions_newest_first(self, *, deployable_only: bool = False) -> list[Version]:
        """All versions, newest first; ``deployable_only`` keeps the ``ROLLBACK_WINDOW`` newest."""
        newest = sorted(self.versions, key=lambda v: v.number, reverse=True)
        return newest[:ROLLBACK_WINDOW] if deployable_only else newest

    def get_deployment(self, deployment_id: str) -> Deployment:
        for deployment in self.deployments:
            if deployment.id == deployment_id:
                return deployment
        raise errors.deployment_not_found(deployment_id, self.script)

    def serving_deployment(self) -> Deployment:
        return self.deployments[0]

    def version_for_request(self) -> Version:
        """The version that answers one request, honouring a split deployment's percentages."""
        versions = self.serving_deployment().versions
        if len(versions) == 1:
            found = self.get_version(versions[0][0])
        else:
            roll = self._rng.uniform(0, 100)
            found = None
            for version_id, percentage in versions:
                roll -= percentage
                if roll < 0:
                    found = self.get_version(version_id)
                    break
            if found is None:
                found = self.get_version(versions[-1][0])
        assert found is not None
        return found

    def changed_secrets(self, target_ids: list[str]) -> list[str]:
        """Names of the secrets (added, removed or changed) that differ between the serving version
        (the serving deployment's largest share) and any *older* target: a rollback would bring
        back stale secrets. Deploying a newer version is how secrets change, so it is never refused."""
        if not self.deployments:
            return []
        serving = self.serving_deployment().versions
        current = self.require_version(max(serving, key=lambda pair: pair[1])[0])
        changed: set[str] = set()
        for target_id in target_ids:
            target = self.require_version(target_id)
            if target.number >= current.number:
                continue
            old, new = target.secrets(), current.secrets()
            changed.update(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
        return sorted(changed)

    # --- writes ------------------------------------------------------------------------------
    def upload(
        self,
        *,
        bindings: list[dict[str, Any]],
        annotations: dict[str, str],
        main_module: str = "index.js",
        modules: dict[str, bytes] | None = None,
        source: str = "wrangler",
        compatibility_date: str = DEFAULT_COMPATIBILITY_DATE,
        compatibility_flags: tuple[str, ...] = (),
        at: float | None = None,
    ) -> Version:
        """Add a version (not deployed). ``at`` backdates it (the seeded history); default now."""
        clock = self._clock
        now = clock.now() if at is None else at
        annotations = {"workers/triggered_by": "upload", **annotations}
        version = Version(
            id=self._rng.uuid4(),
            number=len(self.versions) + 1,
            created_on=clock.iso(now),
            created_at=now,
            annotations=annotations,
            bindings=list(bindings),
            main_module=main_module,
            modules=dict(modules or {}),
            source=source,
            author_id=self.author_id,
            compatibility_date=compatibility_date,
            compatibility_flags=tuple(compatibility_flags),
        )
        self.versions.append(version)
        return version

    def validate_traffic(self, versions: list[tuple[str, float]]) -> None:
        """Refuse a deployment's version list unless it is deployable (see the module docstring)."""
        if not 1 <= len(versions) <= MAX_VERSIONS_PER_DEPLOYMENT:
            raise errors.invalid_deployment(
                f"a deployment has one or two versions, got {len(versions)}"
            )
        ids = [version_id for version_id, _ in versions]
        if len(set(ids)) != len(ids):
            raise errors.invalid_deployment(f"a version may appear only once, got {ids}")
        for version_id, percentage in versions:
            if not (math.isfinite(percentage) and 0 <= percentage <= 100):
                raise errors.invalid_deployment(
                    f"percentage of version {version_id!r} must be from 0 to 100, got {percentage}"
                )
        total = sum(percentage for _, percentage in versions)
        if abs(total - 100) > 1e-6:
            raise errors.invalid_deployment(f"percentages must sum to 100, got {total:g}")
        newest = len(self.versions)
        for version_id in ids:
            version = self.require_version(version_id)
            if version.number <= newest - ROLLBACK_WINDOW:
                raise errors.version_too_old(version_id, version.number, newest, ROLLBACK_WINDOW)

    def deploy(
        self,
        versions: list[tuple[str, float]],
        *,
        annotations: dict[str, str] | None = None,
        source: str = "api",
        force: bool = True,
        at: float | None = None,
    ) -> Deployment:
        """Make ``versions`` serve. Refused (state unchanged) unless deployable; without ``force``,
        also refused with 10220 when a secret differs from the serving version's. ``at`` backdates
        it (the seeded history); default now."""
        self.validate_traffic(versions)
        if not force:
            changed = self.changed_secrets([version_id for version_id, _ in versions])
            if changed:
                raise errors.secrets_changed(changed)
        clock = self._clock
        now = clock.now() if at is None else at
        deployment = Deployment(
            id=self._rng.uuid4(),
            created_on=clock.iso(now),
            created_at=now,
            source=source,
            versions=[(version_id, _plain_number(percentage)) for version_id, percentage in versions],
            annotations=dict(annotations or {}),
        )
        self.deployments.insert(0, deployment)
        if self._on_deployment is not None:
            self._on_deployment(deployment)
        return deployment

    def started(self, version_id: str, startup_ms: int) -> Version:
        """Record how long the runtime took to start a version's code (``startup_time_ms``)."""
        version = replace(self.require_version(version_id), startup_time_ms=int(startup_ms))
        self.versions = [version if v.id == version_id else v for v in self.versions]
        return version

    def discard(self, version_id: str) -> None:
        """Forget a version just uploaded whose code cannot run (the upload is refused)."""
        self.versions = [v for v in self.versions if v.id != version_id]

    def delete_deployment(self, deployment_id: str) -> Deployment:
        """Forget an old deployment; the serving one cannot be deleted."""
        deployment = self.get_deployment(deployment_id)
        if deployment is self.serving_deployment():
            raise errors.active_deployment(deployment_id)
        self.deployments.remove(deployment)
        return deployment


def _plain_number(value: float) -> float:
    """100.0 -> 100, so JSON shows percentages as the clients write them."""
    return int(value) if float(value).is_integer() else float(value)
