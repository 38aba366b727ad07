"""Verdict policy: each check passes on a good payload and fails alone on its broken field."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared_code.devices.integrity import policy
from tests.support.play_integrity import CERT_DIGEST, PACKAGE, payload

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


def expect(**overrides) -> policy.Expectations:
    values = dict(package_name=PACKAGE, cert_digests=frozenset({CERT_DIGEST}), min_device="DEVICE",
                  require_licensed=True, max_age_seconds=300, request_hash=None)
    return policy.Expectations(**{**values, **overrides})


def test_a_good_classic_payload_passes_every_stateless_check():
    assert policy.evaluate(payload(nonce="n" * 43, timestamp_ms=NOW_MS), expect(), NOW) == []


def test_a_good_standard_payload_passes_with_the_declared_hash():
    good = payload(request_hash="h-123", timestamp_ms=NOW_MS)
    assert policy.evaluate(good, expect(request_hash="h-123"), NOW) == []
    assert policy.evaluate(good, expect(request_hash="h-124"), NOW) == [policy.REQUEST_HASH]


@pytest.mark.parametrize("broken, check", [
    (dict(request_package="com.evil.app"), policy.PACKAGE_NAME),
    (dict(app_package="com.evil.app"), policy.APP_PACKAGE),
    (dict(testing=True), policy.TESTING_RESPONSE),
    (dict(timestamp_ms=NOW_MS - 301_000), policy.TIMESTAMP),
    (dict(timestamp_ms=NOW_MS + (policy.CLOCK_SKEW_SECONDS + 5) * 1000), policy.TIMESTAMP),
    (dict(app_verdict="UNRECOGNIZED_VERSION"), policy.APP_RECOGNIZED),
    (dict(app_verdict="UNEVALUATED"), policy.APP_RECOGNIZED),
    (dict(cert="A" * 43), policy.CERTIFICATE_DIGEST),
    (dict(device=("MEETS_BASIC_INTEGRITY",)), policy.DEVICE_INTEGRITY),
    (dict(device=()), policy.DEVICE_INTEGRITY),
    (dict(licensing="UNLICENSED"), policy.APP_LICENSED),
])
def test_each_check_fails_alone(broken, check):
    document = payload(nonce="n" * 43, **{"timestamp_ms": NOW_MS, **broken})
    assert policy.evaluate(document, expect(), NOW) == [check]


def test_small_clock_skew_and_the_age_limit_are_allowed():
    for ms in (NOW_MS + policy.CLOCK_SKEW_SECONDS * 1000, NOW_MS - 300_000):
        assert policy.evaluate(payload(timestamp_ms=ms), expect(), NOW) == []


def test_device_levels_are_ordered_and_licensing_only_when_required():
    strong = payload(timestamp_ms=NOW_MS, device=("MEETS_STRONG_INTEGRITY",), licensing="UNEVALUATED")
    assert policy.evaluate(strong, expect(min_device="STRONG", require_licensed=False), NOW) == []
    basic = payload(timestamp_ms=NOW_MS, device=("MEETS_BASIC_INTEGRITY",))
    assert policy.evaluate(basic, expect(min_device="BASIC"), NOW) == []
    assert policy.evaluate(basic, expect(min_device="STRONG"), NOW) == [policy.DEVICE_INTEGRITY]


def test_garbage_payloads_fail_checks_without_raising():
    failed = policy.evaluate({"requestDetails": "x", "appIntegrity": [], "deviceIntegrity": {"deviceRecognitionVerdict": "MEETS_STRONG_INTEGRITY"}}, expect(), NOW)
    assert failed == [policy.PACKAGE_NAME, policy.TIMESTAMP, policy.APP_RECOGNIZED, policy.CERTIFICATE_DIGEST,
                      policy.DEVICE_INTEGRITY, policy.APP_LICENSED, policy.APP_PACKAGE]
    strict = expect(min_version_code=1, require_play_protect=True, refuse_risky_apps=True, max_activity_level="LEVEL_2")
    assert policy.evaluate({"appIntegrity": {"versionCode": True}}, strict, NOW)[-4:] == [
        policy.VERSION_CODE, policy.PLAY_PROTECT, policy.APP_ACCESS_RISK, policy.DEVICE_ACTIVITY]
    assert policy.token_time(payload(timestamp_ms=NOW_MS)) == NOW
    assert policy.token_time({"requestDetails": {"timestampMillis": "-5"}}) is None


def test_summary_keeps_verdicts_but_not_request_data():
    summary = policy.summarize(payload(nonce="secret-nonce", timestamp_ms=NOW_MS), "classic")
    assert summary == {"request_type": "classic", "package_name": PACKAGE, "token_time": "2026-11-21T12:00:00.000000Z",
                       "app_recognition": "PLAY_RECOGNIZED", "device_recognition": ["MEETS_DEVICE_INTEGRITY"],
                       "app_licensing": "LICENSED", "app_package": PACKAGE, "version_code": "42", "play_protect": None,
                       "apps_detected": [], "device_activity": None, "testing": False}
    assert "secret-nonce" not in str(summary)


@pytest.mark.parametrize("setting, good, bad, check", [
    (dict(min_version_code=42), dict(version_code="42"), dict(version_code="41"), policy.VERSION_CODE),
    (dict(require_play_protect=True), dict(play_protect="NO_ISSUES"), dict(play_protect="POSSIBLE_RISK"), policy.PLAY_PROTECT),
    (dict(require_play_protect=True), dict(play_protect="NO_ISSUES"), dict(), policy.PLAY_PROTECT),
    (dict(refuse_risky_apps=True), dict(apps_detected=("KNOWN_INSTALLED", "UNKNOWN_INSTALLED")),
     dict(apps_detected=("KNOWN_INSTALLED", "UNKNOWN_CAPTURING")), policy.APP_ACCESS_RISK),
    (dict(refuse_risky_apps=True), dict(apps_detected=()), dict(apps_detected=("UNKNOWN_CONTROLLING",)), policy.APP_ACCESS_RISK),
    (dict(refuse_risky_apps=True), dict(apps_detected=()), dict(apps_detected=("UNKNOWN_OVERLAYS",)), policy.APP_ACCESS_RISK),
    (dict(refuse_risky_apps=True), dict(apps_detected=()), dict(), policy.APP_ACCESS_RISK),
    (dict(max_activity_level="LEVEL_2"), dict(activity="LEVEL_2"), dict(activity="LEVEL_3"), policy.DEVICE_ACTIVITY),
    (dict(max_activity_level="LEVEL_2"), dict(activity="LEVEL_1"), dict(activity="UNEVALUATED"), policy.DEVICE_ACTIVITY),
    (dict(allow_testing=False), dict(testing=False), dict(testing=True), policy.TESTING_RESPONSE),
])
def test_newer_verdict_checks_apply_when_configured_and_fail_alone(setting, good, bad, check):
    assert policy.evaluate(payload(timestamp_ms=NOW_MS, **good), expect(**setting), NOW) == []
    assert policy.evaluate(payload(timestamp_ms=NOW_MS, **bad), expect(**setting), NOW) == [check]
    assert policy.evaluate(payload(timestamp_ms=NOW_MS, **bad), expect(), NOW) == (
        [check] if check == policy.TESTING_RESPONSE else [])


def test_testing_responses_pass_only_when_allowed():
    assert policy.evaluate(payload(timestamp_ms=NOW_MS, testing=True), expect(allow_testing=True), NOW) == []
