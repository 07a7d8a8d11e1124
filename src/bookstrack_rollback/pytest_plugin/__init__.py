"""The suite's pytest plugin, registered through the ``pytest11`` entry point ``bookstrack`` (as
pytest-timeout and pytest-xdist load): its options, markers, fixtures, report header and per-test
deadlines are there whatever the rootdir, the working directory or the form of a path option.

Thin: each module holds one suite's options, hooks and fixtures; the logic lives in the package.

- ``settings``: target, time scale, seed, the embedded staging, markers, header, deadlines
- ``verify``, ``triage``, ``drill``: the three suites' fixtures and hooks

Disable it with ``-p no:bookstrack``.
"""

pytest_plugins = [
    "bookstrack_rollback.pytest_plugin.settings",
    "bookstrack_rollback.pytest_plugin.verify",
    "bookstrack_rollback.pytest_plugin.triage",
    "bookstrack_rollback.pytest_plugin.drill",
]
