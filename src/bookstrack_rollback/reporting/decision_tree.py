"""The runbook's decision tree as an inline SVG, with the path a drill took highlighted
(ROLLBACK_PROCEDURE.md, "Rollback Decision Tree", with the pre-rollback checklist's gates as
triage/decision.py applies them):

    Issue detected? ─ no ──> NO ACTION (or KEEP WATCHING: a trigger in doubt)
          │ yes
    Issue started after deploy? ─ no ──> INVESTIGATE ROOT CAUSE
          │ yes
    Not transient? (lasted >5 minutes) ─ no ──> NO ACTION (a blip), or KEEP WATCHING (not yet)
          │ yes
    No migration, rollback target identified? ─ no ──> INVESTIGATE ROOT CAUSE
          │ yes
    Is it CRITICAL? ─ yes ──> ROLLBACK NOW
          │ no
    GET APPROVAL, then roll back

The drill record's ``decision_path`` alternates questions and answers (``["Issue detected?", "yes",
"Issue started after deploy?", "yes", ...]``); a checklist gate that fails is one item
(``"No ongoing migration (database, schema changes)? no"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

QUESTIONS = (
    ("detected", "Issue detected?"),
    ("after_deploy", "Issue started after deploy?"),
    ("not_transient", "Not transient? (lasted >5 minutes)"),
    ("gates", "No migration, rollback target identified?"),
    ("critical", "Is it CRITICAL?"),
)
# the outcome of answering "no" at each question (and "yes" at the last one)
SIDE_OUTCOMES = {
    "detected": "NO ACTION, or KEEP WATCHING (in doubt)",
    "after_deploy": "INVESTIGATE ROOT CAUSE",
    "not_transient": "NO ACTION (a blip), or KEEP WATCHING (not yet)",
    "gates": "INVESTIGATE ROOT CAUSE (do not roll back blind)",
    "critical": "ROLLBACK NOW",
}
APPROVAL_OUTCOME = "GET APPROVAL, then roll back"
_RECORD_QUESTIONS = {"Issue detected?": "detected", "Issue started after deploy?": "after_deploy",
                     "Not transient?": "not_transient", "CRITICAL?": "critical"}
_YES = {"yes", "unknown"}  # "unknown": the history before the deploy could not be checked, the tree went on
_NO = {"no", "not yet", "in doubt", "unconfirmed history"}
BLUE, GREY = "#1f6feb", "#9aa0a6"


@dataclass(frozen=True)
class TakenPath:
    """The branches a drill took: ``(question id, "yes" | "no", the answer as recorded)``."""

    steps: tuple[tuple[str, str, str], ...]

    @property
    def outcome(self) -> str | None:
        """The outcome box the path ended in, or None if the drill never reached a decision."""
        if not self.steps:
            return None
        question, branch, _ = self.steps[-1]
        if question == "critical":
            return SIDE_OUTCOMES["critical"] if branch == "yes" else APPROVAL_OUTCOME
        return SIDE_OUTCOMES[question] if branch == "no" else None


def parse_path(decision_path: list[str]) -> TakenPath:
    """The record's ``decision_path`` as branches of the tree (unknown items are ignored)."""
    steps: list[tuple[str, str, str]] = []
    items = list(decision_path)
    i = 0
    while i < len(items):
        item = items[i]
        if item in _RECORD_QUESTIONS:
            answer = items[i + 1] if i + 1 < len(items) else ""
            question = _RECORD_QUESTIONS[item]
            if question == "critical" and not any(s[0] == "gates" for s in steps):
                steps.append(("gates", "yes", "yes"))  # the gates passed: the tree reached CRITICAL?
            if answer in _YES or answer in _NO:
                steps.append((question, "yes" if answer in _YES else "no", answer))
            i += 2
        elif item.endswith("? no"):  # a checklist gate failed: no migration / rollback target
            steps.append(("gates", "no", item[:-4]))
            i += 1
        else:
            i += 1
    return TakenPath(tuple(steps))


def _box(x: float, y: float, w: float, h: float, text: str, *, taken: bool, outcome: bool = False) -> str:
    stroke, fill = (BLUE, "#dbe9ff" if outcome else "#f0f6ff") if taken else (GREY, "#fafafa")
    weight = "bold" if taken else "normal"
    return (f'<g class="node{" taken" if taken else ""}"><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2.5 if taken else 1}"/><text x="{x + w / 2}" '
            f'y="{y + h / 2 + 4}" text-anchor="middle" font-weight="{weight}">{escape(text)}</text></g>')


def _edge(x1: float, y1: float, x2: float, y2: float, label: str, *, taken: bool) -> str:
    color = BLUE if taken else GREY
    lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
    return (f'<g class="edge{" taken" if taken else ""}"><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
            f'stroke="{color}" stroke-width="{3 if taken else 1.2}"/><text x="{lx + 4}" y="{ly - 4}" '
            f'fill="{color}">{escape(label)}</text></g>')


def decision_tree_svg(decision_path: list[str], *, width: int = 760) -> str:
    """The tree with the drill's path in blue and bold; boxes not reached stay grey."""
    taken = parse_path(decision_path)
    branches = {(q, b) for q, b, _ in taken.steps}
    reached = {q for q, _, _ in taken.steps}
    row_h, box_h, q_w, o_w, top = 56, 34, 330, 330, 10
    qx, ox = 10, width - o_w - 10
    height = top + (len(QUESTIONS) + 1) * row_h
    out = [f'<svg class="chart tree" role="img" aria-label="Rollback decision tree" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           "<title>Rollback decision tree, the drill's path highlighted</title>"]
    for row, (question, text) in enumerate(QUESTIONS):
        y = top + row * row_h
        out.append(_box(qx, y, q_w, box_h, text, taken=question in reached))
        side_branch = "yes" if question == "critical" else "no"
        side_taken = (question, side_branch) in branches
        out.append(_edge(qx + q_w, y + box_h / 2, ox, y + box_h / 2, side_branch, taken=side_taken))
        out.append(_box(ox, y, o_w, box_h, SIDE_OUTCOMES[question], taken=side_taken, outcome=True))
        down_branch = "no" if question == "critical" else "yes"
        down_taken = (question, down_branch) in branches
        out.append(_edge(qx + q_w / 2, y + box_h, qx + q_w / 2, y + row_h, down_branch, taken=down_taken))
    y = top + len(QUESTIONS) * row_h
    out.append(_box(qx, y, q_w, box_h, APPROVAL_OUTCOME, taken=("critical", "no") in branches, outcome=True))
    out.append("</svg>")
    return "".join(out)


def path_sentence(decision_path: list[str]) -> str:
    """The path in words: ``Issue detected? yes → Issue started after deploy? yes → ...``."""
    words, items, i = [], list(decision_path), 0
    while i < len(items):
        if items[i] in _RECORD_QUESTIONS and i + 1 < len(items):
            words.append(f"{items[i]} {items[i + 1]}")
            i += 2
        else:
            words.append(items[i])
            i += 1
    return " → ".join(words)
