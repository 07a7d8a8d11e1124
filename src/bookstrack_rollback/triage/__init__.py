"""Do we roll back? The runbook's trigger tables, pre-rollback checklist and decision tree as data and
one small evaluator, shared by `pytest -m triage` and the drill."""
