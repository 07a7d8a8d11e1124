"""The runbook's verification steps, made hard to fool (issue: `pytest -m verify`).

``plan`` decides what to measure from the settings, ``collect`` gathers the evidence from the target
(all windows concurrently), ``checks`` turns evidence into verdicts. Only ``collect`` does I/O.
"""
