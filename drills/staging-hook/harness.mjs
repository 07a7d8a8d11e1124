/**
 * Runs fault-hook.mjs in Node for selftests/test_staging_hook.py: reads one JSON case on stdin,
 * prints one JSON result on stdout. Randomness is a seeded mulberry32, time a fake clock that only
 * the fake sleep moves (and a step's advanceMs), so every run is deterministic and never waits.
 *
 * Cases:
 *   {"mode": "parse", "texts": [...]}        -> [{"ok": true, "profile"} | {"ok": false, "message", "field"}]
 *   {"mode": "compose", "pairs": [[a, b]]}   -> [composeProfiles(parseFaultProfile(a), parseFaultProfile(b))]
 *   {"mode": "wrap", "options": {...}}       -> {"ok": true} | {"ok": false, "message"} (options refused)
 *   {"mode": "requests", "seed", "faultProfile", "flag", "kvThrows", "options", "observe",
 *    "steps": [{"advanceMs", "setFlag", "newIsolate", "requests": [{"method", "path", "headers", "repeat"}]}]}
 *     -> {"steps": [[{"status", "body", "threw", "sleeps", "handled", "same", "envSame", "cacheOff",
 *                     "cors", "faults", "injected"}]], "kvReads", "kvDeletes", "envTouched"}
 *   "faults" is what faultsOf(request) told the handler (null when the hook was inert); with
 *   "observe": true the hook's onInjected observer records each of its own answers in "injected"
 *   (else null); "newIsolate" wraps the handler again (fresh hook state, as a new isolate has);
 *   "kvDeletes" lists the keys deleted through the KV binding, in order.
 */

import { composeProfiles, faultsOf, parseFaultProfile, RUNTIME_FLAG_KEY, withFaultProfile } from "./fault-hook.mjs";

function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseOutcome(text) {
  try {
    return { ok: true, profile: parseFaultProfile(text) };
  } catch (exc) {
    return { ok: false, message: exc.message, field: exc.field ?? null };
  }
}

function wrapOutcome(options) {
  try {
    withFaultProfile(async () => new Response("ok"), options);
    return { ok: true };
  } catch (exc) {
    return { ok: false, message: exc.message };
  }
}

async function runRequests(spec) {
  let clock = Date.UTC(2026, 0, 5, 10, 0, 0);
  let sleeps = [];
  let kvReads = 0;
  const kvDeletes = [];
  let flag = spec.flag ?? null;
  const kv = {
    async get(key) {
      kvReads += 1;
      if (spec.kvThrows) throw new Error("KV GET failed: 503 Service Unavailable");
      return key === RUNTIME_FLAG_KEY ? flag : null;
    },
    async delete(key) {
      kvDeletes.push(key);
      if (spec.kvThrows) throw new Error("KV DELETE failed: 503 Service Unavailable");
    },
  };
  const env = { KV: kv };
  if (spec.faultProfile != null) env.FAULT_PROFILE = spec.faultProfile;
  let last = null;
  let injected = null;
  const handler = async (request, handlerEnv) => {
    const response = new Response(JSON.stringify({ data: { handler: true }, metadata: { timestamp: "2026-01-05T10:00:00.000Z" } }),
      { status: 200, headers: { "content-type": "application/json" } });
    last = { response, request, env: handlerEnv, faults: faultsOf(request) ?? null };
    return response;
  };
  const random = mulberry32(spec.seed ?? 1);
  const wrap = () => withFaultProfile(handler, {
    ...spec.options,
    ...(spec.observe ? { onInjected: (answer) => { injected = answer; } } : {}),
    random,
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
  });
  let fetch = wrap();
  const results = [];
  for (const step of spec.steps) {
    clock += step.advanceMs ?? 0;
    if (Object.hasOwn(step, "setFlag")) flag = step.setFlag;
    if (step.newIsolate) fetch = wrap();
    const records = [];
    for (const { method = "GET", path, headers = {}, repeat = 1 } of step.requests) {
      for (let i = 0; i < repeat; i += 1) {
        const request = new Request(`https://staging-api.oooefam.net${path}`, { method, headers });
        sleeps = [];
        last = null;
        injected = null;
        const record = { path, status: null, body: null, threw: null, handled: false, same: false, envSame: false, cacheOff: false, cors: null };
        try {
          const response = await fetch(request, env, {});
          const text = await response.text();
          record.status = response.status;
          record.cors = response.headers.get("access-control-allow-origin");
          record.body = (response.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text;
          record.handled = last !== null;
          record.same = last !== null && last.response === response && last.request === request;
          record.envSame = last !== null && last.env === env;
          record.cacheOff = last !== null && last.env.__FAULT_CACHE_OFF === true;
        } catch (exc) {
          record.threw = String(exc.message);
          record.handled = last !== null;
        }
        record.sleeps = sleeps;
        record.faults = last?.faults ?? null;
        record.injected = injected;
        records.push(record);
      }
    }
    results.push(records);
  }
  return { steps: results, kvReads, kvDeletes, envTouched: Object.keys(env).sort().join() !== ["KV", ...(spec.faultProfile != null ? ["FAULT_PROFILE"] : [])].sort().join() };
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const spec = JSON.parse(input);
let output;
if (spec.mode === "parse") output = spec.texts.map(parseOutcome);
else if (spec.mode === "wrap") output = wrapOutcome(spec.options);
else if (spec.mode === "compose") output = spec.pairs.map(([a, b]) => composeProfiles(parseFaultProfile(a), parseFaultProfile(b)));
else output = await runRequests(spec);
process.stdout.write(JSON.stringify(output));
