"""One drill of the drill report, as HTML: its measures against the budgets, its timeline, the
checklist and the decision tree, the rollback, the approval, the messages sent and the verification.

Everything shown comes from the drill record (``DrillRecord.as_json()``); every text goes through
:func:`text` (escaped, with anything that looks like a credential redacted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from ..config import runbook_minutes
from ..drill.record import Measures, utc
from .charts import Marker, Panel, Series, Threshold, timeline_svg
from .decision_tree import decision_tree_svg, path_sentence

MEASURES = (("time to detect", "TTD", "time_to_detect_s", "budget_detect_s"),
            ("time to rollback", "TTR", "time_to_rollback_s", "budget_rollback_s"),
            ("total recovery", "total", "total_recovery_s", "budget_total_s"))
MARKERS = ("fault live", "detected", "decided", "rollback started", "serving", "verified")
_SECRET = re.compile(r"(?i)((?:authorization:\s*)?bearer\s+|(?:token|secret|password|api[_-]?key)\s*[=:]\s*)"
                     r"[^\s'\"&<>]+|https://hooks\.slack\.com/\S+")


def text(value: object) -> str:
    """``value`` as escaped HTML text; credentials (bearer tokens, Slack webhook URLs) redacted."""
    raw = "" if value is None else str(value)
    return escape(_SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", raw))


def anchor(drill_id: str) -> str:
    """The HTML id of a drill's section."""
    return "drill-" + re.sub(r"[^A-Za-z0-9_-]", "-", drill_id)


@dataclass(frozen=True)
class Thresholds:
    """The runbook's thresholds drawn on the timeline (runbook.toml)."""

    error_rate: float = 0.10
    server_error_rate: float = 0.05
    ws_failure_rate: float = 0.10
    p95_ms: float = 2000.0


@dataclass(frozen=True)
class Measure:
    """One of the runbook's drill measures, in seconds at the run's time scale, against its budget."""

    name: str
    short: str
    seconds: float | None
    budget_s: float
    time_scale: float
    slow: str = ""  # the record's sentence naming the slow phase, when over budget

    def minutes(self, seconds: float | None) -> float | None:
        return None if seconds is None else runbook_minutes(seconds, self.time_scale)

    @property
    def over(self) -> bool:
        return self.seconds is not None and self.seconds > self.budget_s

    def figure(self) -> str:
        """``1.21s (1.0 runbook min)``, or a dash when the drill did not measure it."""
        if self.seconds is None:
            return "—"
        return f"{self.seconds:.2f}s ({self.minutes(self.seconds):.1f} runbook min)"

    def budget(self) -> str:
        return f"{self.budget_s:.2f}s ({self.minutes(self.budget_s):.1f} runbook min)"


@dataclass(frozen=True)
class DrillFigures:
    """What the banner, the scenario table and the drill's section share."""

    drill_id: str
    scenario: str
    method: str
    status: str
    expected: str
    decision: str
    failure: str
    measures: tuple[Measure, ...]

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def name(self) -> str:
        return f"{self.scenario} / {self.method}"

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> DrillFigures:
        m = dict(record.get("measures") or {})
        scale = float(m.get("time_scale") or record.get("time_scale") or 1.0)
        failure = str(record.get("failure") or "").strip()
        sentences = [s.strip() for s in failure.split(";")]
        known = {f.name for f in Measures.__dataclass_fields__.values()}
        fallback = Measures(**{k: v for k, v in m.items() if k in known}).over_budget()
        measures = []
        for name, short, key, budget_key in MEASURES:
            slow = next((s for s in sentences + fallback if s.startswith(name) and "budget" in s), "")
            value = m.get(key)
            measures.append(Measure(name, short, None if value is None else float(value),
                                    float(m.get(budget_key) or 0.0), scale, slow))
        return cls(str(record.get("drill_id", "")), str(record.get("scenario", "")), str(record.get("method", "")),
                   str(record.get("status", "")), str(record.get("expected_decision") or ""),
                   str(record.get("decision") or "no decision"), failure, tuple(measures))


