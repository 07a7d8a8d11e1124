"""The rate triggers judged on what users see (issue 15): Analytics Engine's window, with the suite's own
probes taken out (``signals.traffic.split``), is the first signal; the probes are the second.

The runbook's trigger tables and its "Check error rate (last 10 minutes)" are about the users. With users
sending 20 requests a second, a 5-minute window holds 6,000 of their requests against the suite's 300
probes. Where Analytics Engine cannot be read, lags, or records less than the probes alone got (signal
sanity), or the users sent too few requests, the probes are judged alone and the sentence says why.
Where users and probes disagree beyond their intervals, that is reported, not averaged away: a fault
only some users see, or telemetry that does not record what happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..signals.traffic import Counts, TrafficSplit
from ..stats import Rate
from .triggers import Reading, TriggerEvaluator

USERS_TRIGGERS = ("error_rate_spike", "server_error_rate", "moderate_error_rate", "cache_failure")


@dataclass
class UsersView:
    """Readings judged on the users' traffic, in place of the probes' (trigger id -> reading): over the
    window watched, and over its recent part (has it ended?)."""

    readings: dict[str, Reading] = field(default_factory=dict)
    recent: dict[str, Reading] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _users_rate(trigger_id: str, counts: Counts) -> Rate:
    if trigger_id == "cache_failure":
        return Rate(counts.hits, counts.answered)
    events = counts.server_errors if trigger_id == "server_error_rate" else counts.errors
    return Rate(min(events, counts.requests), counts.requests)


def _probe_rate(on_probes: Reading) -> Rate:
    """The probes' own error figure, from their reading."""
    return Rate(on_probes.bad, on_probes.samples)


def _trustworthy(trigger_id: str, traffic: TrafficSplit) -> bool:
    if trigger_id == "cache_failure":
        return traffic.cache_trustworthy
    if trigger_id == "server_error_rate":
        return traffic.server_errors_trustworthy
    return traffic.errors_trustworthy


def _judge(evaluator: TriggerEvaluator, trigger_id: str, rate: Rate) -> Reading:
    im, ap = evaluator.runbook.triggers.immediate, evaluator.runbook.triggers.approval
    trigger = evaluator.triggers[trigger_id]
    if trigger_id == "cache_failure":
        return evaluator.cache_reading(rate, "users' cache hit rate", "answers")
    if trigger_id == "server_error_rate":
        return evaluator.rate_reading(trigger, rate, "users' 5xx rate", "requests", im.server_error_rate_above)
    if trigger_id == "moderate_error_rate":
        return evaluator.rate_reading(trigger, rate, "users' error rate", "requests", ap.error_rate_from,
                                      ap.error_rate_to)
    return evaluator.rate_reading(trigger, rate, "users' error rate", "requests", im.error_rate_above)


def judge_users(evaluator: TriggerEvaluator, traffic: TrafficSplit | None, probes: dict[str, Reading],
                unreadable: str | None = None) -> UsersView:
    """The users' readings of the rate triggers, each with the probes' figure beside it."""
    view = UsersView()
    if traffic is None or traffic.lagging:
        why = unreadable or (f"Analytics Engine holds {traffic.all.requests} data points for the "
                             f"{traffic.probes.requests} requests the probes alone made: it has not ingested them yet"
                             if traffic else "Analytics Engine was not read")
        view.notes.append(f"the triggers are judged on the probes alone: {why}")
        return view
    confidence = evaluator.confidence
    for trigger_id in USERS_TRIGGERS:
        on_probes = probes[trigger_id]
        if not _trustworthy(trigger_id, traffic):
            problems = "; ".join(traffic.problems("cache" if trigger_id == "cache_failure" else "status")[:2])
            view.notes.append(f"{on_probes.trigger.name} judged on the probes alone: the telemetry does not record what "
                              f"the probes saw ({problems})")
            continue
        rate = _users_rate(trigger_id, traffic.users)
        if rate.total < evaluator.min_samples:
            view.notes.append(f"{on_probes.trigger.name} judged on the probes alone: users sent only {rate.total} requests "
                              "in the window")
            continue
        users = _judge(evaluator, trigger_id, rate)
        sentence = f"{users.sentence}; probes: {on_probes.sentence}"
        theirs = _probe_rate(on_probes)
        # the probes' cache figure is their repeated searches' only (the users' holds their fresh ones too):
        # error rates alone compare like with like
        if trigger_id != "cache_failure" and theirs.total >= evaluator.min_samples:
            (u_low, u_high), (p_low, p_high) = rate.interval(confidence), theirs.interval(confidence)
            if u_high < p_low or p_high < u_low:
                sentence += (". Users and probes disagree beyond their intervals: a fault only some users see, or "
                             "telemetry that does not record what happens")
                note = (f"users and probes disagree beyond their intervals "
                        f"({rate.describe('users', 'requests', confidence)}; "
                        f"{theirs.describe('probes', 'requests', confidence)})")
                seen = [n for n in view.notes if n.endswith(note)]  # the error rate and its 5xx share: once
                if seen:
                    view.notes[view.notes.index(seen[0])] = seen[0].replace(": users and", f", {on_probes.trigger.name}: users and", 1)
                else:
                    view.notes.append(f"{on_probes.trigger.name}: {note}")
        view.readings[trigger_id] = replace(users, sentence=sentence)
    return view
