"""A real local git repository of the worker: what Methods 2 and 3 of ROLLBACK_PROCEDURE.md ("Rollback
Methods") revert, check out and deploy, and where the drill commits its **test change** ("Testing
Rollback Procedure", step 2; DESIGN.md, "Faults").

Layout, as a wrangler project::

    src/index.js      a tiny module worker; ``const VERSION = "1.9.0";`` is its release
    wrangler.toml     name, main, compatibility_date and a [vars] table (FAULT_PROFILE goes there)

Every git call runs the real ``git`` binary with a deadline, in the repository only: the user name and
e-mail are set in the repository's own config, the global and system configs are neither read nor
written, and git never prompts. A failure raises :class:`GitError`, naming the command and its stderr.

The deploy step is wrangler's (``wrangler deploy``): upload the working tree as a new version, then
deploy it to 100%. Production has no ``[env.production]`` (REALITY.md, "Method 3" row), so there is
no environment switch here: the top-level config is what deploys.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..clients.cloudflare import CloudflareApi, DeploymentInfo, VersionInfo
from ..faults import FaultProfile

MAIN_BRANCH = "main"
GIT_TIMEOUT_S = 20.0
AUTHOR_NAME = "BooksTrack rollback drill"
AUTHOR_EMAIL = "drill@bookstrack.example"
DEFAULT_COMPATIBILITY_DATE = "2025-11-01"
FAULT_PROFILE_VAR = "FAULT_PROFILE"
RELEASE_FILE = "VERSION"  # the release of a repository made from a version's code (no VERSION constant to bump)
_VERSION_LINE = re.compile(r'^const VERSION = "([^"\\]*)";$', re.MULTILINE)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

INDEX_JS = """\
// BooksTrack API worker (the drill's repository): a tiny module worker.
const VERSION = "{version}";

export default {{
  async fetch(request, env) {{
    const url = new URL(request.url);
    if (url.pathname === "/health") {{
      return Response.json({{ data: {{ status: "ok", version: VERSION, worker: env.WORKER_NAME }} }});
    }}
    return Response.json({{ success: false, error: {{ code: "NOT_FOUND" }} }}, {{ status: 404 }});
  }},
}};
"""


class WorkerRepoError(Exception):
    """The worker repository cannot do what was asked; the message says what and where."""


class GitError(WorkerRepoError):
    """A git command failed or timed out."""

    def __init__(self, message: str, *, command: tuple[str, ...], returncode: int | None, stderr: str) -> None:
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    parents: tuple[str, ...]

    @property
    def short(self) -> str:
        return self.sha[:7]


# The binding kinds the repository's wrangler.toml writes besides [vars]: Cloudflare's type -> (wrangler's
# table, the key naming the binding, the Cloudflare field -> wrangler key of the rest)
BINDING_TABLES = {
    "kv_namespace": ("kv_namespaces", "binding", {"namespace_id": "id"}),
    "durable_object_namespace": ("durable_objects.bindings", "name", {"class_name": "class_name"}),
    "analytics_engine": ("analytics_engine_datasets", "binding", {"dataset": "dataset"}),
    "service": ("services", "binding", {"service": "service"}),
}


@dataclass(frozen=True)
class WranglerConfig:
    """The keys of ``wrangler.toml`` the drill uses (and the only ones :meth:`to_toml` writes)."""

    name: str
    main: str = "src/index.js"
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE
    vars: dict[str, str] = field(default_factory=dict)
    base_dir: str | None = None  # module names are relative to it (default: the main module's folder)
    other_bindings: tuple[dict[str, str], ...] = ()  # KV, Durable Objects, Analytics Engine, services, metadata

    @classmethod
    def parse(cls, text: str, where: str = "wrangler.toml") -> "WranglerConfig":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise WorkerRepoError(f"{where} is not valid TOML: {exc}") from exc
        for key in ("name", "main", "compatibility_date"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise WorkerRepoError(f"{where}: {key} must be a non-empty string, got {data.get(key)!r}")
        variables = data.get("vars", {})
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            raise WorkerRepoError(f"{where}: [vars] must hold only string values, got {variables!r}")
        others: list[dict[str, str]] = []
        for kind, (table, name_key, fields) in BINDING_TABLES.items():
            found: Any = data
            for part in table.split("."):
                found = found.get(part, {}) if isinstance(found, dict) else {}
            for entry in found or []:
                others.append({"type": kind, "name": str(entry[name_key]),
                               **{cf: str(entry[key]) for cf, key in fields.items()}})
        if isinstance(data.get("version_metadata"), dict):
            others.append({"type": "version_metadata", "name": str(data["version_metadata"]["binding"])})
        base_dir = data.get("base_dir")
        return cls(data["name"], data["main"], data["compatibility_date"], dict(variables),
                   base_dir if isinstance(base_dir, str) else None, tuple(others))

    def to_toml(self) -> str:
        lines = [f"name = {_toml_string(self.name)}", f"main = {_toml_string(self.main)}",
                 f"compatibility_date = {_toml_string(self.compatibility_date)}"]
        if self.base_dir:
            lines.append(f"base_dir = {_toml_string(self.base_dir)}")
        lines += ["", "[vars]"]
        for key in sorted(self.vars):
            if not _BARE_KEY.match(key):
                raise WorkerRepoError(f"a [vars] name must be letters, digits, _ or -, got {key!r}")
            lines.append(f"{key} = {_toml_string(self.vars[key])}")
        for binding in self.other_bindings:
            if binding["type"] == "version_metadata":
                lines += ["", "[version_metadata]", f"binding = {_toml_string(binding['name'])}"]
                continue
            table, name_key, fields = BINDING_TABLES[binding["type"]]
            lines += ["", f"[[{table}]]", f"{name_key} = {_toml_string(binding['name'])}"]
            lines += [f"{key} = {_toml_string(binding[cf])}" for cf, key in fields.items()]
        return "\n".join(lines) + "\n"

    def bindings(self) -> list[dict[str, str]]:
        """One ``plain_text`` binding per [vars] entry, then the other bindings, as wrangler uploads them."""
        return [{"type": "plain_text", "name": key, "text": self.vars[key]} for key in sorted(self.vars)] + [
            dict(b) for b in self.other_bindings]


def _toml_string(value: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _git_env(path: Path) -> dict[str, str]:
    """No inherited GIT_* variable (a GIT_DIR would point elsewhere), no prompt, no global or system
    config, and no search above ``path`` for an enclosing repository."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_CEILING_DIRECTORIES=str(path.resolve().parent), GIT_EDITOR="true", GIT_PAGER="cat",
               LC_ALL="C")
    return env


