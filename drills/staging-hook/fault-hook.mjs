/**
 * The staging hook: lets the real BooksTrack staging worker act out a drill's fault profile, as the
 * embedded staging does natively (src/bookstrack_rollback/staging/bookstrack/faults.py). A plain ES
 * module without dependencies; it runs in Cloudflare Workers and in Node 20.
 *
 * Wiring (the worker's entry module):
 *
 *     import { withFaultProfile } from "./fault-hook.mjs";
 *     export default { fetch: withFaultProfile(app.fetch) };
 *
 * The handler is called as handler(request, env, ctx): pass a bound function, e.g.
 * withFaultProfile((request, env, ctx) => worker.fetch(request, env, ctx)).
 *
 * Bindings: the FAULT_PROFILE variable (plain text, the profile's JSON; the drill's test change sets
 * it) and the KV namespace of the runtime flag, bound as KV (options.kvBinding names another
 * binding), holding the key "__staging/runtime-fault-profile" (a fault a rollback must not remove).
 *
 * On every request the deployed profile and the runtime profile are composed as compose_profiles
 * does (src/bookstrack_rollback/faults.py), then applied in the embedded staging's order:
 *   outage             the request throws, as a crashed worker does (Cloudflare answers its 1101
 *                      page), /health included;
 *   latency            an awaited log-normal delay (p50_ms, p95_ms) before the handler runs; an
 *                      endpoint's own entry, else "*" for the API endpoints (never /health);
 *   ws_failure_rate    a /ws/progress request with Upgrade: websocket and a jobId answers 500;
 *   error_rate         API requests answer the error envelope: 500 INTERNAL_ERROR (share_5xx),
 *                      else 400 INVALID_QUERY, without calling the handler;
 *   provider_timeouts  a search with valid parameters waits provider_timeout_ms, then answers 200
 *                      with empty lists and provider "none", as production does when every
 *                      provider times out;
 *   cache_off          the handler gets a shallow copy of env with __FAULT_CACHE_OFF = true; the
 *                      worker must then neither read nor write its edge cache;
 *   duration_s         a profile stops by itself duration_s after the first request of this
 *                      isolate that saw its text (a new isolate starts the clock again);
 *   data_loss          the listed keys are deleted through the KV binding, once per profile text
 *                      and isolate, when a profile carrying them is first seen (before anything
 *                      else, an outage included); the drill restores its canaries itself.
 * Endpoints by path: GET or HEAD /health, /v1/search/title, /v1/search/isbn, /v1/search/advanced;
 * POST /v1/enrichment/batch; /ws/progress (any method); anything else is "unknown" and only an
 * outage touches it. Out of scope: quirks (REALITY.md's telemetry) are left to a worker that wants
 * them (faultsOf below).
 *
 * A worker that wants to act out more (the reference worker, drills/reference-worker/, does) has
 * three seams, none of which changes what a plain worker sees:
 *   faultsOf(request)        for a request the hook handed over while a profile was set: the
 *                            composed profile in force, when the hook received the request
 *                            (receivedAt, ms) and the latency it injected (delayMs); undefined
 *                            when the hook was inert;
 *   options.onInjected       called as onInjected(injected, request, env, ctx) for every answer
 *                            the hook gives itself (and just before an outage throws), so that the
 *                            worker's telemetry counts it: injected = {kind ("outage", "unusable",
 *                            "ws_failure", "error", "provider_timeout"), endpoint, status, code,
 *                            profile, receivedAt, delayMs}; an observer that throws is ignored;
 *   options.delegate         ["provider_timeouts"]: the hook does not answer provider timeouts;
 *                            the worker acts them out from faultsOf(request).profile (after its
 *                            own cache, as the embedded staging does).
 *
 * Differences from the embedded staging: provider timeouts do not look at the worker's edge cache
 * first unless delegated (the embedded staging answers a cache hit); injected batch errors come
 * before the worker's rate limit (the embedded staging answers 429 first); an outage throws on
 * OPTIONS too; the runtime flag is seen up to runtimeFlagTtlMs (or the variable FAULT_FLAG_TTL_MS) late, plus KV's own propagation
 * delay (up to about 60 s); data loss happens on the first request that sees the profile, not at
 * the deployment, and once per text (a runtime flag set again with the same text deletes nothing
 * more in that isolate); parseFaultProfile refuses the non-standard JSON literals NaN and Infinity
 * that Python reads.
 *
 * A profile that cannot be used (invalid JSON, an unknown field, a rate out of range) does not
 * crash the worker: every request, /health included, answers 500 INTERNAL_ERROR in the error
 * envelope, its message naming the source and the field, so a broken test change is detected by
 * the drill instead of passing silently (the embedded staging crashes instead, with the 1101
 * page). An unusable runtime flag answers the same, naming the flag. A KV error counts as no
 * runtime fault.
 *
 * Production safety: with FAULT_PROFILE absent or empty and no runtime flag the hook is inert (the
 * handler gets the very request and env), at the cost of one KV read at most every
 * runtimeFlagTtlMs (5 s). A data_loss profile deletes real keys. Better still, do not deploy it to
 * production at all.
 */

