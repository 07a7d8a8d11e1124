// The smallest Worker that answers: the real-client tests deploy it to the embedded staging.
export default {
  async fetch(request, env) {
    return new Response(env.GREETING ?? "hello from workerd");
  },
};
