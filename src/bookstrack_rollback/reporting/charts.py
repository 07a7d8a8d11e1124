"""Small self-contained SVG charts (no scripts, fonts or network): they embed in Allure attachments
and in the single-file drill report.

- :func:`histogram_svg`: a latency histogram with its threshold;
- :func:`timeline_svg`: stacked line charts over one time axis with numbered phase markers (the drill
  timeline: error rate, 5xx rate, WebSocket failure rate, P95 latency);
- :func:`trend_svg`: measures of past drills, one point per drill (time to detect, time to rollback,
  total recovery against their budgets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape


def histogram_svg(values: list[float], *, title: str, unit: str = "ms", threshold: float | None = None,
                  bins: int = 24, width: int = 560, height: int = 220) -> str:
    """A histogram of ``values`` on a log-spaced axis, with the threshold drawn as a red line."""
    left, right, top, bottom = 48, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    positive = [v for v in values if v > 0]
    if not positive:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2}">no samples</text></svg>')
        return "".join(parts)
    low = min(positive + ([threshold] if threshold else []))
    high = max(positive + ([threshold] if threshold else []))
    lo, hi = math.log10(low * 0.9), math.log10(high * 1.1)
    span = max(hi - lo, 1e-9)
    counts = [0] * bins
    for value in positive:
        index = min(bins - 1, int((math.log10(value) - lo) / span * bins))
        counts[index] += 1
    peak = max(counts)
    bar_w = plot_w / bins
    for i, count in enumerate(counts):
        if not count:
            continue
        bar_h = plot_h * count / peak
        x = left + i * bar_w
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{bar_h:.1f}" fill="#4a7fb5"><title>{count}</title></rect>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    for exponent in range(math.floor(lo), math.ceil(hi) + 1):
        for mantissa in (1, 2, 5):
            tick = mantissa * 10 ** exponent
            position = (math.log10(tick) - lo) / span
            if 0 <= position <= 1:
                x = left + position * plot_w
                parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#333"/>'
                             f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle">{escape(unit)} '
                 f'(log scale), {len(positive)} samples</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2}" transform="rotate(-90 12 {top + plot_h / 2})" '
                 f'text-anchor="middle">count</text>')
    if threshold:
        x = left + (math.log10(threshold) - lo) / span * plot_w
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#c0392b" '
                     f'stroke-width="2" stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="{top + 10}" '
                     f'fill="#c0392b">threshold {threshold:g} {escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- line charts: the drill timeline and the trend of past drills ---------------------------------
@dataclass(frozen=True)
class Series:
    """One line: ``(x, y)`` points; a ``None`` y is an interval without data and breaks the line."""

    label: str
    color: str
    points: tuple[tuple[float, float | None], ...]


@dataclass(frozen=True)
class Threshold:
    """A horizontal dashed line: a runbook threshold or budget."""

    label: str
    value: float
    color: str = "#c0392b"


@dataclass(frozen=True)
class Panel:
    """One plot of a stacked chart; ``scale`` turns values into the shown unit (100 for rates in %)."""

    title: str
    series: tuple[Series, ...]
    unit: str
    scale: float = 1.0
    thresholds: tuple[Threshold, ...] = ()
    floor: float = 0.0  # the y axis reaches at least this (in values, before ``scale``)
    ceiling: float | None = None  # and at most this (1.0 for rates: 100%)


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``x`` (a phase of the drill), numbered in the chart and named in its legend."""

    label: str
    x: float


@dataclass(frozen=True)
class TrendPoint:
    index: int  # position of the drill in the history (oldest first)
    value: float
    title: str  # the tooltip: which drill, which figures
    current: bool = False  # a drill of the run this report is about


@dataclass(frozen=True)
class TrendLine:
    label: str
    color: str
    points: tuple[TrendPoint, ...]


