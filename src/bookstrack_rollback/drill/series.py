"""The drill's signals binned per interval, for the drill report's timeline chart."""

from __future__ import annotations

import math
from ..stats import quantile
from ..triage.detector import Detector
from .record import SeriesPoint


def series(detector: Detector, origin: float | None, bucket_s: float | None = None) -> list[SeriesPoint]:
    """The signals per interval (about 60 of them), times relative to ``origin`` (fault live)."""
    if not detector.samples:
        return []
    start = min(s.at for s in detector.samples)
    end = max(s.at for s in detector.samples)
    bucket = bucket_s or max(0.25, (end - start) / 60)
    origin = origin if origin is not None and math.isfinite(origin) else start
    rows = []
    t = start
    while t <= end:
        window = [s for s in detector.samples if t <= s.at < t + bucket]
        searches = [s for s in window if s.endpoint != "health"]
        ws = [w for w in detector.ws if t <= w.at < t + bucket]
        latencies = [s.latency_ms for s in searches if not s.is_error]
        rows.append(SeriesPoint(
            t=round(t - origin, 3), requests=len(window),
            error_rate=(sum(s.is_error for s in searches) / len(searches)) if searches else None,
            server_error_rate=(sum(s.is_server_error for s in searches) / len(searches)) if searches else None,
            p95_ms=quantile(latencies, 0.95).value if latencies else None,
            ws_failure_rate=(sum(not w.ok for w in ws) / len(ws)) if ws else None,
        ))
        t += bucket
    return rows
