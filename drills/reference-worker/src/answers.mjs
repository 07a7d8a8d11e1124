/**
 * Wire shapes of the BooksTrack API (contract/bookstrack-api.md), as the embedded staging's
 * responses.py writes them: the success and error envelopes, the older 404 shape, the flat 429
 * body, the plain-text refusals of the progress socket, and the CORS preflight. Every answer
 * carries Access-Control-Allow-Origin: * (contract: "CORS").
 */

export const CORS = { "access-control-allow-origin": "*" };

export const isoNow = () => new Date().toISOString(); // 2026-11-29T10:00:00.000Z, as the contract writes it

export function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...CORS, ...headers } });
}

/** {"data": ..., "metadata": {"timestamp", ...}} */
export const success = (data, metadata, status = 200) => json(status, { data, metadata });

/** {"data": null, "metadata": {"timestamp"}, "error": {"message", "code", "details"}} */
export const error = (status, code, message, details = {}) =>
  json(status, { data: null, metadata: { timestamp: isoNow() }, error: { message, code, details } });

/** An unknown path: the older shape, with X-Error-Type: NOT_FOUND. */
export const notFound = (path) =>
  json(404, { success: false, error: { code: "NOT_FOUND", message: `Route not found: ${path}` } }, { "x-error-type": "NOT_FOUND" });

export const missingParam = (name) =>
  json(400, { success: false, error: { code: "MISSING_PARAM", message: `Missing ${name} parameter` } });

export const plain = (status, text, headers = {}) =>
  new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8", ...CORS, ...headers } });

/** The batch endpoint's flat 429 body and its rate-limit headers (resetAtMs: epoch ms). */
export function rateLimited(retryAfter, limit, resetAtMs, clientIp) {
  const body = {
    error: `Rate limit exceeded. Please try again in ${retryAfter} seconds.`,
    code: "RATE_LIMIT_EXCEEDED",
    details: { retryAfter, clientIP: `${clientIp.slice(0, 8)}...`, requestsRemaining: 0, requestsLimit: limit },
  };
  return json(429, body, {
    "retry-after": String(retryAfter),
    "x-ratelimit-limit": String(limit),
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(resetAtMs),
  });
}

/** OPTIONS on any path: 204, as the embedded staging's middleware answers it. */
export const preflight = () => new Response(null, {
  status: 204,
  headers: {
    ...CORS,
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type, Authorization",
    "access-control-max-age": "86400",
  },
});

/** The same answer without its body (HEAD). */
export const headOf = (response) => new Response(null, { status: response.status, headers: response.headers });
