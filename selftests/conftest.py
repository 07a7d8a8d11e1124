"""Fixtures for the project's own tests.

- ``staging`` + ``client``: the embedded staging in-process (ASGI, no socket), on a manual clock;
- ``live``: a real staging on a 127.0.0.1 socket, one per test module, reset before each test.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from bookstrack_rollback.staging import ManualClock, RunningStaging, Staging, StagingConfig, create_app, start_in_thread


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def staging(clock: ManualClock) -> Staging:
    return Staging(StagingConfig(seed=1234), clock=clock)


@pytest.fixture
def client(staging: Staging) -> Iterator[TestClient]:
    """An in-process client of the staging (HTTP and WebSocket through the ASGI interface)."""
    with TestClient(create_app(staging), base_url="http://staging.test") as test_client:
        yield test_client


@pytest.fixture
def cf_headers(staging: Staging) -> dict[str, str]:
    return {"Authorization": f"Bearer {staging.config.token}"}


@pytest.fixture(scope="module")
def live_server() -> Iterator[RunningStaging]:
    running = start_in_thread(StagingConfig(seed=1234))
    yield running
    running.stop()


@pytest.fixture
def live(live_server: RunningStaging) -> RunningStaging:
    """A staging on a real socket, reset to its seed before the test."""
    httpx.post(f"{live_server.base_url}/__staging/reset", json={"seed": 1234}, timeout=5).raise_for_status()
    return live_server


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester set up like this repository: the root conftest (options, fixtures) and the
    strict pytest configuration of pyproject.toml, with ``fixtures`` importable by subprocesses."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[pytest]", "addopts = " + " ".join(a for a in options["addopts"] if a not in ("-p", "pytester")),
             "timeout = " + options["timeout"], "xfail_strict = true", "markers ="]
    lines += [f"    {marker}" for marker in options["markers"]]
    lines += ["filterwarnings ="] + [f"    {f}" for f in options["filterwarnings"]]
    pytester.makefile(".ini", pytest="\n".join(lines))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for name in ("BOOKSTRACK_TARGET", "BOOKSTRACK_TIME_SCALE", "BOOKSTRACK_SEED",
                 "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    return pytester