def nice_top(value: float) -> float:
    """The smallest of 1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8 × 10^k at or above ``value``: an axis end whose
    quarters are round numbers too (ticks at 0, ¼, ½, ¾ and the end)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for mantissa in (1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8, 10):
        top = mantissa * 10 ** exponent
        if top >= value * (1 - 1e-9):
            return top
    return 10 ** (exponent + 1)


def _axis_number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2g}"


def _path(points: list[tuple[float, float] | None]) -> str:
    """An SVG path through the points, lifted at every ``None`` (a gap in the data)."""
    parts, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{point[0]:.1f} {point[1]:.1f}")
        pen_down = True
    return "".join(parts)


def _legend(x: float, y: float, entries: list[tuple[str, str, bool]]) -> str:
    """Colour keys in one row: (label, colour, dashed)."""
    out = []
    for label, color, dashed in entries:
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        out.append(f'<line x1="{x:.0f}" y1="{y - 4:.0f}" x2="{x + 18:.0f}" y2="{y - 4:.0f}" stroke="{color}" '
                   f'stroke-width="2"{dash}/><text x="{x + 22:.0f}" y="{y:.0f}">{escape(label)}</text>')
        x += 30 + 6.2 * len(label)
    return "".join(out)


def timeline_svg(panels: list[Panel], markers: list[Marker], *, title: str, x_label: str,
                 band: tuple[float, float] | None = None, width: int = 760, panel_height: int = 130) -> str:
    """Stacked line charts sharing one x axis, with numbered vertical markers across all panels and an
    optional shaded band (e.g. the time the faulty version served)."""
    left, right, top, gap, bottom = 56, 16, 34, 34, 34
    plot_w = width - left - right
    height = top + len(panels) * (panel_height + gap) - gap + bottom
    xs = [x for p in panels for s in p.series for x, _ in s.points] + [m.x for m in markers]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x_span = max(x_hi - x_lo, 1e-9)

    def sx(x: float) -> float:
        return left + (x - x_lo) / x_span * plot_w

    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<title>{escape(title)}</title>']
    bottom_y = top + len(panels) * (panel_height + gap) - gap
    if band is not None:
        b0, b1 = sx(max(band[0], x_lo)), sx(min(band[1], x_hi))
        out.append(f'<rect x="{b0:.1f}" y="{top}" width="{max(b1 - b0, 0):.1f}" height="{bottom_y - top}" '
                   f'fill="#fdecea"/>')
    for n, panel in enumerate(panels):
        y0 = top + n * (panel_height + gap)
        values = [y for s in panel.series for _, y in s.points if y is not None]
        y_top = nice_top(max(values + [t.value for t in panel.thresholds] + [panel.floor]))
        y_top = min(y_top, panel.ceiling) if panel.ceiling else y_top

        def sy(y: float, y0: float = y0, y_top: float = y_top) -> float:
            return y0 + panel_height - min(y, y_top) / y_top * panel_height

        out.append(_legend(left, y0 - 8, [(f"{s.label} ({panel.unit})", s.color, False) for s in panel.series]
                           + [(t.label, t.color, True) for t in panel.thresholds]))
        for i in range(5):
            tick = y_top * i / 4
            out.append(f'<line x1="{left}" y1="{sy(tick):.1f}" x2="{left + plot_w}" y2="{sy(tick):.1f}" '
                       f'stroke="#e5e5e5"/><text x="{left - 4}" y="{sy(tick) + 4:.1f}" text-anchor="end">'
                       f'{_axis_number(tick * panel.scale)}</text>')
        for threshold in panel.thresholds:
            out.append(f'<line x1="{left}" y1="{sy(threshold.value):.1f}" x2="{left + plot_w}" '
                       f'y2="{sy(threshold.value):.1f}" stroke="{threshold.color}" stroke-dasharray="4 3"/>')
        for series in panel.series:
            points = [None if y is None else (sx(x), sy(y)) for x, y in series.points]
            if any(points):
                out.append(f'<path d="{_path(points)}" fill="none" stroke="{series.color}" stroke-width="1.6">'
                           f'<title>{escape(series.label)}</title></path>')
        out.append(f'<text x="14" y="{y0 + panel_height / 2:.0f}" transform="rotate(-90 14 '
                   f'{y0 + panel_height / 2:.0f})" text-anchor="middle">{escape(panel.unit)}</text>')
    out.append(f'<line x1="{left}" y1="{bottom_y}" x2="{left + plot_w}" y2="{bottom_y}" stroke="#333"/>')
    exponent = math.floor(math.log10(x_span / 8))
    step = next(m * 10 ** exponent for m in (1, 2, 5, 10) if m * 10 ** exponent >= x_span / 8)
    tick = math.ceil(x_lo / step) * step
    while tick <= x_hi + 1e-9:
        out.append(f'<text x="{sx(tick):.1f}" y="{bottom_y + 14}" text-anchor="middle">{_axis_number(tick)}</text>')
        tick += step
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">{escape(x_label)}</text>')
    last_x, row = -100.0, 0
    for number, marker in enumerate(sorted(markers, key=lambda m: m.x), start=1):
        x = sx(marker.x)
        row = row + 1 if x - last_x < 14 else 0
        last_x = x
        out.append(f'<g class="marker"><line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom_y}" '
                   f'stroke="#444" stroke-dasharray="2 2"/><text x="{x + 2:.1f}" y="{top + 10 + row * 11}" '
                   f'font-weight="bold" fill="#444">{number}</text><title>{number}. {escape(marker.label)} at '
                   f'{marker.x:+.2f}</title></g>')
    out.append("</svg>")
    return "".join(out)


def trend_svg(lines: list[TrendLine], *, count: int, title: str, unit: str, budgets: tuple[Threshold, ...] = (),
              x_labels: dict[int, str] | None = None, width: int = 760, height: int = 260) -> str:
    """Measures of past drills, oldest to newest (``count`` drills on the x axis). Every drill is a
    ``<circle class="point" data-series=...>``; drills of the current run are drawn filled."""
    left, right, top, bottom = 56, 16, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.value for line in lines for p in line.points] + [b.value for b in budgets]
    y_top = nice_top(max(values + [1.0]) * 1.05)  # budgets stay below the top edge

    def sx(index: int) -> float:
        return left + (index + 0.5) / max(count, 1) * plot_w

    def sy(value: float) -> float:
        return top + plot_h - min(value, y_top) / y_top * plot_h

    out = [f'<svg class="chart trend" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<title>{escape(title)}</title>',
           _legend(left, 16, [(line.label, line.color, False) for line in lines]
                   + [(b.label, b.color, True) for b in budgets])]
    for i in range(5):
        tick = y_top * i / 4
        out.append(f'<line x1="{left}" y1="{sy(tick):.1f}" x2="{left + plot_w}" y2="{sy(tick):.1f}" '
                   f'stroke="#e5e5e5"/><text x="{left - 4}" y="{sy(tick) + 4:.1f}" text-anchor="end">'
                   f'{_axis_number(tick)}</text>')
    for budget in budgets:
        out.append(f'<line x1="{left}" y1="{sy(budget.value):.1f}" x2="{left + plot_w}" y2="{sy(budget.value):.1f}" '
                   f'stroke="{budget.color}" stroke-dasharray="4 3"/>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    for index, label in (x_labels or {}).items():
        out.append(f'<text x="{sx(index):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.0f}" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
               f'text-anchor="middle">{escape(unit)}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">past drills, oldest to '
               f'newest ({count})</text>')
    for line in lines:
        out.append(f'<path d="{_path([(sx(p.index), sy(p.value)) for p in line.points])}" fill="none" '
                   f'stroke="{line.color}" stroke-width="1.4" opacity="0.8"/>')
        for p in line.points:
            fill = line.color if p.current else "#fff"
            out.append(f'<circle class="point" data-series="{escape(line.label)}" cx="{sx(p.index):.1f}" '
                       f'cy="{sy(p.value):.1f}" r="3.2" fill="{fill}" stroke="{line.color}" stroke-width="1.4">'
                       f'<title>{escape(p.title)}</title></circle>')
    out.append("</svg>")
    return "".join(out)