def status_badge(status: str) -> str:
    kind = {"passed": "ok", "failed": "bad", "error": "bad", "interrupted": "warn"}.get(status, "warn")
    return f'<span class="badge {kind}">{text(status)}</span>'


def verdict_badge(verdict: str) -> str:
    """PASS green, INCONCLUSIVE amber, FAIL and ERROR red (only PASS is green: DESIGN.md, "Checks")."""
    kind = {"PASS": "ok", "INCONCLUSIVE": "warn"}.get(verdict, "bad")
    return f'<span class="badge {kind}">{text(verdict)}</span>'


def measure_bars(figures: DrillFigures, *, rolls_back: bool) -> str:
    """A bar per measure: the value against the budget (the dashed mark); red when over budget."""
    rows = []
    for m in figures.measures:
        if m.seconds is None:
            why = ("not measured: this scenario must not roll back" if not rolls_back
                   else "not measured: the drill did not get that far")
            rows.append(f'<div class="measure"><div class="mname">{text(m.name)}</div><div class="mvalue muted">'
                        f'{why}</div></div>')
            continue
        full = max(m.budget_s * 1.5, m.seconds, 1e-9)
        rows.append(
            f'<div class="measure{" over" if m.over else ""}"><div class="mname">{text(m.name)}</div>'
            f'<div class="bar" title="{text(m.figure())} of {text(m.budget())}"><span class="fill" '
            f'style="width:{m.seconds / full * 100:.1f}%"></span><span class="budget" '
            f'style="left:{m.budget_s / full * 100:.1f}%"></span></div>'
            f'<div class="mvalue"><b>{text(m.figure())}</b> of a {text(m.budget())} budget'
            f'{" — over budget" if m.over else ""}</div>'
            + (f'<p class="slow">{text(m.slow)}</p>' if m.over and m.slow else "") + "</div>")
    return '<div class="measures">' + "".join(rows) + "</div>"


def timeline(record: Mapping[str, Any], thresholds: Thresholds) -> str:
    """The signals of the drill over time (seconds since fault live) with its phases as markers."""
    rows = [r for r in record.get("series") or [] if isinstance(r.get("t"), (int, float))]
    if not rows:
        return '<p class="muted">No signals were recorded for this drill.</p>'
    markers = dict(record.get("markers") or {})
    origin = markers.get("fault live")
    scale = float(record.get("time_scale") or 1.0)

    def line(key: str) -> tuple[tuple[float, float | None], ...]:
        return tuple((float(r["t"]), None if r.get(key) is None else float(r[key])) for r in rows)

    rates = Panel("rates", (Series("error rate", "#c0392b", line("error_rate")),
                            Series("5xx rate", "#8e44ad", line("server_error_rate")),
                            Series("WebSocket failures", "#d68910", line("ws_failure_rate"))),
                  unit="%", scale=100, floor=0.12, ceiling=1.0,
                  thresholds=(Threshold(f"error rate >{thresholds.error_rate:.0%}", thresholds.error_rate),
                              Threshold(f"5xx >{thresholds.server_error_rate:.0%}", thresholds.server_error_rate,
                                        "#8e44ad")))
    latency = Panel("latency", (Series("P95 latency", "#2471a3", line("p95_ms")),), unit="ms",
                    floor=thresholds.p95_ms * 1.2,
                    thresholds=(Threshold(f"P95 >{thresholds.p95_ms:.0f} ms", thresholds.p95_ms),))
    placed = [Marker(name, float(markers[name]) - float(origin)) for name in MARKERS
              if origin is not None and isinstance(markers.get(name), (int, float))]
    band = None
    if origin is not None:
        end = markers.get("serving")
        band = (0.0, float(end) - float(origin) if isinstance(end, (int, float)) else float(rows[-1]["t"]))
    chart = timeline_svg([rates, latency], placed, band=band, x_label="seconds since fault live (the test "
                         "change deployed); shaded: the test change serving",
                         title=f"Timeline of drill {record.get('drill_id', '')}")
    legend = "".join(f"<li>{text(m.label)} <b>{m.x:+.2f}s</b> ({runbook_minutes(m.x, scale):+.1f} runbook min)</li>"
                     for m in sorted(placed, key=lambda m: m.x))
    return f'<figure class="timeline">{chart}<ol class="markers">{legend}</ol></figure>'


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped cells."""
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _tick(tick: str) -> str:
    symbol, kind = {"yes": ("✓", "ok"), "no": ("✗", "bad")}.get(tick, ("?", "warn"))
    return f'<span class="tick {kind}" title="{text(tick)}">{symbol}</span>'


def _details(title: str, body: str, *, open_: bool) -> str:
    return f'<details{" open" if open_ else ""}><summary>{title}</summary>{body}</details>'


def decision_block(record: Mapping[str, Any]) -> str:
    """The decision, the pre-rollback checklist and the path through the runbook's tree."""
    path = [str(p) for p in record.get("decision_path") or []]
    checklist = _table(["", "checklist item", "what the drill saw"],
                       [[_tick(str(i.get("tick"))), text(i.get("item")), text(i.get("sentence"))]
                        for i in record.get("checklist") or []], "checklist")
    tree = decision_tree_svg(path) if path else '<p class="muted">The drill did not reach the decision.</p>'
    return (f'<p class="decision">{text(record.get("decision_sentence") or "no decision was made")}</p>'
            f'<h4>Pre-rollback checklist</h4>{checklist}'
            f'<h4>Path through the rollback decision tree</h4><p class="path">{text(path_sentence(path))}</p>{tree}')


