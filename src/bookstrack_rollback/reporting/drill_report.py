"""The single-file drill report (DESIGN.md, "Reports"): one self-contained HTML file per drill run.

No scripts, external fonts, images or network: inline CSS and inline SVG, so it opens from
``file://``, from a CI artifact or from an e-mail attachment alike. The page reads top down:

1. a verdict banner: did every drill pass, and if not, which and why (the slow phase by name);
2. the run's worst time to detect, time to rollback and total recovery against their budgets;
3. a table of all scenarios of the run (expected vs actual decision, TTD / TTR / total, status);
4. the trend of past drills from ``reports/history/drills.jsonl``;
5. one section per drill (measures, timeline, then collapsible details: checklist and decision tree,
   rollback, approval, messages, verification, phases).

Files: ``reports/drills/report-<run id>.html`` (:func:`write_drill_report`) and
``reports/drills/index.html`` listing every report, newest first (:func:`write_index`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..atomic_file import write_atomically
from ..config import load_runbook, runbook_minutes
from .charts import Threshold, TrendLine, TrendPoint, trend_svg
from .drill_runs import run_id_at
from ..drill.record import DrillRecord
from ..measures import TIME_TO_DETECT, TIME_TO_ROLLBACK, TOTAL_RECOVERY, Measure
from .drill_sections import (
    DrillFigures,
    Thresholds,
    anchor,
    drill_section,
    status_badge,
    text,
)

RUNBOOK_URL = "https://github.com/jukasdrj/bookstrack-backend/blob/main/docs/ROLLBACK_PROCEDURE.md"
TREND_MAX = 200  # the trend shows at most this many past drills (the newest)
TREND_LINES = (("time to detect", "time_to_detect", "#2471a3"), ("time to rollback", "time_to_rollback", "#d68910"),
               ("total recovery", "total_recovery", "#1e8449"))
META = "bookstrack-drill-"  # <meta name="bookstrack-drill-..."> the index reads back

CSS = """
:root{--ok:#1e8449;--bad:#c0392b;--warn:#b9770e;--ink:#1d2125;--muted:#5f6b76;--line:#dde1e5;--blue:#1f6feb}
*{box-sizing:border-box}body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0 auto;max-width:1040px;padding:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:0 0 6px}
h3{font-size:17px;margin:28px 0 8px}h4{font-size:14px;margin:16px 0 6px}a{color:var(--blue)}
.muted{color:var(--muted)}code,pre{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;
padding:8px 10px;margin:6px 0}
.banner{border-radius:10px;padding:16px 20px;margin:16px 0;color:#fff}.banner.ok{background:var(--ok)}
.banner.bad{background:var(--bad)}.banner h2{font-size:22px}.banner a{color:#fff}.banner ul{margin:6px 0 0;padding-left:20px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{flex:1 1 220px;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .big{font-size:20px;font-weight:600}.card.over{border-color:var(--bad)}.card.over .big{color:var(--bad)}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13.5px}th,td{text-align:left;vertical-align:top;
padding:5px 8px;border-bottom:1px solid var(--line)}th{background:#f6f8fa}td.over,.over b{color:var(--bad)}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;vertical-align:middle}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.tick{font-weight:700}.tick.ok{color:var(--ok)}.tick.bad{color:var(--bad)}.tick.warn{color:var(--warn)}
section.drill{border:1px solid var(--line);border-left:6px solid var(--ok);border-radius:8px;padding:14px 18px;margin:18px 0}
section.drill.not-passed{border-left-color:var(--bad)}.failure{color:var(--bad);font-weight:600}
.verdict-line.mismatch b{color:var(--bad)}.decision{font-weight:600}.path{color:var(--muted)}
.measures{margin:8px 0}.measure{display:grid;grid-template-columns:140px 1fr;gap:2px 12px;align-items:center;margin:6px 0}
.mname{font-weight:600}.bar{position:relative;height:14px;background:#eef1f4;border-radius:7px;overflow:hidden}
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:var(--ok)}.measure.over .fill{background:var(--bad)}
.bar .budget{position:absolute;top:0;bottom:0;border-left:2px dashed var(--ink)}
.mvalue{grid-column:2;font-size:13px}.slow{grid-column:2;color:var(--bad);margin:0;font-size:13px}
.measure.over .mvalue b{color:var(--bad)}figure{margin:10px 0}ol.markers{font-size:13px;columns:2;margin:4px 0}
details{border-top:1px solid var(--line);padding:6px 0}summary{cursor:pointer;font-weight:600}
.message{margin:8px 0}.mhead{font-size:13px}svg.chart{width:100%;max-width:960px;height:auto}td.fig{white-space:nowrap}
footer{margin-top:32px;color:var(--muted);font-size:13px}
@media print{details{display:block}body{max-width:none}}
"""


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(measure: Measure) -> str:
    if measure.seconds is None:
        return "<td>—</td>"
    return (f'<td class="fig{" over" if measure.over_budget else ""}">{measure.seconds:.2f}s · '
            f'{measure.runbook_minutes(measure.seconds):.1f} min</td>')


def banner(figures: Sequence[DrillFigures]) -> str:
    """Did every drill pass? If not, which did not, and the sentence saying why (the slow phase)."""
    if not figures:
        return '<div class="banner bad"><h2>No drill records in this run</h2></div>'
    failed = [f for f in figures if not f.passed]
    if not failed:
        return (f'<div class="banner ok" id="verdict"><h2>All {len(figures)} drills passed</h2><p>Every decision was '
                f"the expected one and every measure stayed within its budget.</p></div>")
    items = "".join(f'<li><a href="#{anchor(f.drill_id)}">{text(f.name)}</a> — {text(f.status)}: '
                    f'{text(f.failure or "no failure sentence was recorded")}</li>' for f in failed)
    return (f'<div class="banner bad" id="verdict"><h2>{len(failed)} of {len(figures)} drills did not pass</h2>'
            f"<ul>{items}</ul></div>")


def worst_cards(figures: Sequence[DrillFigures]) -> str:
    """The run's slowest time to detect, time to rollback and total recovery, against their budgets."""
    cards = []
    for position, (name, _short, _phase) in enumerate((TIME_TO_DETECT, TIME_TO_ROLLBACK, TOTAL_RECOVERY)):
        measured = [(f.measures[position], f) for f in figures if f.measures[position].seconds is not None]
        if not measured:
            cards.append(f'<div class="card"><div>{name}</div><div class="big">—</div><div class="muted">not measured'
                         f"</div></div>")
            continue
        m, f = max(measured, key=lambda pair: pair[0].seconds or 0.0)
        cards.append(f'<div class="card{" over" if m.over_budget else ""}"><div>slowest {name}</div><div class="big">'
                     f'{text(m.figure())}</div><div class="muted">budget {text(m.budget())} · '
                     f'<a href="#{anchor(f.drill_id)}">{text(f.name)}</a></div></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def scenario_table(figures: Sequence[DrillFigures]) -> str:
    rows = []
    for n, f in enumerate(figures, start=1):
        mismatch = ' class="over"' if f.decision != f.expected else ""
        rows.append(f'<tr><td>{n}</td><td><a href="#{anchor(f.drill_id)}">{text(f.scenario)}</a></td>'
                    f"<td>{text(f.method)}</td><td>{text(f.expected)}</td><td{mismatch}>{text(f.decision)}</td>"
                    + "".join(_cell(m) for m in f.measures)
                    + f"<td>{status_badge(f.status)}</td></tr>")
    return ('<table class="scenarios"><thead><tr><th>#</th><th>scenario</th><th>method</th><th>expected decision</th>'
            "<th>decision</th><th>time to detect</th><th>time to rollback</th><th>total recovery</th><th>status</th>"
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table><p class="muted">Figures: seconds at the run\'s '
            "time scale · runbook minutes. Red: over budget, or not the expected decision.</p>")


def _minutes(line: Mapping[str, Any], key: str) -> float | None:
    if line.get(f"{key}_min") is not None:
        return float(line[f"{key}_min"])
    seconds = line.get(f"{key}_s")
    return None if seconds is None else runbook_minutes(float(seconds), float(line.get("time_scale") or 1.0))


def trend_section(history: Sequence[Mapping[str, Any]], current: set[str], budgets: tuple[float, float, float]) -> str:
    """Time to detect, time to rollback and total recovery of past drills (runbook minutes, so drills at
    different time scales compare), with a per-scenario summary."""
    lines = list(history)[-TREND_MAX:]
    if not lines:
        return '<p class="muted">No history yet: reports/history/drills.jsonl has no lines.</p>'
    trend = []
    for label, key, color in TREND_LINES:
        points = []
        for index, line in enumerate(lines):
            value = _minutes(line, key)
            if value is not None:
                title = (f"{line.get('started_utc', '')} {line.get('scenario', '')} / {line.get('method', '')} "
                         f"({line.get('status', '')}): {label} {value:.1f} runbook min")
                points.append(TrendPoint(index, value, title, str(line.get("drill_id")) in current))
        trend.append(TrendLine(label, color, tuple(points)))
    step = max(1, len(lines) // 5)
    x_labels = {i: str(lines[i].get("started_utc") or "")[5:16].replace("T", " ") for i in range(0, len(lines), step)}
    chart = trend_svg(trend, count=len(lines), title="Trend of past drills", unit="runbook minutes",
                      x_labels=x_labels, budgets=(Threshold(f"TTD/TTR budget {budgets[0]:g} min", budgets[0]),
                                                  Threshold(f"total budget {budgets[2]:g} min", budgets[2], "#7b241c")))
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for line in lines:
        groups.setdefault((str(line.get("scenario")), str(line.get("method"))), []).append(line)
    rows = []
    for (scenario, method), group in sorted(groups.items()):
        cells = []
        for _label, key, _color in TREND_LINES:
            values = [v for v in (_minutes(g, key) for g in group) if v is not None]
            cells.append(f"{statistics.median(values):.1f} (max {max(values):.1f})" if values else "—")
        passed = sum(1 for g in group if g.get("status") == "passed")
        rows.append(f"<tr><td>{text(scenario)}</td><td>{text(method)}</td><td>{len(group)}</td><td>{passed}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{status_badge(str(group[-1].get('status')))}</td></tr>")
    note = f" (the newest {TREND_MAX})" if len(history) > TREND_MAX else ""
    return (f'<figure>{chart}<figcaption class="muted">{len(lines)} past drills{note}; filled points: this run. '
            "Runbook minutes: seconds ÷ 60 ÷ the time scale.</figcaption></figure>"
            "<details><summary>Per scenario: median (max) in runbook minutes</summary><table><thead><tr>"
            "<th>scenario</th><th>method</th><th>drills</th><th>passed</th><th>time to detect</th>"
            f"<th>time to rollback</th><th>total recovery</th><th>last</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table></details>")


def render_drill_report(records: list[DrillRecord], history: list[dict[str, Any]], *, title: str) -> str:
    """The report of one drill run (``records``: the run's drill records; ``history``: the lines of
    ``reports/history/drills.jsonl``) as one self-contained HTML document."""
    runbook = load_runbook()
    triggers = runbook.triggers
    thresholds = Thresholds(triggers.immediate.error_rate_above, triggers.immediate.server_error_rate_above,
                            triggers.immediate.websocket_failure_rate_above,
                            triggers.approval.p95_latency_above_s * 1000)
    drill = runbook.drill
    ordered = sorted(records, key=lambda r: (r.started_at, r.drill_id))
    figures = [DrillFigures.of(r) for r in ordered]
    started = min((r.started_at for r in ordered), default=None)
    ended = max((r.ended_at or r.started_at for r in ordered), default=None)
    verdict = "passed" if figures and all(f.passed for f in figures) else "failed"
    summary = f"{sum(f.passed for f in figures)} of {len(figures)} drills passed"
    targets = sorted({f"{r.target} ({r.environment})" for r in ordered})
    scales = sorted({r.time_scale for r in ordered})
    scale_text = ", ".join(f"{s:g} (1 runbook minute = {60 * s:g}s)" for s in scales)
    run_id = run_id_at(started) if started is not None else ""
    meta = {"run": run_id, "verdict": verdict, "summary": summary, "started": _iso(started)}
    budgets = (drill.time_to_detect_budget_min, drill.time_to_rollback_budget_min, drill.total_recovery_budget_min)
    sections = "".join(drill_section(r, thresholds) for r in ordered)
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "".join(f'<meta name="{META}{k}" content="{text(v)}">' for k, v in meta.items()),
        f"<title>{text(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{text(title)}</h1><p class=\"muted\">Run {text(run_id)} · {text(_iso(started))} → "
        f"{text(_iso(ended))} · target {text(', '.join(targets))} · time scale {text(scale_text)} · generated "
        f"{text(_iso(datetime.now(timezone.utc).timestamp()))}</p></header>",
        banner(figures),
        f"<h3>Measures against the runbook's budgets ({budgets[0]:g}, {budgets[1]:g} and {budgets[2]:g} runbook "
        "minutes)</h3>", worst_cards(figures),
        f"<h3>All scenarios of the run ({len(figures)})</h3>", scenario_table(figures),
        "<h3>Trend of past drills</h3>", trend_section(history, {f.drill_id for f in figures}, budgets),
        "<h3>Drills</h3>", sections,
        f'<footer>The quarterly drill of <a href="{RUNBOOK_URL}#testing-rollback-procedure">ROLLBACK_PROCEDURE.md, '
        "\"Testing Rollback Procedure\"</a>: time to detect under 5 minutes, time to rollback under 5 minutes, total "
        "recovery under 10 minutes. Written by <code>python -m bookstrack_rollback.reporting</code>.</footer>",
        "</body></html>"])


def default_title(records: Sequence[DrillRecord]) -> str:
    targets = sorted({r.target for r in records}) or ["no target"]
    return f"Rollback drill report: {len(records)} drill(s) on {', '.join(targets)}"


def write_drill_report(reports: Path, records: list[DrillRecord], history: list[dict[str, Any]], *,
                       title: str | None = None) -> Path:
    """Write ``reports/drills/report-<run id>.html`` (the run id: the UTC start of its first drill; the
    current UTC time when there are no records). Writing the same run again replaces its report."""
    starts = [r.started_at for r in records]
    run_id = run_id_at(min(starts) if starts else datetime.now(timezone.utc).timestamp())
    html = render_drill_report(records, history, title=title or default_title(records))
    return write_atomically(reports / "drills" / f"report-{run_id}.html", html)


class _ReportMeta(HTMLParser):
    """Reads a report's <title> and its bookstrack-drill-* meta tags back."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("name") or "").startswith(META):
            self.meta[str(values["name"])[len(META):]] = values.get("content") or ""
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.meta["title"] = self.meta.get("title", "") + data


def write_index(reports: Path) -> Path:
    """Write ``reports/drills/index.html``: every drill report (title, date, verdict, link), newest first."""
    entries = []
    for path in (reports / "drills").glob("report-*.html"):
        parser = _ReportMeta()
        try:
            parser.feed(path.read_text("utf-8", errors="replace").partition("</head>")[0])
        except OSError:
            continue
        run = parser.meta.get("run") or path.stem.removeprefix("report-")
        entries.append((run, path.name, parser.meta))
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    rows = "".join(
        f'<tr><td>{text(meta.get("started") or run)}</td><td><a href="{text(name)}">{text(meta.get("title") or name)}'
        f'</a></td><td>{status_badge("passed" if meta.get("verdict") == "passed" else "failed")}</td>'
        f'<td>{text(meta.get("summary"))}</td></tr>' for run, name, meta in entries)
    body = (f"<table><thead><tr><th>run started</th><th>report</th><th>verdict</th><th>drills</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>" if entries else '<p class="muted">No drill report yet.</p>')
    html = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>Rollback drill reports</title><style>{CSS}</style>'
            f"</head><body><h1>Rollback drill reports</h1><p class=\"muted\">{len(entries)} report(s), newest first."
            f"</p>{body}</body></html>")
    return write_atomically(reports / "drills" / "index.html", html)