class WorkerRepo:
    """One worker repository on disk (a wrangler project under git)."""

    def __init__(self, path: Path, *, git: str = "git", timeout_s: float = GIT_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._git_binary = git
        self.timeout_s = timeout_s

    # --- git -------------------------------------------------------------------------------------
    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``git <args>`` in the repository, with a deadline; raise :class:`GitError` on failure."""
        command = ("git", *args)
        shown = " ".join(command)
        try:
            result = subprocess.run(
                [self._git_binary, *args], cwd=self.path, env=_git_env(self.path), capture_output=True, text=True,
                timeout=self.timeout_s, stdin=subprocess.DEVNULL, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"`{shown}` did not finish within {self.timeout_s:g} s in {self.path}",
                           command=command, returncode=None, stderr=_text(exc.stderr)) from None
        except OSError as exc:
            raise GitError(f"`{shown}` could not run in {self.path}: {exc}",
                           command=command, returncode=None, stderr="") from exc
        if check and result.returncode != 0:
            stderr = result.stderr.strip() or result.stdout.strip()
            raise GitError(f"`{shown}` failed (exit {result.returncode}) in {self.path}: {stderr}",
                           command=command, returncode=result.returncode, stderr=stderr)
        return result

    def _out(self, *args: str) -> str:
        return self.git(*args).stdout.strip()

    # --- creating and changing the worker ---------------------------------------------------------
    @classmethod
    def create(cls, path: Path, worker_name: str, stable_tag: str, *,
               compatibility_date: str = DEFAULT_COMPATIBILITY_DATE, timeout_s: float = GIT_TIMEOUT_S,
               code: tuple[str, Mapping[str, bytes]] | None = None, bindings: Sequence[Mapping[str, Any]] = (),
               ) -> "WorkerRepo":
        """A new repository whose first commit, on ``main`` and tagged ``stable_tag``, is the stable release:
        the tiny worker above, or ``code`` (main module, modules) with ``bindings`` (a version's, as the
        Cloudflare API shows them) when the staging runs the code: the modules under ``src/`` (``base_dir``),
        the release in a ``VERSION`` file, the bindings in wrangler.toml."""
        path = Path(path)
        _js_safe(stable_tag)
        if path.exists() and any(path.iterdir()):
            raise WorkerRepoError(f"cannot create a worker repository in {path}: the directory is not empty")
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, timeout_s=timeout_s)
        repo.git("init", "--quiet", "--initial-branch", MAIN_BRANCH)
        for key, value in (("user.name", AUTHOR_NAME), ("user.email", AUTHOR_EMAIL),
                           ("commit.gpgSign", "false"), ("tag.gpgSign", "false")):
            repo.git("config", "--local", key, value)
        (path / "src").mkdir()
        if code is None:
            repo.write_index_js(INDEX_JS.format(version=_js_safe(stable_tag)))
            repo.write_config(WranglerConfig(worker_name, compatibility_date=compatibility_date,
                                             vars={"ENVIRONMENT": "staging"}))
        else:
            main, modules = code
            for name, content in modules.items():
                target = path / "src" / PurePosixPath(name)
                if not target.resolve().is_relative_to((path / "src").resolve()):
                    raise WorkerRepoError(f"module name {name!r} points outside the repository's src/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            (path / RELEASE_FILE).write_text(stable_tag + "\n", encoding="utf-8")
            repo.write_config(_config_of(worker_name, main, compatibility_date, bindings))
        repo.git("add", "--all")
        repo.git("commit", "--quiet", "-m", f"Stable release {stable_tag}")
        repo.git("tag", stable_tag)
        return repo

    def commit_test_change(self, fault: FaultProfile, tag: str, message: str) -> str:
        """The drill's test change: ``FAULT_PROFILE`` in [vars] set to the profile's JSON and the
        VERSION constant bumped to ``tag``; committed, tagged ``tag``. Returns the commit sha."""
        _js_safe(tag)
        config = self.read_config()
        self.write_config(replace(config, vars={**config.vars, FAULT_PROFILE_VAR: fault.to_json()}))
        if (self.path / RELEASE_FILE).is_file():
            (self.path / RELEASE_FILE).write_text(_js_safe(tag) + "\n", encoding="utf-8")
        else:
            source = self.read_index_js()
            if not _VERSION_LINE.search(source):
                raise WorkerRepoError(f"{self.path / 'src/index.js'} has no `const VERSION = \"...\";` line to bump")
            self.write_index_js(_VERSION_LINE.sub(f'const VERSION = "{_js_safe(tag)}";', source, count=1))
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        self.git("tag", tag)
        return self.head()

    def revert(self, sha: str) -> str:
        """``git revert <sha> --no-edit`` (Method 2, step 2); returns the revert commit's sha. A revert
        that stops (a conflict) is aborted, so the repository is left as it was."""
        try:
            self.git("revert", "--no-edit", sha)
        except GitError:
            if (self.path / ".git" / "REVERT_HEAD").exists() or (self.path / ".git" / "sequencer").exists():
                self.git("revert", "--abort", check=False)
            raise
        return self.head()

    def checkout(self, ref: str) -> str:
        """``git checkout <ref>``, detached (Method 3, step 1); returns the sha now checked out."""
        self.git("checkout", "--quiet", "--detach", ref)
        return self.head()

    def back_to_main(self) -> str:
        """``git checkout main`` (Method 3, step 4); returns main's head."""
        self.git("checkout", "--quiet", MAIN_BRANCH)
        return self.head()

    # --- reading -----------------------------------------------------------------------------------
    def head(self) -> str:
        return self._out("rev-parse", "--verify", "HEAD^{commit}")

    def branch(self) -> str | None:
        """The branch checked out, or None when HEAD is detached."""
        result = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if result.returncode != 0:
            return None
        return result.stdout.strip() or None

    def log(self, n: int = 5, ref: str = "HEAD") -> list[Commit]:
        """``git log --oneline -n`` as records, newest first."""
        out = self.git("log", f"-n{int(n)}", "--format=%H%x1f%s%x1f%P", ref, "--").stdout
        commits = []
        for line in out.splitlines():
            sha, subject, parents = line.split("\x1f", 2)
            commits.append(Commit(sha, subject, tuple(parents.split())))
        return commits

    def resolve(self, ref: str) -> str:
        return self._out("rev-parse", "--verify", f"{ref}^{{commit}}")

    def changed_files(self, a: str, b: str) -> list[str]:
        """Paths whose content differs between two commits (empty: the same tree)."""
        return self._out("diff", "--name-only", a, b, "--").splitlines()

    def reflog(self, n: int = 10) -> list[str]:
        """HEAD's reflog subjects, newest first (e.g. ``checkout: moving from main to <sha>``)."""
        return self._out("reflog", "show", f"-n{int(n)}", "--format=%gs", "HEAD", "--").splitlines()

    def is_clean(self) -> bool:
        return not self._out("status", "--porcelain", "--untracked-files=all")

    def read_config(self) -> WranglerConfig:
        path = self.path / "wrangler.toml"
        return WranglerConfig.parse(path.read_text(encoding="utf-8"), str(path))

    def write_config(self, config: WranglerConfig) -> None:
        (self.path / "wrangler.toml").write_text(config.to_toml(), encoding="utf-8")

    def read_index_js(self) -> str:
        return (self.path / "src" / "index.js").read_text(encoding="utf-8")

    def write_index_js(self, text: str) -> None:
        (self.path / "src" / "index.js").write_text(text, encoding="utf-8")

    def release(self) -> str | None:
        """The working tree's release: its VERSION file, else the VERSION constant of src/index.js."""
        if (self.path / RELEASE_FILE).is_file():
            return (self.path / RELEASE_FILE).read_text(encoding="utf-8").strip() or None
        match = _VERSION_LINE.search(self.read_index_js())
        return match.group(1) if match else None

    def modules(self, config: WranglerConfig) -> tuple[str, dict[str, bytes]]:
        """(main module name, every module under ``base_dir`` (default: the main module's directory)), named
        as wrangler names them: relative to that directory, with forward slashes."""
        main = PurePosixPath(config.main)
        base = PurePosixPath(config.base_dir) if config.base_dir else main.parent
        root = self.path / base
        if not (self.path / main).is_file():
            raise WorkerRepoError(f"wrangler.toml main {config.main!r} is not a file in {self.path}")
        modules = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file() and path.suffix in (".js", ".mjs")
        }
        return (self.path / main).relative_to(root).as_posix(), modules

    # --- the deploy step ---------------------------------------------------------------------------
    async def deploy(self, api: CloudflareApi, *, message: str, tag: str | None = None,
                     ) -> tuple[VersionInfo, DeploymentInfo]:
        """``wrangler deploy`` of the working tree (plain, no ``--env production``: REALITY.md): upload
        a version (modules, one ``plain_text`` binding per [vars] entry, annotations ``workers/tag`` =
        ``tag`` or the VERSION constant, ``workers/message`` = ``message`` and the commit sha), then
        deploy it to 100% of traffic. Refuses a tree with uncommitted changes (the sha would lie)
        and a worker name that is not the one ``api`` deploys to."""
        config = self.read_config()
        if config.name != api.worker:
            raise WorkerRepoError(f"wrangler.toml in {self.path} names worker {config.name!r}, but the "
                                  f"Cloudflare API is bound to worker {api.worker!r}; refusing to deploy")
        if not self.is_clean():
            raise WorkerRepoError(f"{self.path} has uncommitted changes; commit them before deploying")
        sha = self.head()
        main_module, modules = self.modules(config)
        version = await api.upload_version(
            main_module=main_module, modules=modules, bindings=config.bindings(),
            annotations={"workers/tag": tag or self.release() or sha[:7],
                         "workers/message": f"{message} (commit {sha})"},
            compatibility_date=config.compatibility_date,
        )
        deployment = await api.deploy(version.id, message)
        return version, deployment