export const RUNTIME_FLAG_KEY = "__staging/runtime-fault-profile";
export const ENDPOINTS = ["health", "title", "isbn", "advanced", "batch", "*"];
const API_ENDPOINTS = ["title", "isbn", "advanced", "batch"];
const SEARCH_ENDPOINTS = ["title", "isbn", "advanced"];
const QUIRKS = ["health_constant", "blob3_always_miss", "double1_500"];
const Z95 = 1.6448536269514722; // the standard normal's 95th percentile
const DEFAULTS = {
  error_rate: 0, share_5xx: 1, outage: false, latency: {}, ws_failure_rate: 0, cache_off: false,
  provider_timeouts: 0, provider_timeout_ms: 3000, data_loss: [], quirks: [], duration_s: null, label: "",
};
const healthy = () => ({ ...DEFAULTS, latency: {}, data_loss: [], quirks: [] });
const ROUTES = new Map([
  ["/health", ["health", ["GET", "HEAD"]]],
  ["/v1/search/title", ["title", ["GET", "HEAD"]]],
  ["/v1/search/isbn", ["isbn", ["GET", "HEAD"]]],
  ["/v1/search/advanced", ["advanced", ["GET", "HEAD"]]],
  ["/v1/enrichment/batch", ["batch", ["POST"]]],
  ["/ws/progress", ["ws", null]],
]);

// --- the profile as data -------------------------------------------------------------------------
const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);
const show = (value) => (value === undefined ? "undefined" : JSON.stringify(value));
const fail = (field, message) => Object.assign(new Error(message), { field });

/** A latency value as Python's float() reads it: a number, a boolean, or a decimal string. */
function toFloat(value, where) {
  if (typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value)) return Number(value);
  throw fail(where, `${where}: ${show(value)} is not a number`);
}

