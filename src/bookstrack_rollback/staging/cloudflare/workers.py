"""Worker versions and deployments (contract/cloudflare-api.md, "Versions", "Deployments").

A version is immutable code + bindings + annotations; a deployment says which version(s) serve, at
which percentage. A rollback is nothing but a new deployment of an older version. The first
deployment in ``deployments`` (newest first) is the one serving.

Interface used by the rest of the staging (keep it stable):
- ``serving_deployment()`` / ``version_for_request()``: what answers a request now;
- ``Version.var(name)``: a ``plain_text`` binding's text (e.g. ``FAULT_PROFILE``), or None;
- ``Version.tag``: its ``workers/tag`` annotation, or None;
- ``upload(...)`` and ``deploy(...)``: used by the HTTP routes and the admin seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..state import Staging


@dataclass
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
    author_email: str = "drill@bookstrack.example"

    @property
    def tag(self) -> str | None:
        return self.annotations.get("workers/tag")

    def var(self, name: str) -> str | None:
        for binding in self.bindings:
            if binding.get("name") == name and binding.get("type") in ("plain_text", "json"):
                text = binding.get("text", binding.get("json"))
                return text if isinstance(text, str) else None
        return None


@dataclass
class Deployment:
    id: str
    created_on: str
    created_at: float
    source: str
    versions: list[tuple[str, int]]  # (version_id, percentage)
    annotations: dict[str, str]
    strategy: str = "percentage"
    author_email: str = "drill@bookstrack.example"


class WorkersModel:
    def __init__(self, staging: "Staging") -> None:
        self._staging = staging
        self.versions: list[Version] = []  # oldest first
        self.deployments: list[Deployment] = []  # newest first
        self._seed_history()

    def _seed_history(self) -> None:
        """A short, plausible history: three stable releases, the newest serving."""
        for tag, message in (
            ("1.7.0", "Stable release"),
            ("1.8.0", "Hotfix cache issue"),
            ("1.9.0", "Stable release 1.9.0"),
        ):
            version = self.upload(
                bindings=[],
                annotations={"workers/tag": tag, "workers/message": message},
            )
            self.deploy([(version.id, 100)], annotations={"workers/message": message})

    # --- reads -------------------------------------------------------------------------------
    def get_version(self, version_id: str) -> Version | None:
        for version in self.versions:
            if version.id == version_id:
                return version
        return None

    def serving_deployment(self) -> Deployment:
        return self.deployments[0]

    def version_for_request(self) -> Version:
        """The version that answers one request, honouring a split deployment's percentages."""
        versions = self.serving_deployment().versions
        if len(versions) == 1:
            found = self.get_version(versions[0][0])
        else:
            roll = self._staging.rng.uniform(0, 100)
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

    # --- writes ------------------------------------------------------------------------------
    def upload(
        self,
        *,
        bindings: list[dict[str, Any]],
        annotations: dict[str, str],
        main_module: str = "index.js",
        modules: dict[str, bytes] | None = None,
        source: str = "wrangler",
    ) -> Version:
        clock = self._staging.clock
        now = clock.now()
        annotations = {"workers/triggered_by": "upload", **annotations}
        version = Version(
            id=self._staging.rng.uuid4(),
            number=len(self.versions) + 1,
            created_on=clock.iso(now),
            created_at=now,
            annotations=annotations,
            bindings=list(bindings),
            main_module=main_module,
            modules=dict(modules or {}),
            source=source,
        )
        self.versions.append(version)
        return version

    def deploy(
        self,
        versions: list[tuple[str, int]],
        *,
        annotations: dict[str, str] | None = None,
        source: str = "api",
    ) -> Deployment:
        clock = self._staging.clock
        now = clock.now()
        deployment = Deployment(
            id=self._staging.rng.uuid4(),
            created_on=clock.iso(now),
            created_at=now,
            source=source,
            versions=list(versions),
            annotations=dict(annotations or {}),
        )
        self.deployments.insert(0, deployment)
        books = getattr(self._staging, "books", None)
        if books is not None:  # None only while the initial history is seeded
            books.on_deployment(deployment)
        return deployment
