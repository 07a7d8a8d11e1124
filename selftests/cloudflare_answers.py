"""Shared by the Cloudflare API tests: paths of the staging's worker, the error envelope check, and the
real clients' harness (wrangler run as a subprocess against a live staging: notes/real-clients.md).

Two wranglers are checked by default, each installed by ``make clients``: the one pinned in
``package.json`` (4.86.0, runs on the machine's Node 20) and the newest 4.x of
``clients/node22/package-lock.json``, which needs Node 22 and runs on the ``node`` of npm's ``node@22``
package installed next to it. A wrangler that is not installed (or cannot run) is skipped, saying why.
``WRANGLER_BIN`` names other binaries instead, separated by ``os.pathsep``; a ``node`` next to one is
used to run it. Every subprocess has a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from bookstrack_rollback.staging import RunningStaging, Staging

ROOT = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).resolve().parent / "workers"  # small Worker directories for `wrangler deploy`
COMMAND_TIMEOUT_S = 90.0
PINNED_WRANGLER = ROOT / "node_modules/.bin/wrangler"
NODE22_WRANGLER = ROOT / "clients/node22/node_modules/.bin/wrangler"
HOW_TO_INSTALL = {
    PINNED_WRANGLER: "make clients (npm ci: the wrangler of package-lock.json)",
    NODE22_WRANGLER: "make clients (npm ci --prefix clients/node22: the newest wrangler 4.x and npm's node@22)",
}


def scripts(staging: Staging) -> str:
    return f"/client/v4/accounts/{staging.config.account_id}/workers/scripts/{staging.config.worker_name}"


def assert_error(response, status: int, code: int, *, contains: str = "") -> str:
    """The Cloudflare error envelope with ``status`` and ``code``; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code, body
    assert contains in body["errors"][0]["message"], body["errors"][0]["message"]
    return body["errors"][0]["message"]


# --- wrangler ---------------------------------------------------------------------------------------
class Wrangler(NamedTuple):
    binary: Path
    version: str
    path: str  # the PATH to run it with: a node installed next to it first


def wrangler_params() -> list[Any]:
    """One pytest param per wrangler to check: ``WRANGLER_BIN``'s, else the pinned and the Node 22 one."""
    listed = [Path(p) for p in os.environ.get("WRANGLER_BIN", "").split(os.pathsep) if p]
    if listed:
        return [pytest.param(p, id=str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)) for p in listed]
    return [pytest.param(PINNED_WRANGLER, id="wrangler-pinned"), pytest.param(NODE22_WRANGLER, id="wrangler-node22")]


def find_wrangler(binary: Path) -> Wrangler:
    """The wrangler at ``binary`` ready to run, or a skip saying how to install it or why it cannot run."""
    if not binary.is_file():
        pytest.skip(f"{binary} is not installed: {HOW_TO_INSTALL.get(binary, 'WRANGLER_BIN names a missing file')}")
    path = os.environ["PATH"]
    if (binary.parent / "node").is_file():
        path = f"{binary.parent}{os.pathsep}{path}"
    if shutil.which("node", path=path) is None:
        pytest.skip(f"node is not on PATH, so {binary} cannot run")
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                          env={"PATH": path, "WRANGLER_SEND_METRICS": "false"}, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[0]
        pytest.skip(f"{binary} cannot run here: {said}")
    return Wrangler(binary, done.stdout.strip().splitlines()[-1], path)


def wrangler_environment(wrangler: Wrangler, live: RunningStaging, home: Path) -> dict[str, str]:
    """Exactly what wrangler needs to talk only to the staging: no proxy variables, a throwaway HOME."""
    config = live.config
    return {
        "PATH": wrangler.path,
        "HOME": str(home),
        "TMPDIR": str(home),
        "CLOUDFLARE_API_BASE_URL": live.cloudflare_api_url,
        "CLOUDFLARE_API_TOKEN": config.token,
        "CLOUDFLARE_ACCOUNT_ID": config.account_id,
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_HIDE_BANNER": "true",
        "WRANGLER_SEND_ERROR_REPORTS": "false",
        "FORCE_COLOR": "0",
    }


def run_wrangler(wrangler: Wrangler, env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str = "",
                 expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Run one wrangler command (in ``cwd``, default the throwaway HOME) and check its exit status."""
    done = subprocess.run([str(wrangler.binary), *args], env=env, cwd=cwd or env["HOME"], capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S, input=stdin)
    assert done.returncode == expect, (
        f"wrangler {wrangler.version} {' '.join(args)} exited {done.returncode}, expected {expect}\n"
        f"{done.stdout}\n{done.stderr}"
    )
    return done


def worker_directory(name: str, into: Path) -> Path:
    """A copy of ``selftests/workers/<name>`` (wrangler writes its build output next to the config)."""
    target = into / name
    shutil.copytree(WORKERS / name, target)
    return target


def cf(live: RunningStaging, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A Cloudflare API call on the staging's worker (``path`` under ``.../workers/scripts/{worker}``)."""
    config = live.config
    url = f"{live.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}{path}"
    return httpx.request(method, url, headers={"Authorization": f"Bearer {config.token}"}, timeout=10,
                         trust_env=False, **kwargs)