/** Parse a FAULT_PROFILE text as parse_fault_profile does; an empty text is the healthy profile. */
export function parseFaultProfile(text) {
  if (text == null || !String(text).trim()) return healthy();
  let data;
  try {
    data = JSON.parse(text);
  } catch (exc) {
    throw fail(null, `the fault profile is not valid JSON: ${exc.message}`);
  }
  if (!isObject(data)) throw fail(null, `a fault profile must be a JSON object, got ${Array.isArray(data) ? "list" : show(data)}`);
  const get = (name, fallback) => (Object.hasOwn(data, name) ? data[name] : fallback);
  const unknown = Object.keys(data).filter((name) => !Object.hasOwn(DEFAULTS, name)).sort();
  if (unknown.length) {
    throw fail(unknown.join(", "), `unknown fault profile field(s) ${unknown.join(", ")}; known: ${Object.keys(DEFAULTS).sort().join(", ")}`);
  }
  const latencyRaw = get("latency", {});
  if (!isObject(latencyRaw)) throw fail("latency", "latency must be an object of endpoint -> {p50_ms, p95_ms}");
  const latency = {};
  for (const [endpoint, spec] of Object.entries(latencyRaw)) {
    const where = `latency[${show(endpoint)}]`;
    if (!ENDPOINTS.includes(endpoint)) throw fail(where, `latency endpoint ${show(endpoint)} is not one of ${ENDPOINTS.join(", ")}`);
    if (!isObject(spec) || Object.keys(spec).sort().join() !== "p50_ms,p95_ms") {
      throw fail(where, `${where} must be {"p50_ms": n, "p95_ms": n}, got ${show(spec)}`);
    }
    const p50 = toFloat(spec.p50_ms, where);
    const p95 = toFloat(spec.p95_ms, where);
    if (!(p50 >= 0 && p95 >= p50 && Number.isFinite(p95))) {
      throw fail(where, `${where} needs 0 <= p50_ms <= p95_ms, got p50_ms=${p50}, p95_ms=${p95}`);
    }
    latency[endpoint] = { p50_ms: p50, p95_ms: p95 };
  }
  const dataLoss = get("data_loss", []);
  if (!Array.isArray(dataLoss) || !dataLoss.every((key) => typeof key === "string" && key)) {
    throw fail("data_loss", `data_loss must be a list of KV key names, got ${show(dataLoss)}`);
  }
  const quirks = get("quirks", []);
  if (!Array.isArray(quirks) || !quirks.every((quirk) => QUIRKS.includes(quirk))) {
    throw fail("quirks", `quirks must be a list drawn from ${QUIRKS.join(", ")}, got ${show(quirks)}`);
  }
  const duration = get("duration_s", null);
  if (duration !== null && !(typeof duration === "number" && duration > 0)) {
    throw fail("duration_s", `duration_s must be a positive number of seconds or null, got ${show(duration)}`);
  }
  const timeoutMs = get("provider_timeout_ms", 3000);
  if (!(typeof timeoutMs === "number" && timeoutMs >= 0)) {
    throw fail("provider_timeout_ms", `provider_timeout_ms must be a non-negative number, got ${show(timeoutMs)}`);
  }
  const label = get("label", "");
  if (typeof label !== "string") throw fail("label", `label must be a string, got ${show(label)}`);
  const rate = (name, fallback) => {
    const value = get(name, fallback);
    if (!(typeof value === "number" && value >= 0 && value <= 1)) throw fail(name, `${name} must be a number from 0 to 1, got ${show(value)}`);
    return value;
  };
  const flag = (name) => {
    const value = get(name, false);
    if (typeof value !== "boolean") throw fail(name, `${name} must be true or false, got ${show(value)}`);
    return value;
  };
  return {
    error_rate: rate("error_rate", 0), share_5xx: rate("share_5xx", 1), outage: flag("outage"), latency,
    ws_failure_rate: rate("ws_failure_rate", 0), cache_off: flag("cache_off"),
    provider_timeouts: rate("provider_timeouts", 0), provider_timeout_ms: timeoutMs, data_loss: [...dataLoss],
    quirks: [...new Set(quirks)].sort(), duration_s: duration, label,
  };
}

const isHealthy = (profile) =>
  Object.keys(DEFAULTS).every((name) => name === "label" || JSON.stringify(profile[name]) === JSON.stringify(DEFAULTS[name]));
const either = (a, b) => 1 - (1 - a) * (1 - b); // at least one of two independent failures

/** The latency a profile injects into an endpoint: its own entry, else "*" for API endpoints. */
export function effectiveLatency(profile, endpoint) {
  if (Object.hasOwn(profile.latency, endpoint)) return profile.latency[endpoint];
  return API_ENDPOINTS.includes(endpoint) ? profile.latency["*"] ?? null : null;
}

/** One profile acting as first and second together, as compose_profiles computes it. */
export function composeProfiles(first, second) {
  const label = [first.label, second.label].filter(Boolean).join(" + ");
  if (isHealthy(first)) return { ...second, duration_s: null, label };
  if (isHealthy(second)) return { ...first, duration_s: null, label };
  const errorRate = either(first.error_rate, second.error_rate);
  const injected5xx = first.error_rate * first.share_5xx + (1 - first.error_rate) * second.error_rate * second.share_5xx;
  const latency = {};
  for (const endpoint of [...new Set([...Object.keys(first.latency), ...Object.keys(second.latency)])].sort()) {
    const found = [effectiveLatency(first, endpoint), effectiveLatency(second, endpoint)].filter(Boolean);
    latency[endpoint] = { p50_ms: Math.max(...found.map((l) => l.p50_ms)), p95_ms: Math.max(...found.map((l) => l.p95_ms)) };
  }
  const timeouts = [first, second].filter((p) => p.provider_timeouts > 0).map((p) => p.provider_timeout_ms);
  return {
    error_rate: errorRate, share_5xx: errorRate > 0 ? Math.min(1, injected5xx / errorRate) : 1,
    outage: first.outage || second.outage, latency,
    ws_failure_rate: either(first.ws_failure_rate, second.ws_failure_rate), cache_off: first.cache_off || second.cache_off,
    provider_timeouts: either(first.provider_timeouts, second.provider_timeouts),
    provider_timeout_ms: timeouts.length ? Math.max(...timeouts) : first.provider_timeout_ms,
    data_loss: [...new Set([...first.data_loss, ...second.data_loss])],
    quirks: [...new Set([...first.quirks, ...second.quirks])].sort(), duration_s: null, label,
  };
}

