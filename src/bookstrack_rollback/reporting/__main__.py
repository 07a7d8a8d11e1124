"""``python -m bookstrack_rollback.reporting``: write the single-file drill report of a run, and the index.

Which records form the run (see :mod:`.drill_runs` for the rule):

- by default, the latest run: the last block of records started back to back (each within ``--gap``
  seconds of the previous ones' end, no scenario and method twice), i.e. the drills of the most
  recent pytest session;
- ``--since TIME``: every record started at or after TIME (ISO 8601 or epoch seconds);
- ``--records ID ...``: exactly these drill records (ids or ``<id>.json`` file names);
- ``--all-runs``: one report per run found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..drill.record import RecordStore
from .drill_report import write_drill_report, write_index
from .drill_runs import (
    DEFAULT_GAP_S,
    DrillRun,
    group_runs,
    history_until,
    load_records,
    parse_since,
    select_ids,
    select_since,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bookstrack_rollback.reporting",
        description="Write the single-file HTML drill report of a drill run (reports/drills/report-<run id>.html) "
                    "and the index of all reports (reports/drills/index.html). A run is, by default, the latest "
                    "block of drill records started back to back: each started within --gap seconds of the end "
                    "of the previous ones, with no scenario and method twice (the drills of one pytest session). "
                    "The run id is the UTC start of its first drill.")
    parser.add_argument("--reports", type=Path, default=Path("reports"), metavar="PATH",
                        help="the reports folder holding drills/ and history/ (default: reports)")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--since", metavar="TIME", help="the run is every record started at or after TIME "
                      "(ISO 8601, e.g. 2026-11-29T15:40:00Z, or epoch seconds)")
    pick.add_argument("--records", nargs="+", metavar="ID", help="the run is exactly these drill records (drill ids "
                      "or <id>.json file names)")
    pick.add_argument("--all-runs", action="store_true", help="write one report for every run found")
    parser.add_argument("--gap", type=float, default=DEFAULT_GAP_S, metavar="SECONDS",
                        help=f"the longest pause between two drills of one run (default {DEFAULT_GAP_S:g})")
    parser.add_argument("--title", help="the report's title (default: names the drills and the target)")
    return parser.parse_args(argv)


def choose_runs(args: argparse.Namespace) -> list[DrillRun]:
    records = load_records(args.reports)
    if not records:
        raise LookupError(f"no drill record in {args.reports / 'drills'}: run the drills first (make drill)")
    if args.records:
        return [select_ids(records, args.records)]
    if args.since:
        return [select_since(records, parse_since(args.since))]
    runs = group_runs(records, args.gap)
    return runs if args.all_runs else runs[-1:]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = choose_runs(args)
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    history = RecordStore(args.reports).history_lines()
    for run in runs:
        path = write_drill_report(args.reports, list(run.records), history_until(history, run), title=args.title)
        passed = sum(1 for r in run.records if r.status == "passed")
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB; run {run.run_id}: {passed} of "
              f"{len(run.records)} drills passed)")
        print(f"  open: {path.resolve().as_uri()}")
    index = write_index(args.reports)
    print(f"wrote {index}")
    print(f"  open: {index.resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
