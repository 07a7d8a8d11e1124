/**
 * The worker's edge cache of search answers, on the Workers Cache API (caches.default), with the
 * embedded staging's rules (staging/bookstrack/cache.py; contract: "cached", "cacheSource"):
 * an entry is fresh for ttlS seconds (EDGE_FRESH, tier event edge_hit_fresh); for staleS seconds
 * more it is served stale (EDGE_STALE, edge_hit_stale) and stored again, as stale-while-revalidate
 * does; past both it is gone. The stored time travels in a header of the cached response, so every
 * isolate of the colo reads the same age. A cache error counts as a miss, never as a failure.
 */

const ORIGIN = "https://edge-cache.bookstrack.invalid/";
export const EDGE_TTL_S = 300;
export const EDGE_STALE_S = 300;

const entryRequest = (key) => new Request(ORIGIN + encodeURIComponent(key));

/** The cache's lifetimes from the optional vars EDGE_TTL_S and EDGE_STALE_S (seconds). */
export function lifetimes(env) {
  const read = (name, fallback) => {
    const value = Number(env[name]);
    return env[name] !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  return { ttlS: read("EDGE_TTL_S", EDGE_TTL_S), staleS: read("EDGE_STALE_S", EDGE_STALE_S) };
}

/** {answer, source, event} for a hit, or null on a miss. answer: {data, provider}. */
export async function lookup(key, { ttlS, staleS }, now = Date.now()) {
  try {
    const found = await caches.default.match(entryRequest(key));
    if (!found) return null;
    const ageS = (now - Number(found.headers.get("x-stored-at"))) / 1000;
    const answer = await found.json();
    if (ageS < ttlS) return { answer, source: "EDGE_FRESH", event: "edge_hit_fresh" };
    if (ageS < ttlS + staleS) {
      await store(key, answer, { ttlS, staleS }, now); // served stale, revalidated: fresh again
      return { answer, source: "EDGE_STALE", event: "edge_hit_stale" };
    }
    await caches.default.delete(entryRequest(key));
  } catch (exc) {
    console.warn(`edge cache lookup of ${key} failed: ${exc}`);
  }
  return null;
}

export async function store(key, answer, { ttlS, staleS }, now = Date.now()) {
  const maxAge = Math.max(1, Math.ceil(ttlS + staleS));
  const response = new Response(JSON.stringify(answer), {
    headers: { "content-type": "application/json", "cache-control": `public, max-age=${maxAge}`, "x-stored-at": String(now) },
  });
  try {
    await caches.default.put(entryRequest(key), response);
  } catch (exc) {
    console.warn(`edge cache store of ${key} failed: ${exc}`);
  }
}
