/**
 * POST /v1/enrichment/batch (contract/bookstrack-api.md), as the embedded staging's routes.py
 * answers it: the client IP's rate limit first (10 per 60 s, counted by the JobProgress object named
 * "rate-limit:<ip>"), then the body (at most 512 KiB, JSON, validated as production validates it),
 * then the job, started in the JobProgress object named by the jobId, which issues the token.
 */

import { error, isoNow, rateLimited, success } from "./answers.mjs";

export const MAX_BODY_BYTES = 512 * 1024; // 100 books at the field limits fit in ~100 KiB
const MAX_JOB_ID = 128;
const MAX_BOOKS = 100;

/** The client's address as Cloudflare gives it (CF-Connecting-IP), else "unknown". */
export const clientIp = (request) => request.headers.get("cf-connecting-ip")?.trim() || "unknown";

const length = (text) => [...text].length; // in code points, as Python's len counts

class InvalidBatch extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** {jobId, books: [{title, author, isbn}]} of a valid body; throws InvalidBatch as production refuses. */
export function parseBatch(payload) {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new InvalidBatch("E_INVALID_REQUEST", "Request body must be a JSON object");
  }
  const { books, jobId } = payload;
  if (!Array.isArray(books)) throw new InvalidBatch("E_INVALID_REQUEST", "Invalid books array");
  if (typeof jobId !== "string" || !jobId.trim()) throw new InvalidBatch("E_INVALID_REQUEST", "Missing jobId");
  if (length(jobId) > MAX_JOB_ID) {
    throw new InvalidBatch("E_INVALID_REQUEST", `jobId exceeds maximum length of ${MAX_JOB_ID} characters`);
  }
  if (!books.length) throw new InvalidBatch("E_EMPTY_BATCH", "Empty books array");
  if (books.length > MAX_BOOKS) throw new InvalidBatch("E_BATCH_TOO_LARGE", `Batch size exceeds maximum of ${MAX_BOOKS} books`);
  const parsed = books.map((book, i) => {
    const isObject = typeof book === "object" && book !== null && !Array.isArray(book);
    if (!isObject || typeof book.title !== "string" || !book.title.trim()) {
      throw new InvalidBatch("E_INVALID_BOOK", `Invalid title for book at index ${i}`);
    }
    if (length(book.title) > 500) throw new InvalidBatch("E_TITLE_TOO_LONG", `Title exceeds maximum length of 500 characters at index ${i}`);
    const { author = null, isbn = null } = book;
    if (author !== null && typeof author !== "string") throw new InvalidBatch("E_INVALID_BOOK", `Invalid author for book at index ${i}`);
    if (author && length(author) > 300) throw new InvalidBatch("E_AUTHOR_TOO_LONG", `Author exceeds maximum length of 300 characters at index ${i}`);
    if (isbn !== null && typeof isbn !== "string") throw new InvalidBatch("E_INVALID_BOOK", `Invalid ISBN for book at index ${i}`);
    if (isbn && length(isbn) > 17) throw new InvalidBatch("E_ISBN_TOO_LONG", `ISBN exceeds maximum length of 17 characters at index ${i}`);
    return { title: book.title.trim(), author: author || null, isbn: isbn || null };
  });
  return { jobId, books: parsed };
}

/** The body, or null as soon as it grows past MAX_BODY_BYTES (never read whole). */
async function cappedBody(request) {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > MAX_BODY_BYTES) return null;
  if (!request.body) return new Uint8Array();
  const chunks = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

const stubOf = (env, name) => env.JOB_PROGRESS.get(env.JOB_PROGRESS.idFromName(name));

/** The job's faults from the profile in force: it fails as often as the version fails requests with a 5xx. */
const jobFaults = (profile) => ({
  failRate: profile ? profile.error_rate * profile.share_5xx : 0,
  providerTimeouts: profile ? profile.provider_timeouts : 0,
});

export async function batch(request, env, exchange) {
  const ip = clientIp(request);
  const decision = await stubOf(env, `rate-limit:${ip}`).rateLimit(Date.now());
  if (!decision.allowed) {
    exchange.errorCode = "RATE_LIMIT_EXCEEDED";
    return rateLimited(decision.retryAfter, decision.limit, decision.resetAtMs, ip);
  }
  const refuse = (status, code, message, details) => {
    exchange.errorCode = code;
    return error(status, code, message, details);
  };
  const body = await cappedBody(request);
  if (body === null) {
    return refuse(413, "E_PAYLOAD_TOO_LARGE", `Request body exceeds the limit of ${MAX_BODY_BYTES} bytes`, { limitBytes: MAX_BODY_BYTES });
  }
  let payload;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (exc) {
    return refuse(400, "E_INVALID_REQUEST", `Request body is not valid JSON: ${exc.message}`);
  }
  let parsed;
  try {
    parsed = parseBatch(payload);
  } catch (exc) {
    if (exc instanceof InvalidBatch) return refuse(400, exc.code, exc.message);
    throw exc;
  }
  const { token } = await stubOf(env, parsed.jobId).startJob({ ...parsed, faults: jobFaults(exchange.profile) });
  return success({ success: true, processedCount: 0, totalCount: parsed.books.length, token }, { timestamp: isoNow() }, 202);
}
