/**
 * The embedded staging's Worker host: runs uploaded Worker versions in workerd, one Miniflare
 * instance (one workerd process) per version, so that a deployment or a rollback switches versions
 * without restarting the one that serves, and an old version's requests end on their own.
 *
 * Started by runtime.py; speaks JSON lines. On stdin, commands:
 *   {"id": n, "op": "start", "key": "<version id>", "worker": {...}}  -> {"id": n, "ok": true, "url", "startup_ms"}
 *   {"id": n, "op": "stop", "key": "<version id>"}                    -> {"id": n, "ok": true}
 *   {"id": n, "op": "ping"}                                           -> {"id": n, "ok": true}
 * A failure answers {"id": n, "ok": false, "error": "<sentence>"}. On stdout, besides the answers,
 * what the Workers write, batched every FLUSH_MS:
 *   {"event": "analytics", "points": [{"dataset", "index1", "blobs", "doubles", "at"}]}
 *   {"event": "tail", "key": "<version id>", "items": [<trace item>]}
 * When stdin ends (the staging stopped or died) every instance is disposed and the host exits.
 *
 * A version's "worker" spec: {modules: [{name, type, b64}], main, compatibilityDate,
 * compatibilityFlags, vars: {NAME: string | json}, kv: {NAME: namespaceId}, durableObjects:
 * {NAME: className}, analytics: {NAME: dataset}, services: {NAME: "staging" | "missing:<service>"},
 * staging: "127.0.0.1:<port>", objects: "<the staging's Durable Object storage directory>"}. Each instance runs the version's own Worker (the entry: a thrown
 * exception comes back as Miniflare's stack, which the staging's proxy turns into the 1101 page) and:
 *   kv        the KV binding, backed by the staging's KV over its /__staging/runtime/kv routes (values
 *             only: put's expiration and metadata are not kept, getWithMetadata answers metadata null);
 *   analytics the Analytics Engine binding: writeDataPoint writes the point into the request's trace;
 *   tail      the tail consumer: the version's trace items (requests, console.log, exceptions), which
 *             this host splits into the data points and the traces it hands on;
 *   provider  a service binding to the staging (its /__staging/provider routes).
 */

import { createInterface } from "node:readline";
import { Log, Miniflare } from "miniflare";

const FLUSH_MS = 50;
const COMPATIBILITY_DATE = "2025-09-01";
const CF = { colo: "SJC", country: "US", httpProtocol: "HTTP/1.1", asn: 64512, clientTcpRtt: 0 };

const KV = `
const enc = encodeURIComponent;
async function call(env, method, path, body) {
  const response = await env.STAGING.fetch("http://staging/__staging/runtime/kv/" + enc(env.namespace) + path,
    { method, body });
  if (response.status >= 500) throw new Error("KV " + method + " failed: " + response.status + " " + await response.text());
  return response;
}
async function decode(response, type) {
  if (type === "json") return response.json();
  if (type === "arrayBuffer") return response.arrayBuffer();
  if (type === "stream") return response.body;
  return response.text();
}
const typeOf = (options) => (typeof options === "string" ? options : options?.type) ?? "text";
class StagingKV {
  constructor(env) { this.env = env; }
  async get(key, options) {
    if (Array.isArray(key)) {
      const found = new Map();
      for (const one of key) found.set(one, await this.get(one, options));
      return found;
    }
    const response = await call(this.env, "GET", "/values/" + enc(key));
    if (response.status === 404) return null;
    return decode(response, typeOf(options));
  }
  async getWithMetadata(key, options) {
    return { value: await this.get(key, options), metadata: null, cacheStatus: null };
  }
  async put(key, value) {
    if (typeof key !== "string" || key === "") throw new TypeError("KV put() requires a non-empty key");
    await call(this.env, "PUT", "/values/" + enc(key), value);
  }
  async delete(key) {
    await call(this.env, "DELETE", "/values/" + enc(key));
  }
  async list(options = {}) {
    const query = new URLSearchParams();
    if (options.prefix) query.set("prefix", options.prefix);
    if (options.limit) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    const response = await call(this.env, "GET", "/keys?" + query);
    return { ...(await response.json()), cacheStatus: null };
  }
}
export default (env) => new StagingKV(env);`;

