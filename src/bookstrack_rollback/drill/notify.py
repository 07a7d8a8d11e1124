"""The drill's communications (ROLLBACK_PROCEDURE.md, "Communication Procedures"): the Slack messages
and status page updates, rendered with the drill's real figures and posted to the configured webhooks
(the embedded staging's sink by default). Every message is kept in the drill record, posted or not.
:class:`Messenger` is the drill listener that sends them as the drill goes."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from ..comms import (
    IncidentFacts,
    RecoveryFacts,
    Release,
    StatusState,
    Webhook,
    WebhookError,
    render_rollback_complete,
    render_rollback_in_progress,
    render_status_update,
)
from ..config import Runbook, Target
from ..config.secret import Secret
from ..triage.decision import Action, Decision
from .journal import DrillListener
from .record import DrillRecord, MessageRecord

ENV_SLACK = "BOOKSTRACK_SLACK_WEBHOOK_URL"
ENV_STATUS = "BOOKSTRACK_STATUS_WEBHOOK_URL"
STATUS_PAGE = "status-page"


def webhook_urls(target: Target, runbook: Runbook) -> dict[str, Secret]:
    """channel -> webhook URL: from the environment, or the embedded staging's sink."""
    channels = [c.lstrip("#") for c in runbook.communications.slack_channels]
    if target.embedded and target.base_url:
        return {c: Secret(f"{target.base_url}/__staging/webhooks/{c}") for c in [*channels, STATUS_PAGE]}
    urls: dict[str, Secret] = {}
    if os.environ.get(ENV_SLACK):
        urls.update({c: Secret(os.environ[ENV_SLACK]) for c in channels})
    if os.environ.get(ENV_STATUS):
        urls[STATUS_PAGE] = Secret(os.environ[ENV_STATUS])
    return urls


class Notifier:
    def __init__(self, target: Target, runbook: Runbook, sent: list[MessageRecord]) -> None:
        self.runbook = runbook
        self.sent = sent  # the drill record's list
        self.urls = webhook_urls(target, runbook)
        self.channels = [c.lstrip("#") for c in runbook.communications.slack_channels]

    def facts(self, *, drill_id: str, bad_tag: str, bad_id: str, reason: str, target_tag: str,
              target_id: str) -> IncidentFacts:
        return IncidentFacts(
            incident_id=f"DRILL-{drill_id}", deployment=Release(bad_tag, bad_id), reason=reason,
            rollback_target=Release(target_tag, target_id), eta_min=self.runbook.communications.rollback_eta_min,
            status_page_url="https://status.oooefam.net", dashboard_url="https://dash.cloudflare.com/",
            signed="On-Call Engineer (drill)")

    async def _post(self, channel: str, message: Any, kind: str) -> None:
        entry = MessageRecord(channel, kind, message.text, datetime.now(timezone.utc).isoformat())
        url = self.urls.get(channel)
        if url is None:
            entry.posted = "not posted: no webhook configured for this channel"
        else:
            try:
                async with Webhook(url, channel=channel) as webhook:
                    receipt = await webhook.post(message)
                entry.posted = f"HTTP {receipt.status_code} after {receipt.attempts} attempt(s)"
            except WebhookError as exc:
                entry.posted = f"failed: {exc}"
        self.sent.append(entry)

    async def status(self, facts: IncidentFacts, state: StatusState) -> None:
        update = render_status_update(facts, state, datetime.now(timezone.utc),
                                      postmortem_within_h=self.runbook.communications.postmortem_within_h)
        await self._post(STATUS_PAGE, update, f"status page: {state.name.title()}")

    async def rollback_in_progress(self, facts: IncidentFacts) -> None:
        message = render_rollback_in_progress(facts)
        for channel in self.channels:
            await self._post(channel, message, "slack: rollback in progress")

    async def rollback_complete(self, facts: IncidentFacts, recovery: RecoveryFacts) -> None:
        message = render_rollback_complete(facts, recovery)
        for channel in self.channels:
            await self._post(channel, message, "slack: rollback complete")


class Messenger(DrillListener):
    """The runbook's messages at the drill's moments: Investigating when a trigger is confirmed,
    Identified when the decision is to roll back, ROLLBACK IN PROGRESS, Monitoring once the rollback
    serves, ROLLBACK COMPLETE and Resolved once it is verified."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def detected(self, record: DrillRecord, facts: IncidentFacts) -> None:
        await self.notifier.status(facts, StatusState.INVESTIGATING)

    async def decided(self, record: DrillRecord, facts: IncidentFacts, decision: Decision) -> None:
        if decision.action in (Action.ROLLBACK_NOW, Action.GET_APPROVAL):
            await self.notifier.status(facts, StatusState.IDENTIFIED)

    async def rollback_started(self, record: DrillRecord, facts: IncidentFacts) -> None:
        await self.notifier.rollback_in_progress(facts)

    async def rollback_serving(self, record: DrillRecord, facts: IncidentFacts) -> None:
        await self.notifier.status(facts, StatusState.MONITORING)

    async def verified(self, record: DrillRecord, facts: IncidentFacts, recovery: RecoveryFacts) -> None:
        await self.notifier.rollback_complete(facts, recovery)
        await self.notifier.status(facts, StatusState.RESOLVED)
