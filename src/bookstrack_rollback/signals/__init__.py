"""The signals layer, below verify, triage and drill (DESIGN.md, "Signals"): what the suite observes of
a target, gathered one way for all three.

- ``endpoints``: the one endpoint table (the mixes verify and the drill send) and the seeded queries;
- ``probing``: the one open-loop probe schedule (a slot that finds every client busy is skipped);
- ``feeds``: the bogus-token handshakes, the canary reads, and the live feed of all three until stopped;
- ``observations``: the typed observations and the :class:`Sink` they are written into;
- ``analytics``: the named Analytics Engine queries, one definition of each measure;
- ``traffic``: the users' requests told apart from the probes', and whether the telemetry can be trusted.

Nothing here judges: verify's checks, triage's triggers and the drill read what the signals wrote.
"""
