/**
 * What the worker reports about each request (contract/bookstrack-api.md, "Telemetry"), written as
 * the embedded staging's telemetry.py writes it:
 *   PERFORMANCE_ANALYTICS (books_api_performance): indexes [path], blobs [path, error code or
 *     "N/A", "HIT" | "MISS"], doubles [HTTP status, processing ms];
 *   CACHE_ANALYTICS (books_api_cache_metrics): one point per cache tier event of a search:
 *     indexes [event], blobs [event, cache key], doubles [ms].
 * The REALITY.md quirks of the profile in force (blob3_always_miss, double1_500) change the
 * performance point only. A binding that is missing or throws loses the point, never the answer.
 * One console.log line per request (method, path, status) is what `wrangler tail` shows.
 */

import { round3 } from "./latency.mjs";

/** One request as the worker saw it; its telemetry is written from it. */
export class Exchange {
  constructor(request, path, endpoint, { receivedAt = Date.now(), profile = null } = {}) {
    this.method = request.method;
    this.path = path;
    this.endpoint = endpoint; // health | title | isbn | advanced | batch | ws | unknown
    this.receivedAt = receivedAt;
    this.profile = profile; // the fault profile in force (the hook's), or null
    this.simulatedMs = 0; // upstream time the fake provider reports but does not spend
    this.cacheStatus = "MISS";
    this.errorCode = "N/A";
    this.cacheEvents = []; // [event, key, ms]
  }

  processingMs(now = Date.now()) {
    return round3(Math.max(0, now - this.receivedAt) + this.simulatedMs);
  }
}

function write(dataset, point, ctx) {
  try {
    const written = dataset?.writeDataPoint(point);
    if (written && typeof written.then === "function") ctx?.waitUntil?.(written.catch(() => {}));
  } catch (exc) {
    console.warn(`Analytics Engine write failed: ${exc}`);
  }
}

/** Write the request's data points and its log line. */
export function finish(exchange, status, env, ctx) {
  const quirks = exchange.profile?.quirks ?? [];
  const cacheStatus = quirks.includes("blob3_always_miss") ? "MISS" : exchange.cacheStatus;
  const reported = quirks.includes("double1_500") && exchange.errorCode !== "NOT_FOUND" ? 500 : status;
  const processingMs = exchange.processingMs();
  write(env.PERFORMANCE_ANALYTICS, {
    indexes: [exchange.path],
    blobs: [exchange.path, exchange.errorCode, cacheStatus],
    doubles: [reported, processingMs],
  }, ctx);
  for (const [event, key, ms] of exchange.cacheEvents) {
    write(env.CACHE_ANALYTICS, { indexes: [event], blobs: [event, key], doubles: [ms] }, ctx);
  }
  const code = exchange.errorCode === "N/A" ? "" : ` ${exchange.errorCode}`;
  console.log(`${exchange.method} ${exchange.path} ${status}${code} ${Math.round(processingMs)}ms`);
}