// A data point travels in the request's own trace: workerd delivers every trace to the tail consumer,
// where a fetch started by writeDataPoint would be cancelled once the response is sent (points lost).
const POINT_MARK = "\u0000bookstrack-staging:analytics";
const ANALYTICS = `
class StagingDataset {
  constructor(env) { this.env = env; }
  writeDataPoint(point = {}) {
    const blobs = (point.blobs ?? []).map((b) => (b === null || b === undefined ? "" : b instanceof ArrayBuffer ? new TextDecoder().decode(b) : String(b)));
    const doubles = (point.doubles ?? []).map(Number);
    const indexes = point.indexes ?? [];
    if (blobs.length > 20 || doubles.length > 20) throw new RangeError("a data point has at most 20 blobs and 20 doubles");
    if (indexes.length > 1) throw new RangeError("a data point has at most 1 index");
    const index1 = indexes.length ? String(indexes[0]) : "";
    console.log(${JSON.stringify(POINT_MARK)}, JSON.stringify({ dataset: this.env.dataset, index1, blobs, doubles }));
  }
}
export default (env) => new StagingDataset(env);`;

const TAIL = `
export default {
  async tail(items, env) {
    await env.HOST.fetch("http://host/tail", { method: "POST", body: JSON.stringify(items) });
  },
};`;

