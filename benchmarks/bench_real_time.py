"""`pytest -m verify` at time scale 1 against the embedded staging, as after a real rollback: every check
must PASS, and the run must last what its plan says (goal: within 5% of the run's window, which is the
runbook's longest, the cache query's 10 minutes, plus the analytics lag), sending what it announced.

Not in `make test` (it takes ten minutes); `make bench` runs it last.

    .venv/bin/python benchmarks/bench_real_time.py [--time-scale 1] [--lag 0]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]

from loadgen import StagingProcess  # noqa: E402

TOKEN = "bench-real-time-token"


def requests_and_users(base_url: str) -> tuple[int, int]:
    """The BooksTrack requests the staging served so far, and how many of them its users sent."""
    served = httpx.get(f"{base_url}/__staging/requests?api=bookstrack", timeout=30).json()["count"]
    users = httpx.get(f"{base_url}/__staging/users", timeout=30).json()["counters"]["sent"]
    return served, users


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--lag", type=float, default=0.0, help="the staging's Analytics Engine ingestion lag (s)")
    args = parser.parse_args()
    with StagingProcess("--users-rate", "20", "--token", TOKEN, "--ingestion-lag", str(args.lag)) as staging:
        info = httpx.get(f"{staging.base_url}/__staging/info", timeout=5).json()
        targets = Path(ROOT / "reports" / "bench-real-time-targets.toml")
        targets.parent.mkdir(parents=True, exist_ok=True)
        targets.write_text(f"""
[targets.real-time]
environment = "staging"
base_url = "{staging.base_url}"
cloudflare_api_url = "{staging.base_url}/client/v4"
worker = "{info['worker_name']}"
kv_namespace_id = "{info['kv_namespace_id']}"
known_stable = "1.9.0"
request_ws_token = true
analytics_lag_s = {args.lag}
time_scale = {args.time_scale}
max_probe_rate = 2

[targets.real-time.canaries]
"canary/library/1" = '{{"isbn":"9780743273565","title":"The Great Gatsby","shelf":"read"}}'
""")
        before = requests_and_users(staging.base_url)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "tests"), "-m", "verify", "--target", "real-time",
             "--targets-file", str(targets), "-p", "no:cacheprovider", "-q"],
            cwd=ROOT, capture_output=True, text=True, timeout=3600,
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOOKSTRACK_"))},
                 "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": info["account_id"]})
        wall = time.monotonic() - started
        after = requests_and_users(staging.base_url)
    output = done.stdout + done.stderr
    announced = re.search(r"verify will send about (\d+) probe requests over ([\d.]+ \w+) at ([\d.]+)/s", output)
    plan = re.search(r"It takes about (\d+) s", output)
    summary = output.strip().splitlines()[-1] if output.strip() else "(no output)"
    users = after[1] - before[1]
    ours = after[0] - before[0] - users
    expected = float(plan.group(1)) if plan else float("nan")
    print(f"pytest -m verify at time scale {args.time_scale:g} (Analytics Engine lag {args.lag:g} s): {summary}")
    print(f"  wall time {wall:.1f} s against the plan's {expected:.0f} s (window + lag): "
          f"{(wall / expected - 1) * 100:+.1f}% (goal: within 5%: {'MET' if abs(wall / expected - 1) <= 0.05 else 'MISSED'})")
    if announced:
        print(f"  announced: about {announced.group(1)} probes over {announced.group(2)} at {announced.group(3)}/s")
    print(f"  sent: {ours} BooksTrack requests from the suite (probes, token requests, sockets); "
          f"the staging's users sent {users} beside them")
    failed = done.returncode != 0
    if failed:
        print(output[-4000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
