/**
 * Latency distributions the worker draws from, with the embedded staging's figures
 * (staging/bookstrack/models.py and jobs.py): a log-normal given by its median and 95th percentile.
 */

const Z95 = 1.6448536269514722; // the standard normal's 95th percentile

export const STEP_LATENCY = { p50_ms: 25, p95_ms: 80 }; // one book of an enrichment job

/** A log-normal draw (ms) whose median is p50_ms and 95th percentile p95_ms. */
export function drawMs({ p50_ms, p95_ms }, random = Math.random) {
  if (p50_ms <= 0) return 0;
  if (p95_ms <= p50_ms) return p50_ms;
  const sigma = (Math.log(p95_ms) - Math.log(p50_ms)) / Z95;
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()); // Box-Muller
  return Math.exp(Math.log(p50_ms) + sigma * z);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const round3 = (ms) => Math.round(ms * 1000) / 1000;
