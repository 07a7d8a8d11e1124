"""The embedded staging's Workers runtime (``--runtime workerd``): uploaded versions run in workerd.

- host.mjs / host.py: the Node process that runs one Miniflare (one workerd) per version;
- spec.py: a version's modules and bindings as the host takes them, and the reference Worker's code;
- runtime.py: which running version answers each request, and what the Workers write (analytics, tail);
- proxy.py: the BooksTrack base URL forwarded to the running versions (HTTP and WebSocket).
"""
