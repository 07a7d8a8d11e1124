"""One drill of the drill report, as HTML: its measures against the budgets, its timeline, the
checklist and the decision tree, the rollback, the approval, the messages sent and the verification.

Everything shown comes from the drill record (``DrillRecord.as_json()``); every text goes through
:func:`text` (escaped, with anything that looks like a credential redacted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from ..config import runbook_minutes
from ..drill.record import DrillRecord, utc
from ..measures import Measure
from .charts import Marker, Panel, Series, Threshold, timeline_svg
from .decision_tree import decision_tree_svg, path_sentence

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
    def of(cls, record: DrillRecord) -> DrillFigures:
        return cls(record.drill_id, record.scenario, record.method, record.status, record.expected_decision,
                   record.decision or "no decision", record.failure.strip(), record.measures.each())


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
            f'<div class="measure{" over" if m.over_budget else ""}"><div class="mname">{text(m.name)}</div>'
            f'<div class="bar" title="{text(m.figure())} of {text(m.budget())}"><span class="fill" '
            f'style="width:{m.seconds / full * 100:.1f}%"></span><span class="budget" '
            f'style="left:{m.budget_s / full * 100:.1f}%"></span></div>'
            f'<div class="mvalue"><b>{text(m.figure())}</b> of a {text(m.budget())} budget'
            f'{" — over budget" if m.over_budget else ""}</div>'
            + (f'<p class="slow">{text(m.over_budget_sentence())}</p>' if m.over_budget else "") + "</div>")
    return '<div class="measures">' + "".join(rows) + "</div>"


def timeline(record: DrillRecord, thresholds: Thresholds) -> str:
    """The signals of the drill over time (seconds since fault live) with its phases as markers."""
    rows = record.series
    if not rows:
        return '<p class="muted">No signals were recorded for this drill.</p>'
    markers = record.markers
    origin = markers.get("fault live")

    def line(key: str) -> tuple[tuple[float, float | None], ...]:
        return tuple((point.t, getattr(point, key)) for point in rows)

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
    placed = [Marker(name, markers[name] - origin) for name in MARKERS if origin is not None and name in markers]
    band = None
    if origin is not None:
        end = markers.get("serving")
        band = (0.0, end - origin if end is not None else rows[-1].t)
    chart = timeline_svg([rates, latency], placed, band=band, x_label="seconds since fault live (the test "
                         "change deployed); shaded: the test change serving",
                         title=f"Timeline of drill {record.drill_id}")
    legend = "".join(f"<li>{text(m.label)} <b>{m.x:+.2f}s</b> ({runbook_minutes(m.x, record.time_scale):+.1f} "
                     "runbook min)</li>"
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


def decision_block(record: DrillRecord) -> str:
    """The decision, the pre-rollback checklist and the path through the runbook's tree."""
    path = record.decision_path
    checklist = _table(["", "checklist item", "what the drill saw"],
                       [[_tick(i.tick), text(i.item), text(i.sentence)] for i in record.checklist], "checklist")
    tree = decision_tree_svg(path) if path else '<p class="muted">The drill did not reach the decision.</p>'
    return (f'<p class="decision">{text(record.decision_sentence or "no decision was made")}</p>'
            f'<h4>Pre-rollback checklist</h4>{checklist}'
            f'<h4>Path through the rollback decision tree</h4><p class="path">{text(path_sentence(path))}</p>{tree}')


def rollback_block(record: DrillRecord) -> str:
    """The rollback method, its steps and the rollback target; or why there was none."""
    rollback, stable, bad, after = record.rollback, record.known_stable, record.bad_version, record.serving_after
    facts = [f"<li>known stable (rollback target): <b>{text(stable.tag)}</b> <code>{text(stable.id)}</code></li>"
             if stable else "",
             f"<li>test change: <b>{text(bad.tag)}</b> <code>{text(bad.id)}</code> "
             f"({text(bad.fault_profile.get('label'))})</li>" if bad else "",
             f"<li>serving after the drill: <b>{text(after.tag)}</b> <code>{text(after.id)}</code></li>" if after else ""]
    if not rollback:
        return f'<p class="muted">No rollback in this drill.</p><ul>{"".join(facts)}</ul>'
    steps = _table(["step", "outcome", "duration", "detail"],
                   [[text(s.name), text(s.outcome), f"{s.duration_s:.3f}s", text(s.detail)] for s in rollback.steps])
    command = record.wrangler_command
    return (f'<p><b>{text(rollback.method)}</b> to <b>{text(rollback.version_tag)}</b> '
            f'<code>{text(rollback.version_id)}</code> (deployment <code>{text(rollback.deployment_id)}'
            f'</code>), {rollback.duration_s:.2f}s</p><ul>{"".join(facts)}</ul>{steps}'
            + (f"<p>The on-call engineer's command:</p><pre>{text(command)}</pre>" if command else ""))


