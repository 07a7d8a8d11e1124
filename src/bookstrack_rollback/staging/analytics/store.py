"""Analytics Engine data points. Placeholder: write() keeps rows in memory, query() is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ..state import Staging


class AnalyticsStore:
    def __init__(self, staging: "Staging") -> None:
        self._staging = staging
        self.rows: list[tuple[Any, ...]] = []

    def write(
        self,
        dataset: str,
        *,
        index1: str,
        blobs: Sequence[str] = (),
        doubles: Sequence[float] = (),
        sample_interval: int = 1,
    ) -> None:
        """Write one data point (``writeDataPoint``) to ``dataset`` at the staging clock's now."""
        self.rows.append((dataset, self._staging.clock.now(), index1, tuple(blobs), tuple(doubles)))

    def close(self) -> None:
        pass
