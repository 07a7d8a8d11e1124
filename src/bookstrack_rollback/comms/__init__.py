"""Communications and evidence preservation (ROLLBACK_PROCEDURE.md, "Communication Procedures" and
"Post-Rollback Actions").

- :mod:`.templates`: the runbook's Slack messages and status page updates, rendered from typed facts
  with real figures; :mod:`.postmortem`: the post-mortem skeleton with its timeline and measures;
- :mod:`.webhook`: posting a rendered message to a Slack-style or status page webhook (timeouts,
  bounded retries, the URL kept secret);
- :mod:`.tail_logs`: "Preserve logs from failed deployment" (``wrangler tail --format json >
  incident-logs-...log``) through the Cloudflare API and the tail socket.
"""

from .postmortem import TimelineEntry, render_postmortem
from .tail_logs import TailLogsError, incident_log_name, preserve_tail_logs
from .templates import (
    IncidentFacts,
    RecoveryFacts,
    Release,
    SlackMessage,
    StatusPageUpdate,
    StatusState,
    back_to_normal,
    render_rollback_complete,
    render_rollback_in_progress,
    render_status_update,
    spike_reason,
    utc_stamp,
)
from .webhook import (
    Webhook,
    WebhookError,
    WebhookReceipt,
    WebhookRefused,
    WebhookUnavailable,
)

__all__ = [
    "IncidentFacts",
    "RecoveryFacts",
    "Release",
    "SlackMessage",
    "StatusPageUpdate",
    "StatusState",
    "TailLogsError",
    "TimelineEntry",
    "Webhook",
    "WebhookError",
    "WebhookReceipt",
    "WebhookRefused",
    "WebhookUnavailable",
    "back_to_normal",
    "incident_log_name",
    "preserve_tail_logs",
    "render_postmortem",
    "render_rollback_complete",
    "render_rollback_in_progress",
    "render_status_update",
    "spike_reason",
    "utc_stamp",
]