def approval_block(record: DrillRecord) -> str:
    approval = record.approval
    if approval is None:
        return ""
    return (f'<p>Approved by <b>{text(approval.approver)}</b> at {text(utc(approval.granted_at))} for: '
            f'{text(approval.reason)}</p>')


def messages_block(record: DrillRecord) -> str:
    """The Slack messages and status page updates, as sent, and whether they were posted."""
    out = []
    for message in record.messages:
        posted = message.posted or "not posted"
        kind = "ok" if posted.startswith("HTTP 2") else "bad"
        where = "status page" if message.channel == "status-page" else f"Slack #{message.channel}"
        out.append(f'<div class="message"><div class="mhead"><b>{text(where)}</b> · {text(message.kind)} · '
                   f'{text(message.at)} · <span class="badge {kind}">{text(posted)}</span></div>'
                   f'<pre>{text(message.text)}</pre></div>')
    return "".join(out) or '<p class="muted">No message was sent.</p>'


def drill_section(record: DrillRecord, thresholds: Thresholds) -> str:
    """The whole section of one drill: summary and measures first, details collapsible."""
    f = DrillFigures.of(record)
    rolls_back = f.expected in ("ROLLBACK NOW", "GET APPROVAL") or record.rollback is not None
    match = "" if f.decision == f.expected else " mismatch"
    failure = f'<p class="failure">{text(f.failure)}</p>' if f.failure else ""
    decision = (f'<p class="verdict-line{match}">Decision <b>{text(f.decision)}</b>, expected '
                f'<b>{text(f.expected)}</b></p>')
    verification = _table(["check", "verdict", "sentence"],
                          [[text(v.check), verdict_badge(v.verdict), text(v.sentence)] for v in record.verification])
    phases = _table(["phase", "outcome", "duration", "detail"],
                    [[text(p.name), text(p.outcome), "—" if p.duration_s is None else f"{p.duration_s:.2f}s",
                      text(p.detail)] for p in record.phases])
    triggers = _table(["trigger", "table", "fires", "time to detect", "sentence"],
                      [[text(t.name) + (" (the scenario's)" if t.expected else ""), text(t.table),
                        "yes" if t.fires else "no",
                        "—" if t.detected_after_s is None else f"{t.detected_after_s:.2f}s", text(t.sentence)]
                       for t in record.triggers])
    notes = "".join(f"<li>{text(n)}</li>" for n in record.healed)
    artifacts = "".join(f"<li>{text(k)}: <code>{text(v)}</code></li>" for k, v in record.artifacts.items())
    open_ = not f.passed
    approval = approval_block(record)
    parts = [
        f'<section class="drill {"passed" if f.passed else "not-passed"}" id="{anchor(f.drill_id)}">',
        f'<h2>{text(f.name)} {status_badge(f.status)}</h2>',
        f'<p class="muted">{text(record.scenario_description)} · target {text(record.target)} '
        f'({text(record.environment)}), time scale {text(record.time_scale)} · started '
        f'{text(utc(record.started_at))} · record <a href="{quote(f.drill_id)}.json">{text(f.drill_id)}.json</a></p>',
        failure, decision, measure_bars(f, rolls_back=rolls_back), timeline(record, thresholds),
        _details("Decision, checklist and the decision tree", decision_block(record), open_=open_),
        _details("Rollback: method, steps, rollback target", rollback_block(record), open_=open_),
        _details("Approval", approval, open_=open_) if approval else "",
        _details(f"Messages sent ({len(record.messages)})", messages_block(record), open_=False),
        _details("Verification after the rollback", verification, open_=open_),
        _details("Phases, triggers and notes", f"<h4>Phases</h4>{phases}<h4>Triggers at the decision</h4>{triggers}"
                 + (f"<h4>Healed</h4><ul>{notes}</ul>" if notes else "")
                 + (f"<h4>Artifacts</h4><ul>{artifacts}</ul>" if artifacts else ""), open_=False),
        "</section>"]
    return "".join(parts)
