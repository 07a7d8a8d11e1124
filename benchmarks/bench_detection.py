"""Detection speed and accuracy of the triggers, checklist and decision tree (issue: the drill).

Synthetic probe streams (seeded Bernoulli errors at the probe rate) go through the real Detector, as
the drill feeds it: for an error-rate fault at 2x and 1.2x the runbook's 10% threshold, how long after
the persistence rule the decision comes, and over 200+ healthy windows with a realistic 2% baseline
error rate, how often it would roll back (a false alarm). Compared with the fixed-interval rule of
thumb other tools use: time to detect = probe interval x consecutive failures needed.

    .venv/bin/python benchmarks/bench_detection.py [--rate 20] [--runs 41] [--healthy 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bookstrack_rollback.clients.bookstrack import OK, SERVER_ERROR, ProbeSample  # noqa: E402
from bookstrack_rollback.config import load_runbook, scaled  # noqa: E402
from bookstrack_rollback.triage.detector import Detector  # noqa: E402

T0 = 1_800_000_000.0
SCALE = 0.02
STEP = 0.2  # the drill looks every 0.2 s


def stream(rng: random.Random, start: float, end: float, rate: float, error_rate: float) -> list[ProbeSample]:
    samples, t, k = [], start, 0
    labels = ("health", "title:hamlet", "isbn:9780743273565", "title:<faker>")
    while t < end:
        label = labels[k % len(labels)]
        endpoint = label.split(":")[0]
        bad = endpoint != "health" and rng.random() < error_rate
        samples.append(ProbeSample(t, endpoint, label, SERVER_ERROR if bad else OK, 500 if bad else 200, 20.0,
                                   cached=label in ("title:hamlet", "isbn:9780743273565"), provider="google-books",
                                   results=1))
        k += 1
        t = start + k / rate
    return samples


KINDS: list[str] = []


def time_to_rollback(seed: int, rate: float, error_rate: float, horizon: float) -> tuple[float | None, float | None]:
    """(time to detect, time to decision) after the deployment, or None when never within the horizon."""
    runbook = load_runbook()
    rng = random.Random(seed)
    detector = Detector(runbook, SCALE, deployed_at=T0, baseline_s=scaled(2.5, SCALE))
    detector.samples = stream(rng, T0 - scaled(2.5, SCALE), T0, rate, 0.02) + \
        stream(rng, T0, T0 + horizon, rate, error_rate)
    now = T0
    while now < T0 + horizon:
        now += STEP
        assessment = detector.assess(now, migration=False, serving=None, rollback_target=None)
        if detector.decidable(assessment):
            situation = assessment.situation
            # the tree needs a target to act; here only whether it would act matters
            acts = bool(situation.firing) and not situation.recent_clear and not situation.fired_before_deploy
            if acts:
                immediate = any(r.trigger.table.value == "immediate" for r in situation.firing)
                KINDS.append("ROLLBACK NOW" if immediate else "GET APPROVAL")
                return detector.time_to_detect, now - T0
            if situation.recent_clear or situation.fired_before_deploy:
                return detector.time_to_detect, None
    return detector.time_to_detect, None


def false_alarms(windows: int, rate: float, length: float) -> int:
    alarms = 0
    for seed in range(windows):
        _, decided = time_to_rollback(10_000 + seed, rate, 0.02, length)
        alarms += decided is not None
    return alarms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="probes per second (default 20)")
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--healthy", type=int, default=200)
    args = parser.parse_args()
    runbook = load_runbook()
    persistence = scaled(runbook.checklist.not_transient_min, SCALE)
    budget = scaled(runbook.drill.time_to_detect_budget_min, SCALE)
    threshold = runbook.triggers.immediate.error_rate_above
    print(f"time scale {SCALE} (persistence rule {persistence:.1f}s = 5 runbook minutes; TTD budget {budget:.1f}s); "
          f"{args.rate:g} probes/s; {args.runs} seeded runs per level")
    for factor in (2.0, 1.2):
        ttds, beyond, missed = [], [], 0
        KINDS.clear()
        for seed in range(args.runs):
            ttd, decided = time_to_rollback(seed, args.rate, threshold * factor, horizon=persistence * 8)
            if decided is None:
                missed += 1
                continue
            ttds.append(ttd)
            beyond.append(decided - persistence)
        if ttds:
            print(f"error rate {factor:g}x the threshold ({threshold * factor:.0%}): median time to detect "
                  f"{statistics.median(ttds):.2f}s, median decision {statistics.median(beyond):+.2f}s beyond the "
                  f"persistence rule ({statistics.median(beyond) / SCALE / 60:+.2f} runbook minutes); "
                  f"{missed} of {args.runs} not decided within {persistence * 8:.0f}s; decisions: "
                  + ", ".join(f"{KINDS.count(k)} {k}" for k in sorted(set(KINDS))))
        else:
            print(f"error rate {factor:g}x the threshold: never decided within {persistence * 8:.0f}s")
    alarms = false_alarms(args.healthy, args.rate, persistence * 3)
    print(f"false alarms: {alarms} rollback decision(s) in {args.healthy} healthy windows of {persistence * 3:.0f}s "
          f"with a 2% baseline error rate (target: none)")
    for interval_s, failures in ((10, 3), (30, 3), (60, 2)):
        print(f"rule of thumb: a check every {interval_s}s, {failures} failures in a row: detection after "
              f"{interval_s * failures}s = {interval_s * failures / 60:.1f} runbook minutes, and at a 20% error rate "
              f"{failures} failures in a row happen only {0.2 ** failures:.1%} of the time per try")
    return 0


if __name__ == "__main__":
    sys.exit(main())
