/**
 * The JobProgress Durable Object (binding JOB_PROGRESS). One class, two roles by name:
 *
 * "rate-limit:<ip>": the batch endpoint's rate limit of one client IP (contract, "POST
 * /v1/enrichment/batch"; the embedded staging's ratelimit.py): 10 requests per 60 s, a fixed window
 * that opens with the first request. RPC: rateLimit(nowMs) -> {allowed, remaining, limit,
 * resetAtMs, retryAfter}.
 *
 * "<jobId>": one enrichment job and its progress socket (contract, "WebSocket /ws/progress"; the
 * embedded staging's jobs.py and progress.py). RPC startJob({jobId, books, faults}) issues a token
 * valid for 2 hours (replacing an earlier one, and the job it started) and starts the job at once.
 * The job waits up to 5 s for the client's {"type": "ready"}, then enriches book after book (a
 * log-normal step, the whole job under 600 ms), sending job_progress messages, then writes
 * enrichment-results:<jobId> to KV and sends job_complete (close 1000 "Job completed"), or fails
 * (faults.failRate) with an error message (close 1011 "Job failed"). A message sent while no socket
 * is attached is lost: progress is never replayed. fetch() is the socket's handshake: a token not
 * issued for this job answers 401 "Unauthorized", an expired one 401 "Token expired" (with an
 * x-bookstrack-error-code header the worker turns into telemetry and removes), else 101. On the
 * socket the client may send only {"type": "ready"} (answered ready_ack); anything else closes it
 * with 1002. The server sends no heartbeats. Timers, not alarms: the job lasts seconds.
 */

import { DurableObject } from "cloudflare:workers";
import { drawMs, sleep, STEP_LATENCY } from "./latency.mjs";

export const RATE_LIMIT = 10;
export const RATE_WINDOW_MS = 60_000;
const PIPELINE = "batch_enrichment";
const MESSAGE_VERSION = "1.0.0";
const TOKEN_LIFETIME_MS = 2 * 60 * 60 * 1000;
const READY_TIMEOUT_MS = 5000; // production waits 5 s for the client's ready, then goes on
const JOB_BUDGET_MS = 600;
export const RESULTS_PREFIX = "enrichment-results:";
const PROTOCOL_ERROR = 1002;
export const ERROR_CODE_HEADER = "x-bookstrack-error-code";

/** Python's json.dumps of a flat object (", " and ": " separators, non-ASCII escaped), as jobs.py writes KV. */
export function pythonDumps(object) {
  const ascii = (text) => text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `{${Object.entries(object).map(([k, v]) => `${ascii(JSON.stringify(k))}: ${ascii(JSON.stringify(v))}`).join(", ")}}`;
}

