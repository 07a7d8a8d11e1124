"""Shared by the Cloudflare API tests: paths of the staging's worker, and the error envelope check."""

from __future__ import annotations

from bookstrack_rollback.staging import Staging


def scripts(staging: Staging) -> str:
    return f"/client/v4/accounts/{staging.config.account_id}/workers/scripts/{staging.config.worker_name}"


def assert_error(response, status: int, code: int, *, contains: str = "") -> str:
    """The Cloudflare error envelope with ``status`` and ``code``; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code, body
    assert contains in body["errors"][0]["message"], body["errors"][0]["message"]
    return body["errors"][0]["message"]
