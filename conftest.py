"""Root conftest: the suite's options, markers and fixtures (see ``fixtures/``).

Markers (registered in pyproject.toml, strict): ``verify``, ``triage``, ``drill``.
"""

pytest_plugins = ["fixtures.targets", "fixtures.verify", "fixtures.drill", "fixtures.triage"]
