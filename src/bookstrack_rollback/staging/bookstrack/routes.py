"""HTTP routes of this part. Placeholder."""

from __future__ import annotations

from starlette.routing import BaseRoute

from ..state import Staging


def routes(staging: Staging) -> list[BaseRoute]:
    return []
