"""Wire shapes of the BooksTrack API (contract/bookstrack-api.md): the success and error envelopes,
the older 404 shape, the flat 429 body, and Cloudflare's "Error 1101 Worker threw exception" page
that a crashed worker answers with (HTML, not JSON)."""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse

CORS = {"Access-Control-Allow-Origin": "*"}


def success(data: Any, metadata: dict[str, Any], status: int = 200) -> JSONResponse:
    """``{"data": ..., "metadata": {"timestamp", ...}}``."""
    return JSONResponse({"data": data, "metadata": metadata}, status_code=status)


def error(status: int, code: str, message: str, timestamp: str, details: dict[str, Any] | None = None) -> JSONResponse:
    """``{"data": null, "metadata": {"timestamp"}, "error": {"message", "code", "details"}}``."""
    body: dict[str, Any] = {
        "data": None,
        "metadata": {"timestamp": timestamp},
        "error": {"message": message, "code": code, "details": details or {}},
    }
    return JSONResponse(body, status_code=status)


def not_found(path: str) -> JSONResponse:
    """The older shape, with ``X-Error-Type: NOT_FOUND``."""
    body = {"success": False, "error": {"code": "NOT_FOUND", "message": f"Route not found: {path}"}}
    return JSONResponse(body, status_code=404, headers={"X-Error-Type": "NOT_FOUND"})


def missing_param(name: str) -> JSONResponse:
    body = {"success": False, "error": {"code": "MISSING_PARAM", "message": f"Missing {name} parameter"}}
    return JSONResponse(body, status_code=400, headers=CORS)


def plain(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status, headers=CORS)


def rate_limited(retry_after: int, limit: int, reset_at_ms: int, client_ip: str) -> JSONResponse:
    """The flat 429 body and headers of the batch endpoint's rate limit."""
    body = {
        "error": f"Rate limit exceeded. Please try again in {retry_after} seconds.",
        "code": "RATE_LIMIT_EXCEEDED",
        "details": {
            "retryAfter": retry_after,
            "clientIP": client_ip[:8] + "...",
            "requestsRemaining": 0,
            "requestsLimit": limit,
        },
    }
    headers = {
        "Retry-After": str(retry_after),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset_at_ms),
    }
    return JSONResponse(body, status_code=429, headers=headers)


def worker_exception(host: str, ray_id: str, utc: str) -> HTMLResponse:
    """Cloudflare's error page for a worker that threw: status 500, ``text/html``."""
    page = f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html class="no-js" lang="en-US">
<head>
<title>Worker threw exception | {host} | Cloudflare</title>
<meta charset="UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details" class="cf-error-details-wrapper">
    <div class="cf-wrapper cf-header cf-error-overview">
      <h1>
        <span class="cf-error-type" data-translate="error">Error</span>
        <span class="cf-error-code">1101</span>
        <small class="heading-ray-id">Ray ID: {ray_id} &bull; {utc}</small>
      </h1>
      <h2 class="cf-subheadline" data-translate="error_desc">Worker threw exception</h2>
    </div>
    <section></section>
    <div class="cf-section cf-wrapper">
      <div class="cf-columns two">
        <div class="cf-column">
          <h2 data-translate="what_happened">What happened?</h2>
          <p>You've requested a page on a website ({host}) that is on the
          <a href="https://www.cloudflare.com/5xx-error-landing/">Cloudflare</a> network. An unknown
          error occurred while rendering the page.</p>
        </div>
        <div class="cf-column">
          <h2 data-translate="what_can_i_do">What can I do?</h2>
          <p><strong>If you are the owner of this website:</strong><br />refer to
          <a href="https://developers.cloudflare.com/workers/observability/errors/">Workers - Errors and
          Exceptions</a> and check Workers Logs for {host}.</p>
        </div>
      </div>
    </div>
    <div class="cf-error-footer cf-wrapper w-240 lg:w-full py-10 sm:py-4 sm:px-8 mx-auto text-center sm:text-left border-solid border-0 border-t border-gray-300">
      <p class="text-13">
        <span class="cf-footer-item sm:block sm:mb-1">Cloudflare Ray ID: <strong class="font-semibold">{ray_id}</strong></span>
      </p>
    </div>
  </div>
</div>
</body>
</html>
"""
    return HTMLResponse(page, status_code=500, headers={"cf-ray": ray_id, **CORS})
