/**
 * The BooksTrack API (contract/bookstrack-api.md) as the embedded staging's routes.py serves it:
 * one route per endpoint and method, then the 404 shape. OPTIONS on any path answers the CORS
 * preflight (204, no telemetry); /__staging/... is never the worker's (404, no telemetry). Every
 * other request gets one Exchange: the handler answers, a handler failure becomes 500
 * INTERNAL_ERROR, and the request's telemetry and log line are written (telemetry.mjs).
 *
 * observeInjected() is the fault hook's onInjected observer: the answers the hook gives itself
 * (injected errors, outages, failed handshakes, unusable profiles) are written as the worker's own,
 * as the embedded staging writes them.
 */

import { faultsOf } from "../../staging-hook/fault-hook.mjs";
import { CORS, error, headOf, json, missingParam, notFound, plain, preflight } from "./answers.mjs";
import { batch } from "./batch.mjs";
import { ERROR_CODE_HEADER } from "./job-progress.mjs";
import { param, search, searchOf } from "./search.mjs";
import { Exchange, finish } from "./telemetry.mjs";

const ADMIN_PREFIX = "/__staging";
const ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const GET = ["GET", "HEAD"];
const ROUTES = new Map([
  ["/health", ["health", GET]],
  ["/v1/search/title", ["title", GET]],
  ["/v1/search/isbn", ["isbn", GET]],
  ["/v1/search/advanced", ["advanced", GET]],
  ["/v1/enrichment/batch", ["batch", ["POST"]]],
  ["/ws/progress", ["ws", ALL_METHODS]],
]);
export const HEALTH_ENDPOINTS = [
  "GET /health - Health check",
  "GET /v1/search/title?q={query} - Search books by title",
  "GET /v1/search/isbn?isbn={isbn} - Search books by ISBN",
  "GET /v1/search/advanced?title={title}&author={author} - Advanced search",
  "POST /v1/enrichment/batch - Batch enrichment with WebSocket progress",
  "GET /ws/progress?jobId={id}&token={token} - WebSocket progress updates",
];
const DEFAULT_WORKER = "api-worker-staging";

/** The endpoint a request is for, by path and method; "unknown" answers 404. */
export function endpointOf(path, method) {
  const route = ROUTES.get(path);
  return route && route[1].includes(method) ? route[0] : "unknown";
}

const isUpgrade = (request) => request.headers.get("upgrade")?.toLowerCase() === "websocket";

// --- handlers: (request, env, exchange, url) -> Response ----------------------------------------
function health(request, env, exchange) {
  const status = env.HEALTH_STATUS === "degraded" ? "degraded" : "ok";
  const worker = env.WORKER_NAME || DEFAULT_WORKER;
  const constant = env.HEALTH_SHAPE === "constant" || (exchange.profile?.quirks ?? []).includes("health_constant");
  if (constant) return json(200, { status, worker, version: "1.0.0", endpoints: HEALTH_ENDPOINTS });
  const metadata = env.CF_VERSION_METADATA ?? {};
  return json(200, { data: { status, version: metadata.tag || metadata.id || "unknown", worker } });
}

async function progress(request, env, exchange, url) {
  const jobId = param(url.searchParams, "jobId");
  if (!jobId) {
    exchange.errorCode = "MISSING_PARAM";
    return missingParam("jobId");
  }
  if (!isUpgrade(request)) {
    exchange.errorCode = "UPGRADE_REQUIRED";
    return plain(426, "Expected Upgrade: websocket");
  }
  const answer = await env.JOB_PROGRESS.get(env.JOB_PROGRESS.idFromName(jobId)).fetch(request);
  const code = answer.headers.get(ERROR_CODE_HEADER);
  if (code === null) return answer;
  exchange.errorCode = code;
  return plain(answer.status, await answer.text());
}

function unknown(request, env, exchange, url) {
  exchange.errorCode = "NOT_FOUND";
  return notFound(url.pathname);
}

const HANDLERS = { health, title: search, isbn: search, advanced: search, batch, ws: progress, unknown };

// --- the app --------------------------------------------------------------------------------------
export async function app(request, env, ctx) {
  const url = new URL(request.url);
  if (request.method === "OPTIONS") {
    console.log(`OPTIONS ${url.pathname} 204`);
    return preflight();
  }
  if (url.pathname.startsWith(ADMIN_PREFIX)) return notFound(url.pathname); // not the worker's: no telemetry
  if (!ALL_METHODS.includes(request.method)) {
    return new Response("Method Not Allowed", { status: 405, headers: { ...CORS, allow: ALL_METHODS.join(", ") } });
  }
  const endpoint = endpointOf(url.pathname, request.method);
  const faults = faultsOf(request);
  const exchange = new Exchange(request, url.pathname, endpoint, faults ?? {});
  let response;
  try {
    response = await HANDLERS[endpoint](request, env, exchange, url);
  } catch (exc) { // a handler failure, as the contract's table names it
    exchange.errorCode = "INTERNAL_ERROR";
    console.error(`${request.method} ${url.pathname} failed: ${exc?.stack ?? exc}`);
    response = error(500, "INTERNAL_ERROR", "Internal server error");
  }
  finish(exchange, response.status, env, ctx);
  return request.method === "HEAD" && response.status !== 101 ? headOf(response) : response;
}

/** The fault hook's onInjected: the hook's own answers are written as the worker's. */
export function observeInjected(injected, request, env, ctx) {
  const url = new URL(request.url);
  if (request.method === "OPTIONS" || url.pathname.startsWith(ADMIN_PREFIX)) return;
  const exchange = new Exchange(request, url.pathname, injected.endpoint, { receivedAt: injected.receivedAt, profile: injected.profile });
  exchange.errorCode = injected.code;
  if (injected.kind === "provider_timeout") {
    const { key } = searchOf(injected.endpoint, url.searchParams);
    exchange.cacheEvents.push(["api_miss", key, injected.profile.provider_timeout_ms]);
  }
  if (injected.kind === "outage") console.error(`${request.method} ${url.pathname}: Worker threw exception (injected outage)`);
  finish(exchange, injected.status, env, ctx);
}
