/**
 * The reference BooksTrack Worker (README.md): the BooksTrack API of contract/bookstrack-api.md,
 * wrapped with the drills' fault hook, and the JobProgress Durable Object of its progress socket.
 */

import { withFaultProfile } from "../../staging-hook/fault-hook.mjs";
import { app, observeInjected } from "./app.mjs";

export { JobProgress } from "./job-progress.mjs";

export default {
  fetch: withFaultProfile((request, env, ctx) => app(request, env, ctx), {
    onInjected: observeInjected, // the hook's own answers count in the worker's telemetry
    delegate: ["provider_timeouts"], // acted out after the edge cache, as the embedded staging does
  }),
};
