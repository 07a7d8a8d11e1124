"""The users' traffic knob: how the staging's own users behave (rate, share of popular searches,
their own fault profile), as ``StagingConfig.users``, ``PUT /__staging/users`` and ``--users-rate`` set
it. A value, no behaviour: the sender that acts it out is :class:`.users.UsersGenerator`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from ..faults import FaultProfile, FaultProfileError, profile_from_dict

MAX_RATE = 500.0  # requests per second


class UsersTrafficError(ValueError):
    """A users' traffic configuration that cannot be used; the message names the field and value."""


@dataclass(frozen=True)
class UsersTraffic:
    """How the staging's users behave: how often they search, what for, and which faults they see.

    ``popular_share`` of their searches ask one of a few fixed popular queries (cache hits after the
    first), the rest fresh queries (always cache misses). ``fault`` applies to their requests only,
    composed with the active faults; ``exempt`` users see only their own ``fault``, not the deployed
    ``FAULT_PROFILE`` nor the runtime flag. ``seed`` None: derived from the staging's seed.
    """

    rate: float = 0.0
    popular_share: float = 0.8
    fault: FaultProfile = FaultProfile()
    exempt: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= MAX_RATE:
            raise UsersTrafficError(f"rate must be from 0 to {MAX_RATE:g} requests per second, got {self.rate!r}")
        if not 0.0 <= self.popular_share <= 1.0:
            raise UsersTrafficError(f"popular_share must be a number from 0 to 1, got {self.popular_share!r}")
        if self.fault.data_loss:
            raise UsersTrafficError(
                f"fault.data_loss cannot apply to users only (it deletes KV keys for everyone), "
                f"got {list(self.fault.data_loss)!r}"
            )
        if self.fault.duration_s is not None:
            raise UsersTrafficError(
                f"fault.duration_s is not supported for the users' fault (replace it with PUT "
                f"/__staging/users instead), got {self.fault.duration_s!r}"
            )

    def effective_seed(self, staging_seed: int) -> int:
        """``seed``, or one derived from the staging's seed (not its random stream)."""
        if self.seed is not None:
            return self.seed
        return random.Random(f"bookstrack-users/{staging_seed}").getrandbits(32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": float(self.rate),
            "popular_share": float(self.popular_share),
            "fault": self.fault.to_dict(),
            "exempt": self.exempt,
            "seed": self.seed,
        }


def _number(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsersTrafficError(f"{name} must be a number, got {value!r}")
    return float(value)


def users_from_dict(data: Any) -> UsersTraffic:
    """Parse a users' traffic JSON object; missing fields take their defaults."""
    if not isinstance(data, dict):
        raise UsersTrafficError(f"the users' traffic must be a JSON object, got {type(data).__name__}")
    known = set(UsersTraffic.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsersTrafficError(f"unknown users' traffic field(s) {unknown}; known: {sorted(known)}")
    exempt = data.get("exempt", False)
    if not isinstance(exempt, bool):
        raise UsersTrafficError(f"exempt must be true or false, got {exempt!r}")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UsersTrafficError(f"seed must be an integer or null, got {seed!r}")
    try:
        fault = profile_from_dict(data.get("fault", {}))
    except FaultProfileError as exc:
        raise UsersTrafficError(f"fault: {exc}") from exc
    return UsersTraffic(
        rate=_number(data, "rate", 0.0),
        popular_share=_number(data, "popular_share", 0.8),
        fault=fault,
        exempt=exempt,
        seed=seed,
    )