def rollback_block(record: Mapping[str, Any]) -> str:
    """The rollback method, its steps and the rollback target; or why there was none."""
    rollback = record.get("rollback")
    stable, bad, after = (record.get("known_stable") or {}), (record.get("bad_version") or {}), \
        (record.get("serving_after") or {})
    facts = [f"<li>known stable (rollback target): <b>{text(stable.get('tag'))}</b> <code>{text(stable.get('id'))}"
             f"</code></li>" if stable else "",
             f"<li>test change: <b>{text(bad.get('tag'))}</b> <code>{text(bad.get('id'))}</code> "
             f"({text((bad.get('fault_profile') or {}).get('label'))})</li>" if bad else "",
             f"<li>serving after the drill: <b>{text(after.get('tag'))}</b> <code>{text(after.get('id'))}</code>"
             f"</li>" if after else ""]
    if not rollback:
        return f'<p class="muted">No rollback in this drill.</p><ul>{"".join(facts)}</ul>'
    steps = _table(["step", "outcome", "duration", "detail"],
                   [[text(s.get("name")), text(s.get("outcome")), f"{float(s.get('duration_s') or 0):.3f}s",
                     text(s.get("detail"))] for s in rollback.get("steps") or []])
    command = record.get("wrangler_command")
    return (f'<p><b>{text(rollback.get("method"))}</b> to <b>{text(rollback.get("version_tag"))}</b> '
            f'<code>{text(rollback.get("version_id"))}</code> (deployment <code>{text(rollback.get("deployment_id"))}'
            f'</code>), {float(rollback.get("duration_s") or 0):.2f}s</p><ul>{"".join(facts)}</ul>{steps}'
            + (f"<p>The on-call engineer's command:</p><pre>{text(command)}</pre>" if command else ""))


def approval_block(record: Mapping[str, Any]) -> str:
    approval = record.get("approval")
    if not approval:
        return ""
    granted = approval.get("granted_at")
    return (f'<p>Approved by <b>{text(approval.get("approver"))}</b> at '
            f'{text(utc(float(granted)) if isinstance(granted, (int, float)) else granted)} for: '
            f'{text(approval.get("for"))}</p>')


