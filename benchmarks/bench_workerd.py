"""The embedded staging in workerd mode (issue 12): what running the deployed code costs.

- start: from launching ``python -m bookstrack_rollback.staging`` to the first 200 from /health (the
  serving version's workerd has started), in workerd and in python mode;
- requests/s through workerd on the reference Worker (target >= 500/s on a 2-core machine), a closed
  loop of raw sockets from another process (loadgen.py), /health and cached title searches;
- one version switch: upload a copy of the serving version with a new tag (its workerd starts: the
  upload's ``startup_time_ms``), then deploy it and time deploy -> the first /health that reports the new
  tag; and the rollback back to the warm previous version the same way;
- the wall time and user CPU of the suites of ``make drill`` in each mode (``--staging-runtime``), unless
  ``--no-drill``.

    .venv/bin/python benchmarks/bench_workerd.py [--json] [--seconds 5] [--connections 8] [--no-drill]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from loadgen import StagingProcess, run_load  # noqa: E402

DEV_TOKEN = "bookstrack-staging-dev-token"
REPEATS = 5


def wait_healthy(base_url: str, timeout: float = 60.0) -> float:
    """Seconds until /health answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{base_url}/health did not answer 200 within {timeout:.0f}s")


def start_time(runtime: str) -> float:
    """Median seconds from launch to the first healthy answer."""
    times = []
    for _ in range(3):
        launched = time.monotonic()
        with StagingProcess("--runtime", runtime) as staging:
            wait_healthy(staging.base_url)
            times.append(time.monotonic() - launched)
    return statistics.median(times)


def throughput(runtime: str, seconds: float, connections: int) -> dict[str, float]:
    paths = {"health": ["/health"], "title search (cached)": [f"/v1/search/title?q={q}" for q in ("hamlet", "dune", "emma")]}
    figures = {}
    with StagingProcess("--runtime", runtime) as staging:
        wait_healthy(staging.base_url)
        for label, some in paths.items():
            run_load("127.0.0.1", staging.port, some, seconds=1.0, connections=connections)  # warm-up, fills caches
            result = run_load("127.0.0.1", staging.port, some, seconds=seconds, connections=connections)
            figures[label] = result.rps
            print(f"  {runtime:<8} {label:<22} {result.rps:7.0f} req/s  p50 {result.p50:6.2f} ms  "
                  f"p95 {result.quantile(0.95):6.2f} ms  ({result.errors} non-2xx)")
    return figures


def switches() -> dict[str, float]:
    """Median upload (start) time, deploy -> new answer, and rollback -> old answer, in ms."""
    upload_ms, deploy_ms, rollback_ms = [], [], []
    with StagingProcess("--runtime", "workerd") as staging:
        base = staging.base_url
        wait_healthy(base)
        info = httpx.get(base + "/__staging/info", timeout=10).json()
        api = httpx.Client(base_url=f"{base}/client/v4/accounts/{info['account_id']}/workers/scripts/{info['worker_name']}",
                           headers={"Authorization": f"Bearer {DEV_TOKEN}"}, timeout=30)
        serving = api.get("/deployments").json()["result"]["deployments"][0]["versions"][0]["version_id"]
        stable = api.get(f"/versions/{serving}").json()["result"]
        content = api.get("/content/v2", params={"version": serving})
        parts = _parts(content)
        for k in range(REPEATS):
            tag = f"bench-{k}"
            metadata = {"main_module": content.headers["cf-entrypoint"], "annotations": {"workers/tag": tag},
                        "bindings": stable["resources"]["bindings"]}
            files = [("metadata", (None, json.dumps(metadata), "application/json"))]
            files += [(name, (name, code, "application/javascript+module")) for name, code in parts.items()]
            started = time.monotonic()
            upload = api.post("/versions", files=files)
            upload.raise_for_status()
            upload_ms.append((time.monotonic() - started) * 1000)
            deploy_ms.append(_switch(api, base, upload.json()["result"]["id"], tag))
            rollback_ms.append(_switch(api, base, serving, stable["annotations"].get("workers/tag", "")))
    return {"upload_ms": statistics.median(upload_ms), "deploy_to_new_answer_ms": statistics.median(deploy_ms),
            "rollback_to_old_answer_ms": statistics.median(rollback_ms)}


def _switch(api: httpx.Client, base: str, version_id: str, tag: str) -> float:
    started = time.monotonic()
    api.post("/deployments", params={"force": "true"},
             json={"strategy": "percentage", "versions": [{"version_id": version_id, "percentage": 100}]}).raise_for_status()
    while time.monotonic() - started < 30:
        if httpx.get(base + "/health", timeout=5).json().get("data", {}).get("version") == tag:
            return (time.monotonic() - started) * 1000
    raise RuntimeError(f"version {tag} did not answer /health within 30 s of its deployment")


def _parts(content: httpx.Response) -> dict[str, bytes]:
    boundary = content.headers["content-type"].split("boundary=", 1)[1].encode()
    parts = {}
    for chunk in content.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = body
    return parts


def drill_time(runtime: str) -> tuple[float, float]:
    """(wall seconds, user CPU seconds of the run and its children) of the suites of ``make drill``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "tests", "drills", "-m", "verify or triage or drill", "-q",
                    "-p", "no:cacheprovider", "--staging-runtime", runtime, "--reports-dir",
                    str(ROOT / "reports" / f"bench-workerd-{runtime}")],
                   cwd=ROOT, timeout=3600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-drill", action="store_true", help="skip the make drill wall times (minutes each)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args()
    figures: dict[str, object] = {}
    print("staging start (launch -> first healthy /health), median of 3")
    for runtime in ("workerd", "python"):
        figures[f"start_s_{runtime}"] = seconds = start_time(runtime)
        print(f"  {runtime:<8} {seconds:.2f} s")
    print(f"throughput, {args.connections} connections, {args.seconds:g} s, loopback")
    for runtime in ("workerd", "python"):
        figures[f"rps_{runtime}"] = throughput(runtime, args.seconds, args.connections)
    search_rps = figures["rps_workerd"]["title search (cached)"]  # type: ignore[index]
    print(f"  workerd title searches: {search_rps:.0f} req/s (target >= 500): {'MET' if search_rps >= 500 else 'MISSED'}")
    print(f"version switch in workerd mode, median of {REPEATS}")
    figures["switch"] = switch = switches()
    print(f"  upload of a copy (its workerd starts):      {switch['upload_ms']:7.0f} ms")
    print(f"  deploy -> first answer from the new code:   {switch['deploy_to_new_answer_ms']:7.0f} ms")
    print(f"  rollback -> first answer from the old code: {switch['rollback_to_old_answer_ms']:7.0f} ms")
    if not args.no_drill:
        print("the suites of make drill (tests + drills, every scenario; no reports): wall time, user CPU")
        for runtime in ("python", "workerd"):
            wall, cpu = drill_time(runtime)
            figures[f"drill_s_{runtime}"], figures[f"drill_cpu_s_{runtime}"] = wall, cpu
            print(f"  {runtime:<8} {wall / 60:.1f} min, {cpu / 60:.1f} min of CPU")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
