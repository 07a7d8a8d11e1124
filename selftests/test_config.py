"""runbook.toml and targets.toml: typed, immutable, precedence CLI > env > file > default, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bookstrack_rollback.config import (
    Timebase,
    scaled,
    stream_seed,
    ConfigError,
    Secret,
    TargetOverrides,
    load_runbook,
    resolve_suite_settings,
    resolve_target,
)
from bookstrack_rollback.config.runbook import parse_runbook

RUNBOOK_TOML = Path(__file__).parents[1] / "src" / "bookstrack_rollback" / "runbook.toml"


def test_runbook_carries_every_number_of_the_runbook():
    rb = load_runbook()
    assert rb.triggers.post_deploy_window_min == 30
    assert rb.triggers.immediate.error_rate_above == 0.10
    assert rb.triggers.immediate.server_error_rate_above == 0.05
    assert rb.triggers.immediate.websocket_failure_rate_above == 0.10
    assert (rb.triggers.approval.error_rate_from, rb.triggers.approval.error_rate_to) == (0.05, 0.10)
    assert rb.triggers.approval.p95_latency_above_s == 2.0
    assert rb.triggers.approval.cache_hit_rate_below == 0.30
    assert rb.checklist.not_transient_min == 5
    assert rb.verification.error_rate_below == 0.05
    assert rb.verification.p95_below_s == 1.0
    assert rb.verification.cache_hit_rate_above == 0.50
    assert rb.verification.cache_query_window_min == 10
    assert rb.methods.wrangler_rollback.expected_min == (2.0, 3.0)
    assert rb.methods.git_revert.expected_min == (5.0, 10.0)
    assert rb.methods.emergency_deploy.expected_min == (3.0, 5.0)
    assert (rb.drill.time_to_detect_budget_min, rb.drill.time_to_rollback_budget_min,
            rb.drill.total_recovery_budget_min) == (5, 5, 10)


def test_runbook_settings_are_immutable():
    rb = load_runbook()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rb.drill.time_to_detect_budget_min = 60  # type: ignore[misc]


def test_durations_scale_with_one_factor():
    assert scaled(5, 0.02) == pytest.approx(6.0)
    assert scaled(10, 1.0) == 600.0
    tb = Timebase(0.02, seed=7)
    assert tb.runbook_minutes(tb.seconds(5)) == pytest.approx(5.0)
    # the waits: scaled where they stand for runbook time, fixed where they stand for the network
    assert (tb.tick_s, tb.canary_every_s, tb.request_timeout_s) == (pytest.approx(0.2), pytest.approx(0.6), 5.0)
    real = Timebase(1.0, seed=7)
    assert (real.tick_s, real.canary_every_s, real.handshake_every_s) == (5.0, 30.0, 2.5)


def test_named_random_streams_replay_from_the_seed_and_stay_apart():
    one, same, other = Timebase(1, seed=42), Timebase(0.02, seed=42), Timebase(1, seed=43)
    draws = [one.rng("probes").random() for _ in range(2)]
    assert draws[0] == draws[1] == same.rng("probes").random()  # one seed replays a stream, whatever the scale
    assert one.rng("probes").random() != other.rng("probes").random()  # another seed, another stream
    assert one.rng("probes").random() != one.rng("handshakes").random()  # streams are independent
    assert stream_seed(42, "probes") == 10833181094689751246  # stable across processes and versions


@pytest.mark.parametrize(
    "edit, message",
    [
        (("error_rate_above = 0.10", "error_rate_above = 10"), "triggers.immediate.error_rate_above is a fraction"),
        (("min_samples = 30", "min_samples = -1"), "statistics.min_samples must be a non-negative integer"),
        (("health_check_fails = true", "health_check_fails = 1"), "triggers.immediate.health_check_fails must be true or false"),
        (("expected_min = [2, 3]", "expected_min = [3, 2]"), "methods.wrangler_rollback.expected_min must be [low, high]"),
        (("every_months = 3", "every_months = 3\nsurprise = 1"), "unknown key(s) ['surprise'] in [drill]"),
        (("[drill]", "[dril]"), "unknown key(s) ['dril'] at the top level"),
        (("every_months = 3", ""), "missing drill.every_months"),
        (("confidence = 0.95", "confidence = "), "not valid TOML"),
    ],
)
def test_a_bad_runbook_value_names_the_file_and_the_key(edit, message):
    text = RUNBOOK_TOML.read_text().replace(*edit, 1)
    with pytest.raises(ConfigError) as caught:
        parse_runbook(text, "my-runbook.toml")
    assert str(caught.value).startswith("my-runbook.toml")
    assert message in str(caught.value)


def test_runbook_file_that_cannot_be_read(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the runbook file .*missing.toml"):
        load_runbook(tmp_path / "missing.toml")


def test_default_target_is_the_embedded_staging_at_a_small_time_scale():
    target = resolve_target(None, env={})
    assert target.embedded and target.environment == "staging"
    assert target.time_scale == 0.02
    assert target.base_url is None  # filled in once the staging has started


def test_named_targets_come_from_targets_toml_with_secrets_from_the_environment():
    env = {"CLOUDFLARE_API_TOKEN": "tok-123456789", "CLOUDFLARE_ACCOUNT_ID": "acc-1"}
    staging = resolve_target("staging", env=env)
    assert staging.base_url == "https://staging-api.oooefam.net"
    assert staging.worker == "api-worker-staging"
    assert staging.datasets.performance == "books_api_performance_staging"
    assert staging.token.reveal() == "tok-123456789" and staging.account_id == "acc-1"
    production = resolve_target("production", env=env)
    assert (production.base_url, production.worker) == ("https://api.oooefam.net", "api-worker")
    assert production.is_production and production.has_cloudflare


def test_the_token_never_prints():
    target = resolve_target("production", env={"CLOUDFLARE_API_TOKEN": "tok-secret-value"})
    for text in (repr(target), str(target), f"{target.token}", target.describe()):
        assert "tok-secret-value" not in text
    assert repr(Secret("x")) == "Secret('***')"


def test_precedence_command_line_over_environment_over_file():
    env = {"BOOKSTRACK_TIME_SCALE": "0.5", "BOOKSTRACK_TARGET": "production"}
    assert resolve_target(None, env=env).name == "production"  # env chooses the target
    assert resolve_target("staging", env=env).name == "staging"  # the command line wins
    assert resolve_target("staging", env=env).time_scale == 0.5  # env over the file's 1.0
    assert resolve_target("staging", TargetOverrides(time_scale=0.1), env=env).time_scale == 0.1
    over = resolve_target("staging", TargetOverrides(base_url="http://127.0.0.1:9/"), env={})
    assert over.base_url == "http://127.0.0.1:9"


def test_a_url_is_a_target_too():
    target = resolve_target("http://127.0.0.1:8787", env={})
    assert target.base_url == "http://127.0.0.1:8787" and not target.has_cloudflare
    assert "no Cloudflare API access" in target.describe()


@pytest.mark.parametrize(
    "spec, overrides, env, message",
    [
        ("prod", TargetOverrides(), {}, "--target: unknown target 'prod'; use one of ['embedded', 'production', 'staging']"),
        (None, TargetOverrides(), {"BOOKSTRACK_TARGET": "nowhere"}, "BOOKSTRACK_TARGET: unknown target 'nowhere'"),
        ("staging", TargetOverrides(time_scale=0), {}, "--time-scale must be greater than 0"),
        ("staging", TargetOverrides(), {"BOOKSTRACK_TIME_SCALE": "fast"}, "BOOKSTRACK_TIME_SCALE must be a number"),
        ("staging", TargetOverrides(base_url="ftp://x"), {}, "--base-url must be an http(s) URL"),
        ("embedded", TargetOverrides(base_url="http://x"), {}, "--base-url cannot be combined with the embedded staging"),
    ],
)
def test_bad_target_settings_say_where_they_came_from(spec, overrides, env, message):
    with pytest.raises(ConfigError) as caught:
        resolve_target(spec, overrides, env=env)
    assert message in str(caught.value)


def test_a_broken_targets_file_is_named(tmp_path):
    bad = tmp_path / "targets.toml"
    bad.write_text('[targets.staging]\nbase_url = "https://x"\nworkr = "typo"\n')
    with pytest.raises(ConfigError, match=r"\[targets.staging\]: unknown key\(s\) \['workr'\]"):
        resolve_target("staging", env={}, targets_file=bad)
    bad.write_text("[targets.staging\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_target("staging", env={}, targets_file=bad)


def test_each_target_has_a_max_probe_rate_and_a_bad_one_is_named(tmp_path):
    assert resolve_target("production", env={}).max_probe_rate == 2.0
    assert resolve_target("staging", env={}).max_probe_rate == 10.0
    assert resolve_target("http://127.0.0.1:9", env={}).max_probe_rate == 2.0  # nobody described it: polite
    assert resolve_target("embedded", env={}).max_probe_rate == 500.0
    bad = tmp_path / "targets.toml"
    bad.write_text('[targets.small]\nbase_url = "https://x"\nmax_probe_rate = 0\n')
    with pytest.raises(ConfigError, match=r"\[targets.small\]: max_probe_rate must be above 0 and at most 1000 "
                                          r"requests per second, got 0"):
        resolve_target("small", env={}, targets_file=bad)


def test_seed_from_option_or_environment():
    common = dict(target="staging", overrides=TargetOverrides(), targets_file=None, runbook_file=None)
    assert resolve_suite_settings(seed=None, env={}, **common).seed == 20251115
    assert resolve_suite_settings(seed=None, env={"BOOKSTRACK_SEED": "7"}, **common).seed == 7
    assert resolve_suite_settings(seed=3, env={"BOOKSTRACK_SEED": "7"}, **common).seed == 3
    with pytest.raises(ConfigError, match="BOOKSTRACK_SEED must be an integer"):
        resolve_suite_settings(seed=None, env={"BOOKSTRACK_SEED": "x"}, **common)
