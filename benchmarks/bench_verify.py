"""`pytest -m verify` against the embedded staging: wall time, probe latency accuracy, and the
detection matrix (which check concludes what under each fault).

Targets (issue 3): wall time under 20 s and within 15% of the longest window at the default time
scale; measured P95 within 5% of the staging's injected latency distribution.

    .venv/bin/python benchmarks/bench_verify.py [--runs 3] [--skip-matrix]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "selftests"), str(ROOT)]

from loadgen import StagingProcess  # noqa: E402
from matrix import CHECKS, inner_conftest, load_scenarios, verdicts_from_junit  # noqa: E402

from bookstrack_rollback.config import TargetOverrides, resolve_suite_settings  # noqa: E402
from bookstrack_rollback.config.secret import Secret  # noqa: E402
from bookstrack_rollback.stats import quantile  # noqa: E402
from bookstrack_rollback.verify.collect import collect  # noqa: E402
from bookstrack_rollback.verify.plan import make_plan  # noqa: E402


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "selftests")])}


def wall_time(runs: int) -> None:
    settings = resolve_suite_settings(target=None, overrides=TargetOverrides(), seed=None, targets_file=None,
                                      runbook_file=None)
    window = make_plan(settings).window_s
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-m", "verify", "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        walls.append(time.perf_counter() - started)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
    wall = statistics.median(walls)
    print(f"wall time of `pytest tests -m verify` (median of {runs}): {wall:.2f} s "
          f"[{', '.join(f'{w:.2f}' for w in walls)}]; last run: {last}")
    print(f"  longest window {window:.1f} s; wall / window = {wall / window:.2f} "
          f"(target <= 1.15: {'MET' if wall <= 1.15 * window else 'MISSED'}); under 20 s: {'MET' if wall < 20 else 'MISSED'}")


def latency_accuracy() -> None:
    p50, p95 = 200.0, 400.0
    fault = {"latency": {"title": {"p50_ms": p50, "p95_ms": p95}, "isbn": {"p50_ms": p50, "p95_ms": p95}}}
    with StagingProcess() as staging:
        import httpx
        httpx.put(f"{staging.base_url}/__staging/faults", content=json.dumps(fault), timeout=5).raise_for_status()
        info = httpx.get(f"{staging.base_url}/__staging/info", timeout=5).json()
        # a longer window than the default (30 s): the P95 of ~1000 answers per endpoint has a sampling
        # error of a few percent, so the comparison measures the probes, not the luck of the draw
        settings = resolve_suite_settings(target=None, overrides=TargetOverrides(time_scale=0.1), seed=None,
                                          targets_file=None, runbook_file=None)
        target = settings.target.bound(base_url=staging.base_url, cloudflare_api_url=info["cloudflare_api_url"],
                                       account_id=info["account_id"], worker=info["worker_name"],
                                       token=Secret("bookstrack-staging-dev-token"),
                                       kv_namespace_id=info["kv_namespace_id"])
        plan = make_plan(settings, latency_samples=1000)
        evidence = asyncio.run(collect(plan, target))
    print(f"probe latency accuracy (injected log-normal, P50 {p50:.0f} ms, P95 {p95:.0f} ms; staging in its own process):")
    for key in ("title:hamlet", "isbn:9780743273565", "title:<faker>", "isbn:<faker>"):
        latencies = [s.latency_ms for s in evidence.samples_for(key) if not s.is_error]
        estimate = quantile(latencies, 0.95)
        error = (estimate.value - p95) / p95
        print(f"  {key:<22} measured P95 {estimate.value:6.1f} ms (95% CI {estimate.low:.0f}-{estimate.high:.0f}) "
              f"over {estimate.count} answers: {100 * error:+.1f}% (target within 5%: "
              f"{'MET' if abs(error) <= 0.05 else 'MISSED'}; injected P95 inside the CI: "
              f"{'yes' if estimate.low <= p95 <= estimate.high else 'no'})")


def matrix() -> None:
    scenarios = load_scenarios()
    results: dict[str, dict[str, str]] = {}
    test_file = (ROOT / "tests" / "test_verify.py").read_text()
    for scenario in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "conftest.py").write_text(inner_conftest(scenario))
            Path(tmp, "test_verify.py").write_text(test_file)
            Path(tmp, "pytest.ini").write_text("[pytest]\nmarkers =\n    verify: verify\n")
            junit = Path(tmp, "junit.xml")
            subprocess.run([sys.executable, "-m", "pytest", "-m", "verify", "-q", f"--junitxml={junit}",
                            "-p", "no:cacheprovider"], cwd=tmp, env=_env(), capture_output=True, timeout=300)
            seen = verdicts_from_junit(junit) if junit.exists() else {}
        results[scenario.name] = {c: seen.get(c, ("MISSING", ""))[0] for c in CHECKS}
        wrong = [c for c, v in scenario.expected().items() if results[scenario.name][c] != v]
        print(f"  ran {scenario.name}: {'as expected' if not wrong else 'UNEXPECTED: ' + ', '.join(wrong)}", flush=True)
    short = {"PASS": ".", "FAIL": "FAIL", "INCONCLUSIVE": "INC", "ERROR": "ERR"}
    width = max(len(c) for c in CHECKS)
    names = [s.name for s in scenarios]
    print("\ndetection matrix (rows: checks; columns: injected fault; '.' = PASS)")
    print(" " * width + " | " + " | ".join(f"{n[:12]:^12}" for n in names))
    for check in CHECKS:
        cells = [short.get(results[n][check], results[n][check])[:12] for n in names]
        print(f"{check:<{width}} | " + " | ".join(f"{c:^12}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    wall_time(args.runs)
    latency_accuracy()
    if not args.skip_matrix:
        matrix()
    return 0


if __name__ == "__main__":
    sys.exit(main())
