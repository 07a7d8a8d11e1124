"""Drill your own worker, locally, first: deploy a worker's own code to the embedded staging in workerd mode
with the real ``wrangler deploy``, check that it carries the staging hook, and hand it to the drills as the
known stable version (README, "Drill your own worker, locally, first").

The checks, in order, each failing with a sentence that names what is missing:
1. ``WORKER_DIR`` has a wrangler configuration (wrangler.toml, wrangler.json or wrangler.jsonc);
2. ``wrangler deploy`` succeeds (its last lines are shown, the token never);
3. the deployed code mentions ``FAULT_PROFILE`` (the hook reads it): else it cannot act out a drill;
4. a copy of it whose ``FAULT_PROFILE`` asks every API request to fail (500) does fail a title search, and
   the worker's own version answers it again once redeployed: the hook is wired into its fetch.
Every subprocess and request has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..clients.cloudflare import CloudflareApi, VersionInfo
from ..config import Target
from .preparation import DrillError
from .version_copy import copy_version
from .worker_repo import FAULT_PROFILE_VAR

REPO = Path(__file__).resolve().parents[3]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
CONFIG_NAMES = ("wrangler.toml", "wrangler.json", "wrangler.jsonc")
DEPLOY_TIMEOUT_S = 180.0
REHEARSAL_TAG = "rehearsal"
EVERY_REQUEST_FAILS = json.dumps({"error_rate": 1.0, "share_5xx": 1.0, "label": "rehearsal hook check"})
HOOK = "drills/staging-hook/fault-hook.mjs"


class RehearsalError(DrillError):
    """The worker cannot be rehearsed: the message says what is missing and what to do."""


@dataclass(frozen=True)
class Rehearsed:
    version: VersionInfo
    wrangler_lines: list[str]

    @property
    def summary(self) -> str:
        return (f"deployed {self.version.label} from your worker with wrangler; it carries the staging hook "
                f"(a copy with FAULT_PROFILE failing every request failed, and your version answered again)")


def config_file(worker_dir: Path) -> Path:
    if not worker_dir.is_dir():
        raise RehearsalError(f"WORKER_DIR {worker_dir} is not a directory")
    for name in CONFIG_NAMES:
        if (worker_dir / name).is_file():
            return worker_dir / name
    raise RehearsalError(f"{worker_dir} has no wrangler configuration ({', '.join(CONFIG_NAMES)}): "
                         "point WORKER_DIR at the folder you run `wrangler deploy` in")


async def deploy_with_wrangler(worker_dir: Path, target: Target, environment: str | None = None) -> list[str]:
    """``wrangler deploy`` of ``worker_dir`` (its ``environment``, if given) to the target (the embedded
    staging), under the target's worker name."""
    config = config_file(worker_dir)
    wrangler = os.environ.get("WRANGLER_BIN") or (str(WRANGLER) if WRANGLER.is_file() else shutil.which("wrangler"))
    if not wrangler:
        raise RehearsalError("wrangler is not installed: run `make clients`")
    token = target.token.reveal()
    env = {**os.environ, "CLOUDFLARE_API_BASE_URL": str(target.cloudflare_api_url),
           "CLOUDFLARE_ACCOUNT_ID": str(target.account_id), "CLOUDFLARE_API_TOKEN": token,
           "WRANGLER_SEND_METRICS": "false", "CI": "true", "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        wrangler, "deploy", "--config", str(config), "--name", str(target.worker), "--tag", REHEARSAL_TAG,
        "--message", f"Rehearsal: {worker_dir.name} as the known stable version",
        *(["--env", environment] if environment else []), cwd=str(worker_dir), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEPLOY_TIMEOUT_S)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise RehearsalError(f"wrangler deploy of {worker_dir} did not finish within {DEPLOY_TIMEOUT_S:.0f}s") from None
    lines = [line.replace(token, "[redacted]") for line in output.decode(errors="replace").splitlines() if line.strip()]
    if process.returncode != 0:
        shown = "\n  ".join(lines[-8:])
        raise RehearsalError(f"wrangler deploy of {worker_dir} failed (exit {process.returncode}):\n  {shown}")
    return lines


async def check_hook(api: CloudflareApi, base_url: str, version: VersionInfo) -> None:
    """Raise RehearsalError unless ``version`` carries the staging hook (the module docstring's 3 and 4)."""
    code = await api.version_content(version.id)
    if not any(FAULT_PROFILE_VAR.encode() in module.content for module in code.modules):
        raise RehearsalError(
            f"your worker's code ({len(code.modules)} module(s), main {code.main_module}) never reads "
            f"{FAULT_PROFILE_VAR}: it does not carry the staging hook, so no drill can inject a fault into it. "
            f"Wrap its fetch with withFaultProfile from {HOOK} (README, 'Drill your own worker, locally, first')")
    copy = await copy_version(api, version, set_vars={FAULT_PROFILE_VAR: EVERY_REQUEST_FAILS},
                              tag=f"{REHEARSAL_TAG}+hook-check", message="Rehearsal: does the staging hook act?")
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        await api.deploy(copy.id, "Rehearsal: hook check")
        try:
            broken = await client.get("/v1/search/title", params={"q": "hamlet"})
        finally:
            await api.deploy(version.id, "Rehearsal: back to your worker", force=True)
        healed = await client.get("/v1/search/title", params={"q": "hamlet"})
    if broken.status_code != 500:
        raise RehearsalError(
            f"a copy of your worker with {FAULT_PROFILE_VAR}={EVERY_REQUEST_FAILS} answered "
            f"{broken.status_code} to GET /v1/search/title (the hook answers 500): {FAULT_PROFILE_VAR} is in the code "
            f"but the hook is not wired into its fetch; export default {{ fetch: withFaultProfile(...) }} ({HOOK})")
    if healed.status_code == 500:
        raise RehearsalError(f"your own version {version.label} answers 500 to GET /v1/search/title too: "
                             "fix the worker before drilling it")


async def rehearse(worker_dir: Path, target: Target, environment: str | None = None) -> Rehearsed:
    """Deploy ``worker_dir`` to ``target`` (the embedded staging in workerd mode) and check its hook."""
    lines = await deploy_with_wrangler(worker_dir, target, environment)
    async with CloudflareApi(str(target.cloudflare_api_url), account_id=str(target.account_id), token=target.token,
                             worker=str(target.worker)) as api:
        serving = await api.serving()
        version = await api.version(serving.main_version_id)
        if version.tag != REHEARSAL_TAG:
            raise RehearsalError(f"wrangler deploy reported success, but {version.label} serves, not the version "
                                 f"tagged {REHEARSAL_TAG!r}: the deploy did not take")
        await check_hook(api, str(target.base_url), version)
    return Rehearsed(version, lines)
