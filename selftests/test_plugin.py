"""The suite's pytest plugin as users meet it: options, report header, errors, xdist sharing."""

from __future__ import annotations

import pytest


def test_report_header_names_target_time_scale_and_seed(suite: pytest.Pytester):
    suite.makepyfile(test_x="def test_x(target):\n    assert target.base_url.startswith('http://127.0.0.1:')\n")
    result = suite.runpytest_subprocess("--seed", "42")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "bookstrack target: embedded staging at http://127.0.0.1:*; Cloudflare API http://127.0.0.1:*/client/v4, worker api-worker-staging",
        "bookstrack time scale: 0.02 (5 runbook minutes = 6.0 s); seed: 42; runbook: <package>/runbook.toml",
    ])


def test_time_scale_option_and_a_url_target(suite: pytest.Pytester):
    suite.makepyfile(test_x="def test_x(target):\n    assert target.base_url == 'http://127.0.0.1:9'\n")
    result = suite.runpytest_subprocess("--target", "http://127.0.0.1:9", "--time-scale", "0.5")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "bookstrack target: unknown target 'http://127.0.0.1:9' at http://127.0.0.1:9; no Cloudflare API access*",
        "bookstrack time scale: 0.5 (5 runbook minutes = 150.0 s)*",
    ])


def test_an_unknown_target_is_a_usage_error(suite: pytest.Pytester):
    suite.makepyfile(test_x="def test_x():\n    pass\n")
    result = suite.runpytest_subprocess("--target", "prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("ERROR: --target: unknown target 'prod'; use one of ['embedded', 'production', 'staging'] "
            "or an http(s) URL") in result.stderr.str()


def test_an_unregistered_marker_is_refused(suite: pytest.Pytester):
    suite.makepyfile(test_x="import pytest\n@pytest.mark.verfy\ndef test_x():\n    pass\n")
    result = suite.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'verfy' not found in `markers` configuration option*"])


def test_xdist_workers_share_one_embedded_staging(suite: pytest.Pytester, tmp_path):
    out = tmp_path / "seen"
    out.mkdir()
    suite.makepyfile(test_x=f"""
import os, pathlib, pytest, httpx
@pytest.mark.parametrize("n", range(6))
def test_x(target, n):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    info = httpx.get(target.base_url + "/__staging/info", timeout=5).json()
    pathlib.Path({str(out)!r}, worker + "-" + str(n)).write_text(info["bookstrack_base_url"])
""")
    result = suite.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=6)
    seen = {p.name.split("-")[0]: p.read_text() for p in out.iterdir()}
    assert set(seen) == {"gw0", "gw1"}, seen
    assert len(set(seen.values())) == 1, f"workers saw different stagings: {seen}"