// --- answers -------------------------------------------------------------------------------------
const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "access-control-allow-origin": "*" } });
const errorEnvelope = (status, code, message, timestamp, details = {}) =>
  json(status, { data: null, metadata: { timestamp }, error: { message, code, details } });

function drawLatencyMs({ p50_ms, p95_ms }, random) {
  if (p50_ms <= 0) return 0;
  if (p95_ms <= p50_ms) return p50_ms;
  const sigma = (Math.log(p95_ms) - Math.log(p50_ms)) / Z95;
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()); // Box-Muller
  return Math.exp(Math.log(p50_ms) + sigma * z);
}

/** A search the handler would not refuse with 400 (contract: the searches' parameters). */
function searchable(endpoint, params) {
  if (endpoint === "title") return Boolean(params.get("q")?.trim());
  if (endpoint === "isbn") return /^(\d{13}|\d{9}[\dX])$/.test((params.get("isbn") ?? "").toUpperCase().replace(/[^0-9X]/g, ""));
  return Boolean(params.get("title")?.trim() || params.get("author")?.trim());
}

// --- the wrapper ---------------------------------------------------------------------------------
/** A profile source (FAULT_PROFILE or the runtime flag): its text, parsed once, and since when it is seen. */
function source() {
  let seen = { text: null, profile: null, since: 0 };
  return (text, now) => {
    if (text !== seen.text) {
      let profile = null;
      try {
        profile = text && text.trim() ? parseFaultProfile(text) : null;
      } catch (exc) {
        profile = exc;
      }
      seen = { text, profile, since: now };
    }
    return seen;
  };
}

const live = ({ profile, since }, now) => profile.duration_s === null || now - since < profile.duration_s * 1000;

const DELEGABLE = ["provider_timeouts"];
const handedOver = new WeakMap(); // request -> {profile, receivedAt, delayMs}

/** What the hook decided for a request it handed to the handler while a profile was set (else undefined). */
export function faultsOf(request) {
  return handedOver.get(request);
}

