"""The reports as people open them: a real drill's single-file report and an Allure report, rendered
by headless Chromium (Debian's package, installed by `make browser`), with a screenshot beside each."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bookstrack_rollback.config import SuiteSettings, TargetOverrides, resolve_suite_settings
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.record import DrillRecord, RecordStore
from bookstrack_rollback.drill.runner import DrillOptions, run_drill
from bookstrack_rollback.drill.scenarios import load_scenarios
from bookstrack_rollback.reporting.drill_report import write_drill_report, write_index
from bookstrack_rollback.pytest_plugin.settings import EMBEDDED_USERS
from bookstrack_rollback.staging import RunningStaging, StagingConfig, start_in_thread

pytestmark = pytest.mark.xdist_group(name="pytester-heavy")
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "browser-check-token-1f2e3d4c5b"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (make browser installs Debian's package)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI this check must run
        pytest.skip(message)
    return path


def render(chromium: str, url: str, out: Path, tmp: Path, *, budget_ms: int = 5000) -> tuple[str, str]:
    """(DOM after load, console log lines); a screenshot is saved as ``out``."""
    flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
             f"--user-data-dir={tmp / 'profile'}", "--window-size=1300,1800", f"--virtual-time-budget={budget_ms}",
             "--enable-logging=stderr", "--v=0"]
    shot = subprocess.run([*flags, f"--screenshot={out}", url], capture_output=True, text=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    return dom.stdout, "\n".join(console)


@pytest.fixture(scope="module")
def drill_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """One real drill against the embedded staging, and the report written from its record."""
    reports = tmp_path_factory.mktemp("reports")
    running: RunningStaging = start_in_thread(StagingConfig(token=TOKEN, users=EMBEDDED_USERS))
    try:
        base = resolve_suite_settings(target=None, overrides=TargetOverrides(), seed=None, targets_file=None,
                                      runbook_file=None, env={})
        target = base.target.bound(base_url=running.base_url, cloudflare_api_url=running.cloudflare_api_url,
                                   account_id=running.config.account_id, worker=running.config.worker_name,
                                   token=Secret(TOKEN), kv_namespace_id=running.config.kv_namespace_id)
        settings = SuiteSettings(target=target, runbook=base.runbook, seed=base.seed)
        scenario = next(s for s in load_scenarios() if s.name == "error-spike")
        record = run_drill(settings, scenario, "api_rollback", DrillOptions(reports=reports))
    finally:
        running.stop()
    store = RecordStore(reports)
    data = json.loads((store.drills / f"{record.drill_id}.json").read_text())
    path = write_drill_report(reports, [DrillRecord.from_json(data)], store.history_lines())
    write_index(reports)
    yield path, data


def test_the_drill_report_shows_the_drills_real_figures(drill_report):
    path, record = drill_report
    html = path.read_text()
    m = record["measures"]
    for seconds in (m["time_to_detect_s"], m["time_to_rollback_s"], m["total_recovery_s"]):
        assert f"{seconds:.2f}s" in html, f"{seconds:.2f}s is not in the report"
    assert record["decision_sentence"].split(":")[0] in html
    assert record["drill_id"] in html
    assert path.stat().st_size < 1024 * 1024
    assert TOKEN not in html


def test_the_drill_report_renders_in_chromium_without_console_errors(chromium, drill_report, tmp_path):
    path, record = drill_report
    shot = path.with_suffix(".png")
    dom, console = render(chromium, path.as_uri(), shot, tmp_path)
    assert not re.search(r"(?i)error|uncaught", console), console
    assert "drill passed" in dom.lower() or "drills passed" in dom.lower(), dom[:500]
    assert f"{record['measures']['time_to_detect_s']:.2f}s" in dom
    assert "budget" in dom and "<svg" in dom
    assert shot.exists() and shot.stat().st_size > 20_000  # a page, not a blank


def test_the_allure_report_opens(chromium, tmp_path):
    allure = ROOT / "node_modules" / ".bin" / "allure"
    if not allure.exists():
        pytest.fail("node_modules/.bin/allure is missing: make clients installs it")
    (tmp_path / "test_shown.py").write_text("def test_rollback_verified():\n    pass\n\n"
                                            "def test_threshold_breach():\n    assert False, 'FAIL: error rate 30%'\n")
    results, out = tmp_path / "allure-results", tmp_path / "allure-report"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--alluredir={results}",
                    "test_shown.py"], cwd=tmp_path, capture_output=True, timeout=120)
    done = subprocess.run([str(allure), "generate", str(results), "-o", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dom, _ = render(chromium, f"http://127.0.0.1:{server.server_address[1]}/index.html",
                        tmp_path / "allure.png", tmp_path, budget_ms=10000)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert "test_rollback_verified" in dom and "test_threshold_breach" in dom, dom[:1000]
    assert (tmp_path / "allure.png").stat().st_size > 20_000
