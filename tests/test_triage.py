"""`pytest -m triage`: an alert fired; do we roll back? Read-only: the runbook's trigger tables
evaluated on live signals, the pre-rollback checklist item by item, and the decision.

A trigger that fires FAILS (the service breaches it); one that cannot be judged yet is INCONCLUSIVE.
A checklist item that does not hold FAILS. The decision test states the decision, the evidence, the
rollback target and the exact wrangler command; it is green only for NO ACTION (KEEP WATCHING and
INVESTIGATE are INCONCLUSIVE, a rollback FAILS).
"""

from __future__ import annotations

import pytest

from bookstrack_rollback.stats import Judgement
from bookstrack_rollback.triage.decision import Action, Tick
from bookstrack_rollback.triage.triggers import trigger_table
from bookstrack_rollback.config import load_runbook
from bookstrack_rollback.verdicts import failed, inconclusive, passed
from fixtures.reporting import label_check, record

# one observation answers every test: under xdist they share a worker (--dist loadgroup)
pytestmark = [pytest.mark.triage, pytest.mark.xdist_group(name="triage-run")]

TRIGGERS = trigger_table(load_runbook())
CHECKLIST = ("not_transient", "deployment_related", "metrics_confirm", "no_migration", "target_identified")


@pytest.mark.parametrize("trigger", TRIGGERS, ids=[t.id for t in TRIGGERS])
def test_trigger(triage, trigger):
    label_check("When to Rollback", f"{trigger.name} ({trigger.threshold_text})",
                severity="critical" if trigger.table.value == "immediate" else "normal", anchor="when-to-rollback")
    reading = triage.assessment.after[trigger.id]
    name = f"{trigger.name} [{trigger.table.value}]"
    if reading.judgement is Judgement.BREACH:
        record(failed(name, reading.sentence + ".", "see the decision test for what to do"))
    elif reading.judgement is Judgement.UNSURE:
        record(inconclusive(name, reading.sentence + ".", "watch longer, or raise the probe rate"))
    else:
        record(passed(name, reading.sentence + "."))


@pytest.mark.parametrize("item", CHECKLIST)
def test_checklist(triage, item):
    found = next(i for i in triage.decision.checklist if i.id == item)
    label_check("Pre-Rollback Checklist", found.text, severity="normal", anchor="pre-rollback-checklist")
    if not triage.decision.firing:
        record(passed(found.text, "not applicable: no trigger is confirmed, so there is no rollback to check for."))
    elif found.tick is Tick.YES:
        record(passed(found.text, found.sentence + "."))
    elif found.tick is Tick.NO:
        record(failed(found.text, found.sentence + ".", "see the decision test"))
    else:
        record(inconclusive(found.text, found.sentence + ".", "check it by hand before rolling back"))


def test_decision(triage, target):
    label_check("Rollback Decision Tree", "do we roll back?", severity="blocker", anchor="rollback-decision-tree")
    decision = triage.decision
    command = decision.wrangler_command(target.worker)
    sentence = f"{decision.action.value}: {decision.sentence} Path: {' → '.join(decision.path)}."
    if command:
        sentence += f" Run: {command}"
    if decision.action is Action.NO_ACTION:
        record(passed("decision", sentence))
    elif decision.action is Action.INVESTIGATE:
        record(inconclusive("decision", sentence, "investigate the root cause; do not roll back"))
    elif decision.action is Action.KEEP_WATCHING:
        record(inconclusive("decision", sentence, "do not roll back yet, and do not stand down: run again with "
                            "--watch-until-decided"))
    else:
        record(failed("decision", sentence, "roll back now" if decision.action is Action.ROLLBACK_NOW
                      else "get approval from the engineering lead, then roll back"))
