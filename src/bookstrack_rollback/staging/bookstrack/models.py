"""BooksTrack worker state. Placeholder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..state import Staging


class BooksTrack:
    def __init__(self, staging: "Staging") -> None:
        self._staging = staging
