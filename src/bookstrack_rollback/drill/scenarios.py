"""Drill scenarios as data (``scenarios.toml`` beside this module, packaged with it): easy to read, easy
to add; another file with ``load_scenarios(path)``."""

from __future__ import annotations

import tomllib
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, scaled
from ..faults import FaultProfile, FaultProfileError, profile_from_dict
from ..triage.decision import Action
from ..triage.triggers import same_signal

TRIGGER_IDS = {"error_rate_spike", "server_error_rate", "complete_outage", "websocket_failures", "data_loss",
               "moderate_error_rate", "latency_spike", "cache_failure", "provider_timeouts"}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fault: FaultProfile
    triggers: tuple[str, ...]  # the drill must confirm each, and confirm one of them first
    expect: Action
    runtime_fault: FaultProfile | None = None
    fault_minutes: float | None = None  # the fault stops by itself after this many runbook minutes
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rolls_back(self) -> bool:
        return self.expect in (Action.ROLLBACK_NOW, Action.GET_APPROVAL)

    def detection_problems(self, detected_after: dict[str, float]) -> list[str]:
        """What the drill's detection got wrong for this scenario, as sentences: a named trigger that never
        confirmed, another trigger that confirmed first (or, in a negative control, at all)."""
        # the band of the same error rate confirms on the way to a spike (and may decide before it, when the
        # errors existed before the deploy): it is the scenario's signal too
        problems = [f"the {t} trigger never confirmed" for t in self.triggers
                    if not any(same in detected_after for same in same_signal(t))]
        named = {same for t in self.triggers for same in same_signal(t)}
        if detected_after:
            first = min(detected_after.values())
            early = [t for t, at in detected_after.items() if at == first and t not in named]
            if early and not any(detected_after.get(t) == first for t in named):
                problems.append(f"{', '.join(early)} confirmed first ({first:.2f}s), before the scenario's "
                                f"{' or '.join(self.triggers)}")
        if not self.rolls_back:
            others = sorted(t for t in detected_after if t not in named)
            if others:
                problems.append(f"a negative control, yet {', '.join(others)} also confirmed after the deploy")
        return problems

    def deployed_fault(self, time_scale: float) -> FaultProfile:
        """The test change's profile, with the blip's duration at the run's time scale."""
        data = self.fault.to_dict()
        data["label"] = data["label"] or self.description
        if self.fault_minutes is not None:
            data["duration_s"] = scaled(self.fault_minutes, time_scale)
        return profile_from_dict(data)


def load_scenarios(path: Path | None = None) -> list[Scenario]:
    file = path or resources.files("bookstrack_rollback.drill").joinpath("scenarios.toml")
    where = str(path) if path else "<package>/drill/scenarios.toml"
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the drill scenarios {where}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    scenarios = []
    for name, spec in (data.get("scenarios") or {}).items():
        place = f"{where} [scenarios.{name}]"
        unknown = sorted(set(spec) - {"description", "fault", "runtime_fault", "fault_minutes", "triggers", "expect"})
        if unknown:
            raise ConfigError(f"{place}: unknown key(s) {unknown}")
        try:
            fault = profile_from_dict(spec.get("fault", {}))
            runtime = profile_from_dict(spec["runtime_fault"]) if "runtime_fault" in spec else None
        except FaultProfileError as exc:
            raise ConfigError(f"{place}: {exc}") from exc
        triggers = spec.get("triggers")
        if not isinstance(triggers, list) or not triggers or any(t not in TRIGGER_IDS for t in triggers):
            raise ConfigError(f"{place}: triggers must be a list of one or more of {sorted(TRIGGER_IDS)}, got "
                              f"{triggers!r}")
        try:
            expect = Action(spec.get("expect"))
        except ValueError:
            raise ConfigError(f"{place}: expect must be one of {[a.value for a in Action]}") from None
        scenarios.append(Scenario(name, spec.get("description", name), fault, tuple(triggers), expect, runtime,
                                  spec.get("fault_minutes"), spec))
    if not scenarios:
        raise ConfigError(f"{where}: no [scenarios.NAME] tables")
    return scenarios
