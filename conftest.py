"""The root conftest stays thin: the suite's options, markers, fixtures, report header and deadlines
come from its pytest plugin (``bookstrack_rollback.pytest_plugin``, entry point ``bookstrack``), so
they are there whatever the rootdir or the working directory. ``fixtures/`` holds the suites' helpers."""
