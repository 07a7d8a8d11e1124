/**
 * The three searches (contract/bookstrack-api.md, "GET /v1/search/title · isbn · advanced"), as the
 * embedded staging's routes.py and models.py answer them: validate, then the edge cache, then the
 * provider seam, then the cache again.
 *
 * The provider seam is the PROVIDER service binding: GET https://provider/search/<kind>?<query>
 * answers {"data": {works, editions, authors}, "provider": "google-books" | "openlibrary" | "isbndb"
 * | "none", "latencyMs": n}, latencyMs being the upstream time a real provider would have taken
 * (the fake provider reports it rather than spending it, as the embedded staging's searches do; it
 * counts in processingTime). A provider that fails, answers garbage or is missing gives what
 * production gives when every provider fails: 200, empty lists, provider "none" (not cached).
 *
 * Provider timeouts delegated by the hook (faultsOf(request).profile) are drawn after a cache miss:
 * the search waits provider_timeout_ms, then answers empty with provider "none".
 */

import { error, isoNow, success } from "./answers.mjs";
import { lifetimes, lookup, store } from "./edge-cache.mjs";
import { round3, sleep } from "./latency.mjs";

const EMPTY = () => ({ works: [], editions: [], authors: [] });
const PROVIDER_TIMEOUT_MS = 10_000; // ours has one (REALITY.md: production's has none)

/** The form a query takes in a cache key: lower case, single spaces, trimmed. */
export const fold = (text) => text.toLowerCase().split(/\s+/u).filter(Boolean).join(" ");

/** An ISBN with every character but digits and X removed (a lower-case x counts as X). */
export const normaliseIsbn = (raw) => raw.toUpperCase().replace(/[^0-9X]/g, "");
export const isValidIsbn = (isbn) => /^(\d{13}|\d{9}[\dX])$/.test(isbn);

/** A query parameter as Starlette reads it: the last value given, or "". */
export const param = (params, name) => params.getAll(name).at(-1) ?? "";

/**
 * What a search asks: {key, providerPath} for a valid one, {refusal: [status, code, message,
 * details]} for one the contract refuses with 400.
 */
export function searchOf(endpoint, params) {
  if (endpoint === "title") {
    const query = param(params, "q");
    if (!query.trim()) return { refusal: [400, "INVALID_QUERY", "Search query is required", { parameter: "q" }] };
    return { key: `search:title:${fold(query)}`, providerPath: `search/title?${new URLSearchParams({ q: query })}` };
  }
  if (endpoint === "isbn") {
    const raw = param(params, "isbn");
    if (!raw.trim()) return { refusal: [400, "INVALID_ISBN", "ISBN is required", { parameter: "isbn" }] };
    const isbn = normaliseIsbn(raw);
    if (!isValidIsbn(isbn)) {
      return { refusal: [400, "INVALID_ISBN", "Invalid ISBN format. Must be valid ISBN-10 or ISBN-13", { isbn: raw, normalized: isbn }] };
    }
    return { key: `search:isbn:${isbn}`, providerPath: `search/isbn?${new URLSearchParams({ isbn })}` };
  }
  const title = param(params, "title").trim();
  const author = param(params, "author").trim();
  if (!title && !author) {
    return { refusal: [400, "INVALID_QUERY", "At least one of title or author is required", { parameters: ["title", "author"] }] };
  }
  const query = new URLSearchParams();
  if (title) query.set("title", title);
  if (author) query.set("author", author);
  return { key: `search:advanced:title=${fold(title)}&author=${fold(author)}`, providerPath: `search/advanced?${query}` };
}

/** Ask the provider; {data, provider, latencyMs} or null when it failed (logged). */
async function askProvider(env, path) {
  if (!env.PROVIDER) {
    console.warn("no PROVIDER binding: every provider fails");
    return null;
  }
  try {
    const response = await env.PROVIDER.fetch(`https://provider/${path}`, { signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS) });
    if (!response.ok) {
      console.warn(`provider answered ${response.status} for ${path}`);
      return null;
    }
    const body = await response.json();
    const data = body?.data;
    if (!data || !["works", "editions", "authors"].every((name) => Array.isArray(data[name]))) {
      console.warn(`provider answered an unreadable body for ${path}`);
      return null;
    }
    return { data, provider: String(body.provider ?? "none"), latencyMs: Number(body.latencyMs) || 0 };
  } catch (exc) {
    console.warn(`provider failed for ${path}: ${exc}`);
    return null;
  }
}

const answer = (exchange, data, provider, cached, cacheSource) => {
  const metadata = { timestamp: isoNow(), processingTime: Math.round(exchange.processingMs()), provider, cached };
  if (cacheSource) metadata.cacheSource = cacheSource;
  return success(data, metadata);
};

/** One search request: the refusal, a cached answer, a provider timeout, or the provider's answer. */
export async function search(request, env, exchange, url) {
  const asked = searchOf(exchange.endpoint, url.searchParams);
  if (asked.refusal) {
    const [status, code, message, details] = asked.refusal;
    exchange.errorCode = code;
    return error(status, code, message, details);
  }
  const { key, providerPath } = asked;
  const cacheOn = env.__FAULT_CACHE_OFF !== true;
  const cacheLife = lifetimes(env);
  if (cacheOn) {
    const started = Date.now();
    const hit = await lookup(key, cacheLife);
    if (hit) {
      exchange.cacheStatus = "HIT";
      exchange.cacheEvents.push([hit.event, key, round3(Date.now() - started)]);
      return answer(exchange, hit.answer.data, hit.answer.provider, true, hit.source);
    }
  }
  const profile = exchange.profile;
  if (profile && profile.provider_timeouts > 0 && Math.random() < profile.provider_timeouts) {
    await sleep(profile.provider_timeout_ms);
    exchange.cacheEvents.push(["api_miss", key, round3(profile.provider_timeout_ms)]);
    console.warn(`All providers failed for ${key}: timed out after ${Math.round(profile.provider_timeout_ms)} ms`);
    return answer(exchange, EMPTY(), "none", false);
  }
  const upstream = await askProvider(env, providerPath);
  if (upstream === null) {
    exchange.cacheEvents.push(["api_miss", key, round3(Date.now() - exchange.receivedAt)]);
    return answer(exchange, EMPTY(), "none", false);
  }
  exchange.simulatedMs += upstream.latencyMs;
  exchange.cacheEvents.push(["api_miss", key, round3(upstream.latencyMs)]);
  if (cacheOn) await store(key, { data: upstream.data, provider: upstream.provider }, cacheLife);
  return answer(exchange, upstream.data, upstream.provider, false);
}
