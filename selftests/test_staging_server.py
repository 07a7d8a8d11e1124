"""The embedded staging as a process: started in a thread or from the command line, admin routes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from bookstrack_rollback.staging import StagingConfig, StagingStartError, start_in_thread
from bookstrack_rollback.staging.state import RUNTIME_FAULT_KEY

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def _read_until(proc: subprocess.Popen[str], marker: str, deadline_s: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + deadline_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no line containing {marker!r} within {deadline_s}s; got {lines}")


def test_threads_get_distinct_ephemeral_ports_and_stop_cleanly():
    first, second = start_in_thread(), start_in_thread()
    try:
        assert first.port != second.port
        for running in (first, second):
            info = httpx.get(f"{running.base_url}/__staging/info", timeout=TIMEOUT).json()
            assert info["cloudflare_api_url"] == f"{running.base_url}/client/v4"
            assert info["worker_name"] == "api-worker-staging"
    finally:
        first.stop()
        second.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.base_url}/__staging/info", timeout=TIMEOUT)


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(StagingStartError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_in_thread(port=port)


def test_command_line_prints_what_a_client_needs_and_stops_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookstrack_rollback.staging", "--port", "0", "--token", "my-dev-token-1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _read_until(proc, "admin:", deadline_s=20)
        text = "\n".join(lines)
        base = next(line.split()[-1] for line in lines if "BooksTrack base URL" in line)
        assert f"Cloudflare API base URL: {base}/client/v4" in text
        assert "account id:" in text and "api-worker-staging" in text
        assert "development token:       my-dev-token-1" in text
        info = httpx.get(f"{base}/__staging/info", timeout=TIMEOUT).json()
        assert info["bookstrack_base_url"] == base
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_command_line_refuses_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bookstrack_rollback.staging", "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert done.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr


def test_command_line_help_explains_itself():
    done = subprocess.run([sys.executable, "-m", "bookstrack_rollback.staging", "--help"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for words in ("BooksTrack API", "/client/v4", "--ingestion-lag", "--health-shape", "127.0.0.1"):
        assert words in done.stdout


def test_reset_restores_the_seeded_state(client, staging):
    first = staging.workers.serving_deployment().id
    staging.kv.put_own("canary:1", b"v")
    assert client.post("/__staging/reset", json={}).status_code == 200
    assert staging.kv.get_own("canary:1") is None
    assert staging.workers.serving_deployment().id == first  # same seed, same ids
    answer = client.post("/__staging/reset", json={"seed": 99})
    assert answer.json() == {"reset": True, "seed": 99}
    assert staging.workers.serving_deployment().id != first
    assert client.post("/__staging/reset", json={"seed": "x"}).status_code == 400
    assert client.post("/__staging/reset", content=b"{not json").status_code == 400


def test_request_log_redacts_tokens(client):
    client.get("/ws/progress", params={"jobId": "j1", "token": "secret-token-value"})
    client.get("/client/v4/accounts/x/workers/scripts", headers={"Authorization": "Bearer abcdefgh123"})
    log = client.get("/__staging/requests").json()["requests"]
    text = json.dumps(log)
    assert "secret-token-value" not in text and "abcdefgh123" not in text
    progress = next(r for r in log if r["path"] == "/ws/progress")
    assert progress["query"] == "jobId=j1&token=%5Bredacted%5D" and progress["api"] == "bookstrack"
    assert any(r["api"] == "cloudflare" and r["status"] == 403 for r in log)
    only_cf = client.get("/__staging/requests", params={"api": "cloudflare"}).json()["requests"]
    assert only_cf and all(r["api"] == "cloudflare" for r in only_cf)


def test_runtime_config_knobs_are_validated(client, staging):
    assert client.patch("/__staging/config", json={"ingestion_lag_s": 2.5}).json()["ingestion_lag_s"] == 2.5
    assert staging.config.ingestion_lag_s == 2.5
    for body, message in (
        ({"seed": 1}, "'seed' cannot be changed at runtime"),
        ({"health_shape": "weird"}, "health_shape must be 'version' or 'constant'"),
        ({"ingestion_lag_s": "soon"}, "ingestion_lag_s must be a float"),
    ):
        answer = client.patch("/__staging/config", json=body)
        assert answer.status_code == 400 and message in answer.json()["error"]
    assert staging.config.ingestion_lag_s == 2.5 and staging.config.health_shape == "version"


def test_runtime_fault_flag_set_read_and_cleared(client, staging):
    bad = client.put("/__staging/faults", content=b'{"error_rate": 2}')
    assert bad.status_code == 400 and "error_rate must be a number from 0 to 1" in bad.json()["error"]
    assert staging.kv.get_own(RUNTIME_FAULT_KEY) is None
    assert client.put("/__staging/faults", content=b"{not json").status_code == 400
    good = client.put("/__staging/faults", json={"error_rate": 0.2, "label": "pre-existing errors"})
    assert good.status_code == 200 and good.json()["runtime"]["error_rate"] == 0.2
    assert json.loads(staging.kv.get_own(RUNTIME_FAULT_KEY))["label"] == "pre-existing errors"
    assert client.get("/__staging/faults").json()["runtime"]["error_rate"] == 0.2
    assert client.delete("/__staging/faults").json() == {"cleared": True}
    assert client.get("/__staging/faults").json() == {"runtime": None}


def test_a_staging_config_is_immutable_and_overridable():
    config = StagingConfig()
    changed = config.with_overrides(ingestion_lag_s=1.0)
    assert config.ingestion_lag_s == 0.0 and changed.ingestion_lag_s == 1.0
