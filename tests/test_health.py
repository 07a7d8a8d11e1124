"""Verification step 1 (the floor of it): /health answers 200 with status "ok", in either shape."""

import httpx
import pytest

pytestmark = pytest.mark.verify


def test_health_answers_ok(target):
    response = httpx.get(f"{target.base_url}/health", timeout=httpx.Timeout(5.0, connect=3.0))
    assert response.status_code == 200, (
        f"/health answered HTTP {response.status_code} at {target.base_url}; the runbook expects 200"
    )
    body = response.json()
    status = body["data"]["status"] if isinstance(body.get("data"), dict) else body.get("status")
    assert status == "ok", f"/health says status {status!r}; the runbook expects 'ok'"