/** Python's repr of a string, as the job's error message quotes a title. */
export function pythonRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = [...text].map((c) => {
    if (c === "\\" || c === quote) return `\\${c}`;
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    const code = c.codePointAt(0);
    if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, "0")}`;
    return c;
  });
  return `${quote}${escaped.join("")}${quote}`;
}

function isReady(data) {
  if (typeof data !== "string") return false;
  try {
    const message = JSON.parse(data);
    return typeof message === "object" && message !== null && !Array.isArray(message) && message.type === "ready";
  } catch {
    return false;
  }
}

const refusal = (text, code) =>
  new Response(text, { status: 401, headers: { "content-type": "text/plain; charset=utf-8", "access-control-allow-origin": "*", [ERROR_CODE_HEADER]: code } });

export class JobProgress extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.window = null; // rate-limit role: {count, resetAtMs}
    this.job = null; // job role: the job in force
    this.socket = null; // the attached client, if any
  }

  // --- rate-limit role --------------------------------------------------------------------------
  rateLimit(nowMs) {
    if (this.window === null || nowMs >= this.window.resetAtMs) this.window = { count: 0, resetAtMs: nowMs + RATE_WINDOW_MS };
    const { resetAtMs } = this.window;
    if (this.window.count >= RATE_LIMIT) {
      return { allowed: false, remaining: 0, limit: RATE_LIMIT, resetAtMs, retryAfter: Math.max(1, Math.ceil((resetAtMs - nowMs) / 1000)) };
    }
    this.window.count += 1;
    return { allowed: true, remaining: RATE_LIMIT - this.window.count, limit: RATE_LIMIT, resetAtMs, retryAfter: 0 };
  }

  // --- job role ----------------------------------------------------------------------------------
  async startJob({ jobId, books, faults }) {
    const token = crypto.randomUUID();
    const issued = { token, expiresAt: Date.now() + TOKEN_LIFETIME_MS };
    await this.ctx.storage.put("issued", issued); // a token outlives an evicted object
    let markReady;
    const ready = new Promise((resolve) => { markReady = resolve; });
    this.job = { jobId, books, faults, issued, ready, markReady, status: "pending" };
    this.run(this.job).catch((exc) => console.error(`job ${jobId} stopped: ${exc}`));
    return { token };
  }

  message(kind, payload) {
    return {
      type: kind, jobId: this.job?.jobId ?? this.jobId, pipeline: PIPELINE, timestamp: Date.now(), version: MESSAGE_VERSION,
      payload: { type: kind, ...payload },
    };
  }

  /** Hand a message (and then a close) to the attached client, if any: nothing is kept for a later one. */
  deliver(message, close = null) {
    const socket = this.socket;
    if (socket === null) return;
    try {
      if (message) socket.send(JSON.stringify(message));
      if (close) {
        this.socket = null;
        socket.close(...close);
      }
    } catch (exc) {
      if (this.socket === socket) this.socket = null; // the client went away while we were sending
    }
  }

  async run(job) {
    const started = Date.now();
    const current = () => this.job === job;
    await Promise.race([job.ready, sleep(READY_TIMEOUT_MS)]);
    if (!current()) return; // replaced by a newer batch for this jobId
    const { books, faults } = job;
    const total = books.length;
    job.status = "running";
    const failAt = faults.failRate > 0 && Math.random() < faults.failRate ? Math.floor(Math.random() * total) : null;
    try {
      this.deliver(this.message("job_progress", {
        progress: 0.0, status: `Starting enrichment of ${total} books`, processedCount: 0, currentItem: books[0].title,
      }));
      const stepCap = JOB_BUDGET_MS / Math.max(total, 1);
      let successes = 0;
      for (const [index, book] of books.entries()) {
        await sleep(Math.min(drawMs(STEP_LATENCY), stepCap));
        if (!current()) return;
        if (index === failAt) throw new Error(`Enrichment provider failed while enriching ${pythonRepr(book.title)}`);
        const enriched = !(faults.providerTimeouts > 0 && Math.random() < faults.providerTimeouts);
        successes += enriched ? 1 : 0;
        const processed = index + 1;
        this.deliver(this.message("job_progress", {
          progress: Math.round((processed / total) * 10_000) / 10_000,
          status: `Enriching (${processed}/${total}): ${book.title}${enriched ? "" : " [failed]"}`,
          processedCount: processed, currentItem: book.title,
        }));
      }
      const duration = Date.now() - started;
      const resourceId = `${RESULTS_PREFIX}${job.jobId}`;
      await this.env.KV.put(resourceId, pythonDumps({ jobId: job.jobId, totalProcessed: total, successCount: successes }));
      if (!current()) return;
      job.status = "complete";
      this.deliver(this.message("job_complete", {
        pipeline: PIPELINE,
        summary: { totalProcessed: total, successCount: successes, failureCount: total - successes, duration, resourceId },
      }), [1000, "Job completed"]);
    } catch (exc) { // production: any failure of the job -> sendError
      if (!current()) return;
      job.status = "failed";
      this.deliver(this.message("error", { code: "E_BATCH_PROCESSING_FAILED", message: exc.message, retryable: true }),
        [1011, "Job failed"]);
    }
  }

  // --- the progress socket's handshake --------------------------------------------------------------
  async fetch(request) {
    const params = new URL(request.url).searchParams;
    const token = params.getAll("token").at(-1);
    this.jobId = params.getAll("jobId").at(-1); // the object's name (the last jobId, as the worker reads it)
    const issued = this.job?.issued ?? (await this.ctx.storage.get("issued"));
    if (!issued || !token || token !== issued.token) return refusal("Unauthorized", "UNAUTHORIZED");
    if (Date.now() > issued.expiresAt) return refusal("Token expired", "TOKEN_EXPIRED");
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    this.socket = server;
    server.addEventListener("message", (event) => this.onMessage(server, event.data));
    server.addEventListener("close", (event) => {
      if (this.socket === server) this.socket = null;
      try {
        server.close(event.code === 1005 || event.code === 1006 ? 1000 : event.code, "");
      } catch {
        // already closed
      }
    });
    server.addEventListener("error", () => {
      if (this.socket === server) this.socket = null;
    });
    return new Response(null, { status: 101, webSocket: client });
  }

  onMessage(server, data) {
    if (!isReady(data)) {
      if (this.socket === server) this.socket = null;
      try {
        server.close(PROTOCOL_ERROR, 'Invalid message: only {"type": "ready"} is accepted');
      } catch {
        // already closed
      }
      return;
    }
    // an object restarted since the job (a deployment, an eviction) has its token but not the job: the
    // socket still answers ready with ready_ack (connectivity), it only has no progress left to send
    this.job?.markReady();
    try {
      server.send(JSON.stringify(this.message("ready_ack", {})));
    } catch {
      // the client went away
    }
  }
}