def _config_of(worker_name: str, main: str, compatibility_date: str,
               bindings: Sequence[Mapping[str, Any]]) -> WranglerConfig:
    """wrangler.toml of a version's code: its plain-text variables in [vars], its other bindings in their
    tables; a binding wrangler.toml cannot hold here (a secret, a JSON variable, ...) is refused."""
    variables: dict[str, str] = {}
    others: list[dict[str, str]] = []
    for binding in bindings:
        kind, name = str(binding.get("type")), str(binding.get("name"))
        if kind == "plain_text":
            variables[name] = str(binding.get("text", ""))
        elif kind == "version_metadata":
            others.append({"type": kind, "name": name})
        elif kind in BINDING_TABLES:
            fields = BINDING_TABLES[kind][2]
            others.append({"type": kind, "name": name, **{cf: str(binding.get(cf, "")) for cf in fields}})
        else:
            raise WorkerRepoError(f"binding {name} ({kind}) cannot be written to the drill repository's wrangler.toml")
    return WranglerConfig(worker_name, main=f"src/{main}", compatibility_date=compatibility_date, vars=variables,
                          base_dir="src", other_bindings=tuple(others))


def _js_safe(tag: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", tag):
        raise WorkerRepoError(f"a release tag must be letters, digits, '.', '_', '+' or '-', got {tag!r}")
    return tag


def _text(raw: str | bytes | None) -> str:
    if raw is None:
        return ""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