def messages_block(record: Mapping[str, Any]) -> str:
    """The Slack messages and status page updates, as sent, and whether they were posted."""
    out = []
    for message in record.get("messages") or []:
        posted = str(message.get("posted") or "not posted")
        kind = "ok" if posted.startswith("HTTP 2") else "bad"
        channel = str(message.get("channel") or "")
        where = "status page" if channel == "status-page" else f"Slack #{channel}"
        out.append(f'<div class="message"><div class="mhead"><b>{text(where)}</b> · {text(message.get("kind"))} · '
                   f'{text(message.get("at"))} · <span class="badge {kind}">{text(posted)}</span></div>'
                   f'<pre>{text(message.get("text"))}</pre></div>')
    return "".join(out) or '<p class="muted">No message was sent.</p>'


def drill_section(record: Mapping[str, Any], thresholds: Thresholds) -> str:
    """The whole section of one drill: summary and measures first, details collapsible."""
    f = DrillFigures.of(record)
    rolls_back = f.expected in ("ROLLBACK NOW", "GET APPROVAL") or bool(record.get("rollback"))
    match = "" if f.decision == f.expected else " mismatch"
    failure = f'<p class="failure">{text(f.failure)}</p>' if f.failure else ""
    decision = (f'<p class="verdict-line{match}">Decision <b>{text(f.decision)}</b>, expected '
                f'<b>{text(f.expected)}</b></p>')
    verification = _table(["check", "verdict", "sentence"],
                          [[text(v.get("check")), verdict_badge(str(v.get("verdict"))), text(v.get("sentence"))]
                           for v in record.get("verification") or []])
    phases = _table(["phase", "outcome", "duration", "detail"],
                    [[text(p.get("name")), text(p.get("outcome")),
                      "—" if p.get("ended_at") is None else f"{float(p['ended_at']) - float(p['started_at']):.2f}s",
                      text(p.get("detail"))] for p in record.get("phases") or []])
    triggers = _table(["trigger", "table", "fires", "sentence"],
                      [[text(t.get("name")), text(t.get("table")), "yes" if t.get("fires") else "no",
                        text(t.get("sentence"))] for t in record.get("triggers") or []])
    notes = "".join(f"<li>{text(n)}</li>" for n in record.get("healed") or [])
    artifacts = "".join(f"<li>{text(k)}: <code>{text(v)}</code></li>" for k, v in (record.get("artifacts") or {}).items())
    open_ = not f.passed
    approval = approval_block(record)
    parts = [
        f'<section class="drill {"passed" if f.passed else "not-passed"}" id="{anchor(f.drill_id)}">',
        f'<h2>{text(f.name)} {status_badge(f.status)}</h2>',
        f'<p class="muted">{text(record.get("scenario_description"))} · target {text(record.get("target"))} '
        f'({text(record.get("environment"))}), time scale {text(record.get("time_scale"))} · started '
        f'{text(record.get("started_utc"))} · record <a href="{quote(f.drill_id)}.json">{text(f.drill_id)}.json</a></p>',
        failure, decision, measure_bars(f, rolls_back=rolls_back), timeline(record, thresholds),
        _details("Decision, checklist and the decision tree", decision_block(record), open_=open_),
        _details("Rollback: method, steps, rollback target", rollback_block(record), open_=open_),
        _details("Approval", approval, open_=open_) if approval else "",
        _details(f"Messages sent ({len(record.get('messages') or [])})", messages_block(record), open_=False),
        _details("Verification after the rollback", verification, open_=open_),
        _details("Phases, triggers and notes", f"<h4>Phases</h4>{phases}<h4>Triggers at the decision</h4>{triggers}"
                 + (f"<h4>Healed</h4><ul>{notes}</ul>" if notes else "")
                 + (f"<h4>Artifacts</h4><ul>{artifacts}</ul>" if artifacts else ""), open_=False),
        "</section>"]
    return "".join(parts)
