// A Worker whose Durable Object counts the requests it is sent: the real-client tests deploy it to the
// embedded staging to exercise a deploy that carries Durable Object migrations.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch() {
    const seen = ((await this.ctx.storage.get("seen")) ?? 0) + 1;
    await this.ctx.storage.put("seen", seen);
    return new Response(String(seen));
  }
}

export default {
  async fetch(request, env) {
    return env.COUNTER.get(env.COUNTER.idFromName("all")).fetch(request);
  },
};