const PROVIDER = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return env.STAGING.fetch(new Request("http://staging/__staging/provider" + url.pathname + url.search, request));
  },
};`;

const MISSING = `
export default {
  async fetch(request, env) {
    return new Response("service " + env.service + " is not available in the embedded staging", { status: 502 });
  },
};`;

const instances = new Map(); // key -> Miniflare
const pending = { points: [], tails: new Map() };
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

function flush() {
  if (pending.points.length) {
    send({ event: "analytics", points: pending.points });
    pending.points = [];
  }
  for (const [key, items] of pending.tails) send({ event: "tail", key, items });
  pending.tails.clear();
}
setInterval(flush, FLUSH_MS).unref();

const MODULE_TYPES = { ".js": "ESModule", ".mjs": "ESModule", ".cjs": "CommonJS", ".json": "Text",
  ".txt": "Text", ".html": "Text", ".wasm": "CompiledWasm", ".bin": "Data" };

function modulesOf(spec) {
  const modules = [];
  for (const module of spec.modules) {
    const extension = module.name.includes(".") ? module.name.slice(module.name.lastIndexOf(".")) : "";
    if (extension === ".map") continue; // source maps are not code
    const type = module.type ?? MODULE_TYPES[extension] ?? "Data";
    const contents = Buffer.from(module.b64, "base64");
    modules.push({ type, path: "/version/" + module.name, contents: type === "ESModule" || type === "CommonJS" || type === "Text" ? contents.toString("utf8") : contents });
  }
  const main = modules.findIndex((module) => module.path === "/version/" + spec.main);
  if (main < 0) throw new Error(`the main module ${JSON.stringify(spec.main)} is not among the uploaded modules`);
  modules.unshift(...modules.splice(main, 1)); // Miniflare runs the first module
  return modules;
}

function optionsFor(key, spec, log) {
  const staging = { external: { address: spec.staging, http: {} } };
  const host = async (request) => {
    const items = await request.json();
    const traces = pending.tails.get(key) ?? [];
    for (const item of items) {
      const logs = [];
      for (const log of item.logs ?? []) {
        if (log.message?.[0] === POINT_MARK) pending.points.push({ ...JSON.parse(log.message[1]), at: log.timestamp / 1000 });
        else logs.push(log);
      }
      traces.push({ ...item, logs });
    }
    pending.tails.set(key, traces);
    return new Response(null, { status: 204 });
  };
  const wrapped = {};
  for (const [name, namespace] of Object.entries(spec.kv ?? {})) wrapped[name] = { scriptName: "kv", bindings: { namespace } };
  for (const [name, dataset] of Object.entries(spec.analytics ?? {})) wrapped[name] = { scriptName: "analytics", bindings: { dataset } };
  const services = {};
  const extra = [];
  for (const [name, target] of Object.entries(spec.services ?? {})) {
    if (target === "staging") services[name] = "provider";
    else {
      const worker = `missing-${extra.length}`;
      extra.push({ name: worker, modules: true, script: MISSING, bindings: { service: target.replace(/^missing:/, "") } });
      services[name] = worker;
    }
  }
  return {
    log,
    handleRuntimeStdio(stdout, stderr) {
      stdout.on("data", () => {}); // console.log reaches the tail, not this host's output
      stderr.on("data", (chunk) => log.log(String(chunk).trim()));
    },
    host: "127.0.0.1",
    port: 0,
    cf: CF, // never fetched from workers.cloudflare.com
    // one storage for every version: a deployment changes the code an object runs, never its data
    // (Cloudflare has one namespace per class); the serving version's workerd reloads an object from it
    durableObjectsPersist: spec.objects || false,
    workers: [
      {
        name: "version",
        modules: modulesOf(spec),
        modulesRoot: "/version",
        compatibilityDate: spec.compatibilityDate || COMPATIBILITY_DATE,
        compatibilityFlags: spec.compatibilityFlags ?? [],
        bindings: spec.vars ?? {},
        wrappedBindings: wrapped,
        durableObjects: spec.durableObjects ?? {},
        serviceBindings: services,
        tails: ["tail"],
      },
      { name: "kv", modules: true, script: KV, serviceBindings: { STAGING: staging } },
      { name: "analytics", modules: true, script: ANALYTICS },
      { name: "tail", modules: true, script: TAIL, compatibilityDate: COMPATIBILITY_DATE, serviceBindings: { HOST: host } },
      { name: "provider", modules: true, script: PROVIDER, compatibilityDate: COMPATIBILITY_DATE, serviceBindings: { STAGING: staging } },
      ...extra,
    ],
  };
}

/** Miniflare's log: warnings and errors kept for the error sentence instead of printed. */
class QuietLog extends Log {
  constructor() {
    super(2 /* WARN */, { prefix: "" });
    this.lines = [];
  }
  log(message) {
    this.lines.push(String(message).replace(/\x1b\[[0-9;]*m/g, ""));
    this.lines.splice(0, Math.max(0, this.lines.length - 40));
  }
}

async function start(key, spec) {
  if (instances.has(key)) return { url: instances.get(key).url, startup_ms: 0 };
  const log = new QuietLog();
  const started = performance.now();
  const mf = new Miniflare(optionsFor(key, spec, log));
  let url;
  try {
    url = await mf.ready;
  } catch (error) {
    await mf.dispose().catch(() => {});
    // workerd's own sentence (e.g. "Uncaught SyntaxError: ... at index.js:1:24") says more than Miniflare's
    const detail = log.lines.join("\n").split("\n").map((line) => line.replace(/^service core:user:version: /, "").trim())
      .filter((line) => line && !line.startsWith("[")).slice(-4).join("; ");
    throw new Error(detail || String(error?.message ?? error));
  }
  const startupMs = Math.round(performance.now() - started);
  instances.set(key, { mf, url: url.href.replace(/\/$/, "") });
  return { url: instances.get(key).url, startup_ms: startupMs };
}

async function stop(key) {
  const instance = instances.get(key);
  instances.delete(key);
  if (instance) await instance.mf.dispose();
}

async function handle(command) {
  const { id, op } = command;
  try {
    if (op === "start") send({ id, ok: true, ...(await start(command.key, command.worker)) });
    else if (op === "stop") send({ id, ok: true, ...(await stop(command.key)) });
    else if (op === "ping") send({ id, ok: true });
    else send({ id, ok: false, error: `unknown command ${JSON.stringify(op)}` });
  } catch (error) {
    send({ id, ok: false, error: String(error?.message ?? error).replace(/\s+/g, " ").trim() });
  }
}

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  flush();
  await Promise.allSettled([...instances.keys()].map(stop));
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    send({ ok: false, error: `not a JSON command: ${line.slice(0, 80)}` });
    return;
  }
  handle(command);
});
lines.on("close", shutdown);
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
send({ event: "ready", node: process.version });
