"""Allure's run-level files, which allure-pytest does not write (shared/notes/ecosystem.md §1):
``environment.properties``, ``executor.json`` and ``categories.json``. Written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic_file import write_atomically

# Allure 2 / classic categories; Allure 3 takes the same list from allurerc (reports issue).
CATEGORIES = [
    {"name": "Threshold breach (the service fails a runbook threshold)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*FAIL: .*"},
    {"name": "Budget exceeded (a drill phase was too slow)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*budget.*exceeded.*"},
    {"name": "Inconclusive (not enough evidence yet)", "matchedStatuses": ["broken", "failed"],
     "messageRegex": "(?s).*INCONCLUSIVE: .*"},
    {"name": "Checker error (the suite could not measure)", "matchedStatuses": ["broken", "failed"],
     "messageRegex": "(?s).*ERROR: .*"},
    {"name": "Staging left unhealed", "matchedStatuses": ["failed", "broken"],
     "messageRegex": "(?s).*left unhealed.*"},
]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")


def write_environment(results_dir: Path, values: dict[str, object]) -> None:
    lines = [f"{key}={_escape(str(value))}" for key, value in values.items() if value is not None]
    write_atomically(results_dir / "environment.properties", "\n".join(lines) + "\n")


def write_categories(results_dir: Path) -> None:
    write_atomically(results_dir / "categories.json", json.dumps(CATEGORIES, indent=2))


def write_executor(results_dir: Path, *, name: str, build_name: str, build_url: str | None = None,
                   report_name: str = "BooksTrack rollback suite") -> None:
    executor = {"name": name, "type": "github" if os.environ.get("GITHUB_ACTIONS") else "local",
                "buildName": build_name, "reportName": report_name}
    if build_url:
        executor["buildUrl"] = build_url
    write_atomically(results_dir / "executor.json", json.dumps(executor, indent=2))
