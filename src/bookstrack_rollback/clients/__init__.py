"""Clients of the target: the Cloudflare API subset and the BooksTrack API (HTTP and WebSocket).

Every call has a deadline; every lower-layer failure becomes one of :mod:`.errors`.
"""
