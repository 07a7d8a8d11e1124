"""Small self-contained SVG charts (no scripts, fonts or network): they embed in Allure attachments
and in the single-file drill report."""

from __future__ import annotations

import math
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
