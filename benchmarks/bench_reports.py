"""Time to build the reports of a full drill matrix, and the drill report's size (issue: reports).

Targets: the drill report and the Allure HTML together in under 10 s; the single-file drill report
under 1 MiB. Run after `make drill` (it reads reports/allure-results and reports/drills).

    .venv/bin/python benchmarks/bench_reports.py [--reports reports]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bookstrack_rollback.drill.record import RecordStore  # noqa: E402
from bookstrack_rollback.reporting.drill_report import write_drill_report  # noqa: E402
from bookstrack_rollback.reporting.drill_runs import group_runs, load_records  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = parser.parse_args()
    results = args.reports / "allure-results"
    if not results.is_dir() or not (args.reports / "drills").is_dir():
        print(f"skipped: no drill matrix results under {args.reports}; run `make drill` first, then this again")
        return 0
    records = load_records(args.reports)
    run = group_runs(records)[-1]
    history = RecordStore(args.reports).history_lines()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        started = time.perf_counter()
        path = write_drill_report(out, list(run.records), history)
        drill_s = time.perf_counter() - started
        allure = ROOT / "node_modules" / ".bin" / "allure"
        started = time.perf_counter()
        done = subprocess.run([str(allure), "generate", str(results), "-o", str(out / "allure-report")],
                              capture_output=True, text=True, timeout=300)
        allure_s = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 1
        size = path.stat().st_size
        allure_size = sum(f.stat().st_size for f in (out / "allure-report").rglob("*") if f.is_file())
    results_count = len(list(results.glob("*-result.json")))
    print(f"drill report of {len(run.records)} drills ({len(history)} in the history): {drill_s:.2f} s, "
          f"{size / 1024:.0f} KiB (target < 1 MiB: {'MET' if size < 1024 * 1024 else 'MISSED'})")
    print(f"Allure HTML from {results_count} test results: {allure_s:.2f} s, {allure_size / 1024 / 1024:.1f} MiB")
    total = drill_s + allure_s
    print(f"together: {total:.2f} s (target < 10 s: {'MET' if total < 10 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
