"""A targets.toml naming a staging started by a test, as a user would name a real target."""

from __future__ import annotations

from bookstrack_rollback.staging import RunningStaging
from bookstrack_rollback.staging.state import CANARY_RECORDS


def targets_toml(staging: RunningStaging, *, environment: str = "staging", base_url: str | None = None,
                 cloudflare_api_url: str | None = None, synthetic_worker: bool = False,
                 known_stable: str = "1.9.0", max_probe_rate: float = 500) -> str:
    canaries = "\n".join(f'"{k}" = \'{v}\'' for k, v in CANARY_RECORDS.items())
    return f"""
[targets.local]
environment = "{environment}"
base_url = "{base_url or staging.base_url}"
cloudflare_api_url = "{cloudflare_api_url or staging.cloudflare_api_url}"
worker = "{staging.config.worker_name}"
kv_namespace_id = "{staging.config.kv_namespace_id}"
known_stable = "{known_stable}"
request_ws_token = true
analytics_lag_s = 0
time_scale = 0.02
max_probe_rate = {max_probe_rate:g}
synthetic_worker = {"true" if synthetic_worker else "false"}

[targets.local.canaries]
{canaries}
"""