/** Wrap a module worker's fetch(request, env, ctx) so that it acts out the fault profile in force. */
export function withFaultProfile(handler, options = {}) {
  const kvBinding = options.kvBinding ?? "KV";
  const ttlMs = options.runtimeFlagTtlMs ?? 5000;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const onInjected = options.onInjected ?? null;
  const delegate = options.delegate ?? [];
  const refused = delegate.filter((kind) => !DELEGABLE.includes(kind));
  if (refused.length) throw new Error(`withFaultProfile: cannot delegate ${refused.join(", ")}; only ${DELEGABLE.join(", ")}`);
  const deployed = source();
  const runtime = source();
  const flag = { text: null, readAt: -Infinity }; // the runtime flag, read at most once per ttlMs
  const lost = new Set(); // the profile texts whose data_loss this isolate has acted out

  async function runtimeText(env) {
    // FAULT_FLAG_TTL_MS (a variable) overrides the option: a staging drilled at a small time scale reads
    // the flag more often, so that a runtime fault set before a deploy is live before it
    const ttl = Number.isFinite(Number(env.FAULT_FLAG_TTL_MS)) && env.FAULT_FLAG_TTL_MS !== undefined
      ? Number(env.FAULT_FLAG_TTL_MS) : ttlMs;
    if (now() - flag.readAt < ttl) return flag.text;
    flag.readAt = now();
    try {
      const text = await env[kvBinding]?.get(RUNTIME_FLAG_KEY);
      flag.text = typeof text === "string" ? text : null;
    } catch {
      flag.text = null; // a KV error is no runtime fault
    }
    return flag.text;
  }

  /** Delete a profile's data_loss keys the first time this isolate sees its text; a KV error loses nothing. */
  async function loseData(seen, env) {
    const keys = seen.profile && !(seen.profile instanceof Error) ? seen.profile.data_loss : [];
    if (!keys.length || lost.has(seen.text)) return;
    lost.add(seen.text);
    const kv = env[kvBinding];
    await Promise.all(keys.map(async (key) => {
      try {
        await kv?.delete(key);
      } catch {
        // the key stays: a drill then sees no data loss, which it reports
      }
    }));
  }

  return async function fetch(request, env = {}, ctx) {
    const fromDeploy = deployed(typeof env.FAULT_PROFILE === "string" ? env.FAULT_PROFILE : "", now());
    const fromFlag = runtime(await runtimeText(env), now());
    if (fromDeploy.profile === null && fromFlag.profile === null) return handler(request, env, ctx);
    const started = now();
    const timestamp = () => new Date(now()).toISOString();
    const url = new URL(request.url);
    const route = ROUTES.get(url.pathname);
    const endpoint = route && (route[1] === null || route[1].includes(request.method)) ? route[0] : "unknown";
    let profile = null; // the composed profile, once both sources are usable
    let delayMs = 0;
    const injected = (kind, status, code, answer) => {
      if (onInjected) {
        try {
          onInjected({ kind, endpoint, status, code, profile, receivedAt: started, delayMs }, request, env, ctx);
        } catch {
          // an observer never changes the answer
        }
      }
      return answer;
    };
    await loseData(fromDeploy, env);
    await loseData(fromFlag, env);
    for (const [seen, where] of [[fromDeploy, "FAULT_PROFILE"], [fromFlag, "the runtime fault flag"]]) {
      if (seen.profile instanceof Error) {
        return injected("unusable", 500, "INTERNAL_ERROR",
          errorEnvelope(500, "INTERNAL_ERROR", `${where} cannot be used: ${seen.profile.message}`, timestamp(),
            { source: where, field: seen.profile.field }));
      }
    }
    profile = healthy();
    if (fromDeploy.profile && live(fromDeploy, started)) profile = fromDeploy.profile;
    if (fromFlag.profile && live(fromFlag, started)) profile = composeProfiles(profile, fromFlag.profile);

    if (profile.outage) {
      injected("outage", 500, "INTERNAL_ERROR", null);
      throw new Error("Worker threw exception (injected outage)");
    }
    const latency = effectiveLatency(profile, endpoint);
    delayMs = latency ? drawLatencyMs(latency, random) : 0;
    if (delayMs > 0) await sleep(delayMs);
    if (endpoint === "ws" && profile.ws_failure_rate > 0 && request.headers.get("upgrade")?.toLowerCase() === "websocket"
        && url.searchParams.get("jobId") && random() < profile.ws_failure_rate) {
      return injected("ws_failure", 500, "INTERNAL_ERROR", errorEnvelope(500, "INTERNAL_ERROR", "Internal server error", timestamp()));
    }
    if (API_ENDPOINTS.includes(endpoint) && profile.error_rate > 0 && random() < profile.error_rate) {
      return random() < profile.share_5xx
        ? injected("error", 500, "INTERNAL_ERROR", errorEnvelope(500, "INTERNAL_ERROR", "Internal server error", timestamp()))
        : injected("error", 400, "INVALID_QUERY", errorEnvelope(400, "INVALID_QUERY", "Invalid query parameters", timestamp()));
    }
    if (!delegate.includes("provider_timeouts") && SEARCH_ENDPOINTS.includes(endpoint) && profile.provider_timeouts > 0
        && searchable(endpoint, url.searchParams) && random() < profile.provider_timeouts) {
      await sleep(profile.provider_timeout_ms);
      return injected("provider_timeout", 200, "N/A", json(200, {
        data: { works: [], editions: [], authors: [] },
        metadata: { timestamp: timestamp(), processingTime: Math.round(delayMs + profile.provider_timeout_ms), provider: "none", cached: false },
      }));
    }
    handedOver.set(request, { profile, receivedAt: started, delayMs });
    return handler(request, profile.cache_off ? { ...env, __FAULT_CACHE_OFF: true } : env, ctx);
  };
}
