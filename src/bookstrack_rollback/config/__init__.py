"""Configuration resolved once into immutable objects: the runbook's numbers and the target.

Precedence: command line > environment > file > default. A bad value names where it came from.
Secrets (the Cloudflare token) come only from the environment and never print.
"""

from .errors import ConfigError
from .runbook import Runbook, load_runbook
from .secret import Secret
from .suite import SuiteSettings, resolve_suite_settings
from .targets import Target, TargetOverrides, load_targets, resolve_target
from .timebase import Timebase, runbook_minutes, scaled, stream_seed

__all__ = [
    "ConfigError",
    "Runbook",
    "Secret",
    "SuiteSettings",
    "Target",
    "TargetOverrides",
    "Timebase",
    "load_runbook",
    "load_targets",
    "resolve_suite_settings",
    "resolve_target",
    "runbook_minutes",
    "scaled",
    "stream_seed",
]
