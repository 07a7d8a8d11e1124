"""The verify detection matrix: scenarios (selftests/detection_matrix.toml), how to apply one to an
embedded staging, and how to read each check's verdict from a pytest run's JUnit XML."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bookstrack_rollback.clients.cloudflare import CloudflareApi
from bookstrack_rollback.config import Target

MATRIX_FILE = Path(__file__).with_name("detection_matrix.toml")
CHECKS = (
    "health_check", "version_identity",
    "error_rate[probes-error rate]", "error_rate[probes-5xx rate]",
    "error_rate[analytics-error rate]", "error_rate[analytics-5xx rate]",
    "response_time[title:hamlet]", "response_time[isbn:9780743273565]",
    "response_time[title:<faker>]", "response_time[isbn:<faker>]",
    "known_records_found", "websocket_connectivity", "websocket_refuses_bogus_token",
    "cache_performance", "data_integrity[canary/library/1]", "data_integrity[canary/library/2]",
    "signal_sanity",
)
_VERDICT = re.compile(r"\b(FAIL|INCONCLUSIVE|ERROR): ")


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)  # the staging's users' traffic (PUT /__staging/users)
    deploy: dict[str, str] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)

    def expected(self) -> dict[str, str]:
        return {check: self.expect.get(check, "PASS") for check in CHECKS}


def load_scenarios() -> list[Scenario]:
    data = tomllib.loads(MATRIX_FILE.read_text())["scenarios"]
    scenarios = [Scenario(name, **spec) for name, spec in data.items()]
    for scenario in scenarios:
        unknown = set(scenario.expect) - set(CHECKS)
        assert not unknown, f"{MATRIX_FILE.name} [{scenario.name}] names unknown checks {sorted(unknown)}"
    return scenarios


def apply_scenario(target: Target, scenario: Scenario) -> None:
    """Inject the scenario into an embedded staging: runtime fault, config knobs, users' traffic, or a
    deploy."""
    assert target.base_url is not None
    with httpx.Client(base_url=target.base_url, timeout=10, trust_env=False) as admin:
        if scenario.config:
            admin.patch("/__staging/config", json=scenario.config).raise_for_status()
        if scenario.users:
            admin.put("/__staging/users", json=scenario.users).raise_for_status()
        if scenario.fault:
            admin.put("/__staging/faults", content=json.dumps(scenario.fault)).raise_for_status()
    if scenario.deploy:
        asyncio.run(_deploy(target, scenario.deploy))


async def _deploy(target: Target, spec: dict[str, str]) -> None:
    assert target.cloudflare_api_url and target.account_id and target.worker
    async with CloudflareApi(target.cloudflare_api_url, account_id=target.account_id, token=target.token,
                             worker=target.worker) as api:
        version = await api.upload_version(
            main_module="index.js", modules={"index.js": b"export default {async fetch() {}}"},
            bindings=[], annotations={"workers/tag": spec["tag"], "workers/message": spec["message"]})
        await api.deploy(version.id, spec["message"])


def verdicts_from_junit(path: Path) -> dict[str, tuple[str, str]]:
    """check -> (verdict, message) for every test case of a verify run."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "").removeprefix("test_").split("@")[0]  # "@group" under --dist loadgroup
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            found[name] = ("PASS", "")
            continue
        message = problem.get("message", "")
        match = _VERDICT.search(message)
        found[name] = (match.group(1) if match else "CRASH", message)
    return found


INNER_CONFTEST = '''
import json
import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return
    from bookstrack_rollback.pytest_plugin.settings import SETTINGS
    from matrix import Scenario, apply_scenario

    apply_scenario(config.stash[SETTINGS].target, Scenario(**json.loads({spec!r})))
'''


def inner_conftest(scenario: Scenario) -> str:
    spec = json.dumps({"name": scenario.name, "fault": scenario.fault, "config": scenario.config,
                       "users": scenario.users, "deploy": scenario.deploy})
    return INNER_CONFTEST.format(spec=spec)
