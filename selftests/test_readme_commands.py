"""The README's commands typed as a user types them, in a subprocess: at the checkout's root, and from
another directory with a targets file outside the checkout (``--targets-file PATH`` and
``--targets-file=PATH``). The suite's options, markers and fixtures come from its pytest plugin (entry
point ``bookstrack``), so they are there whatever the rootdir; each run must run its tests and pass.
Then the deadlines: a user's short ``-o timeout=`` cannot cut a plan (a hung target failing within its
request timeouts: ``test_verify_edges.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from outer_targets import targets_toml

from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread
from bookstrack_rollback.staging.users import UsersTraffic

# each run starts a staging and probes it: one at a time (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest"]
TOKEN = "readme-commands-token-5e6f7a8b"
OUTCOME = re.compile(r"=+ (?P<summary>.*?) in [\d.]+s")


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> tuple[int, str]:
    """A pytest command as a user types it (no cache files left in the checkout)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PYTEST_", "BOOKSTRACK_", "CLOUDFLARE_", "COV_"))}
    clean["PYTEST_ADDOPTS"] = "-p no:cacheprovider"
    done = subprocess.run([*PYTEST, *args], cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def outcomes(output: str) -> dict[str, int]:
    """{"passed": 17, ...} from pytest's last line."""
    found = OUTCOME.findall(output)
    assert found, output[-3000:]
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", found[-1])}


@pytest.fixture(scope="module")
def outer() -> Iterator[RunningStaging]:
    """A staging the suite did not start, named in a targets file outside the checkout, with users."""
    running = start_in_thread(StagingConfig(seed=77, token=TOKEN, users=UsersTraffic(rate=25.0, popular_share=0.8)))
    yield running
    running.stop()


@pytest.fixture
def elsewhere(tmp_path: Path, outer: RunningStaging) -> tuple[Path, Path, dict[str, str]]:
    """A working directory outside the checkout and a targets file in another one."""
    work, conf = tmp_path / "work", tmp_path / "conf"
    work.mkdir()
    conf.mkdir()
    (conf / "targets.toml").write_text(targets_toml(outer))
    return work, conf / "targets.toml", {"CLOUDFLARE_API_TOKEN": TOKEN,
                                         "CLOUDFLARE_ACCOUNT_ID": outer.config.account_id}


def test_bare_pytest_m_verify_at_the_root_runs_the_verification_suite():
    code, output = run(["-m", "verify"], ROOT)
    assert code == 0, output[-3000:]
    assert outcomes(output) == {"passed": 17, "deselected": outcomes(output)["deselected"]}
    assert "verify will send about" in output and "reach the upstream providers" in output


def test_bare_pytest_m_triage_at_the_root_runs_the_triage_suite():
    code, output = run(["-m", "triage"], ROOT)
    assert code == 0, output[-3000:]
    assert outcomes(output)["passed"] == 15, output[-3000:]
    assert "DECISION: NO ACTION" in output


def test_bare_pytest_m_drill_k_error_spike_at_the_root_runs_the_drills(tmp_path: Path):
    code, output = run(["-m", "drill", "-k", "error-spike"], ROOT, env={"BOOKSTRACK_REPORTS": str(tmp_path)})
    assert code == 0, output[-3000:]
    assert outcomes(output)["passed"] == 3, output[-3000:]  # Methods 1, 2 and 3
    assert len(list((tmp_path / "drills").glob("*-error-spike-*.json"))) >= 3


def test_from_another_directory_with_a_targets_file_given_with_a_space(elsewhere, outer):
    work, targets, env = elsewhere
    code, output = run([str(ROOT / "tests"), "-m", "verify", "--target", "local", "--targets-file", str(targets)],
                       work, env)
    assert code == 0, output[-3000:]
    assert outcomes(output)["passed"] == 17, output[-3000:]
    assert f"bookstrack target: staging target 'local' at {outer.base_url}" in output


def test_from_another_directory_with_a_targets_file_given_with_an_equals_sign(elsewhere):
    work, targets, env = elsewhere
    code, output = run([str(ROOT / "tests"), "-m", "triage", "--target=local", f"--targets-file={targets}"], work, env)
    assert code == 0, output[-3000:]
    assert outcomes(output)["passed"] == 15, output[-3000:]


def test_a_short_user_timeout_cannot_cut_the_plan():
    """`-o timeout=3` against a 12 s window: the plan's deadline applies, with a warning in the header."""
    code, output = run(["-m", "verify", "-k", "health_check or version_identity", "-o", "timeout=3"], ROOT)
    assert code == 0, output[-3000:]
    assert outcomes(output)["passed"] == 2, output[-3000:]
    assert re.search(r"bookstrack deadlines per test: verify \d+ s \(a 12\.0 s window", output), output[:2000]
    assert ("bookstrack WARNING: -o timeout=3 is shorter than the plan of verify, triage, drill: those tests get "
            "their plan's deadline instead") in output
    assert "Timeout" not in output
