"""The verdict policy: which Play Integrity payloads TrustGate accepts, check by check.

Follows Google's "Integrity verdicts" page (developer.android.com/google/play/integrity/verdicts):
first match ``requestDetails`` with the original request, then read each verdict. Payload
fields used::

    requestDetails:   {requestPackageName, nonce (classic) | requestHash (standard), timestampMillis}
    appIntegrity:     {appRecognitionVerdict, packageName, certificateSha256Digest: [base64url], versionCode}
    deviceIntegrity:  {deviceRecognitionVerdict: [MEETS_BASIC_INTEGRITY | MEETS_DEVICE_INTEGRITY | MEETS_STRONG_INTEGRITY ...],
                       recentDeviceActivity: {deviceActivityLevel: LEVEL_1 .. LEVEL_4 | UNEVALUATED}}
    accountDetails:   {appLicensingVerdict: LICENSED | UNLICENSED | UNEVALUATED}
    environmentDetails: {playProtectVerdict: NO_ISSUES | NO_DATA | POSSIBLE_RISK | MEDIUM_RISK | HIGH_RISK | UNEVALUATED,
                         appAccessRiskVerdict: {appsDetected: [KNOWN_INSTALLED, UNKNOWN_CAPTURING, ...]}}
    testingDetails:   {isTestingResponse: bool}

The newer verdict fields are named, configurable checks (each off unless its setting asks for
it, except ``app_package`` and ``testing_response``, which always apply): ``app_package``
(``appIntegrity.packageName``), ``version_code`` (``PLAY_INTEGRITY_MIN_VERSION_CODE``),
``play_protect`` (``PLAY_INTEGRITY_REQUIRE_PLAY_PROTECT``: NO_ISSUES), ``app_access_risk``
(``PLAY_INTEGRITY_REFUSE_RISKY_APPS``: no UNKNOWN_CAPTURING / UNKNOWN_CONTROLLING /
UNKNOWN_OVERLAYS), ``device_activity`` (level at most ``PLAY_INTEGRITY_MAX_ACTIVITY_LEVEL``),
``testing_response`` (refused unless ``PLAY_INTEGRITY_ALLOW_TESTING``). A check that is on fails
when its field is missing (fail closed).

Every check has a name; :func:`evaluate` returns the names of those that fail. The stateful
checks (``nonce``: a live challenge of this device, consumed; ``token_unused``) are run by
:mod:`shared_code.devices.integrity.verdicts`, which reports them under the names below.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared_code.platform.timeutil import to_iso

PACKAGE_NAME = "package_name"
NONCE = "nonce"
REQUEST_HASH = "request_hash"
TIMESTAMP = "timestamp"
APP_RECOGNIZED = "app_recognized"
CERTIFICATE_DIGEST = "certificate_digest"
DEVICE_INTEGRITY = "device_integrity"
APP_LICENSED = "app_licensed"
TOKEN_UNUSED = "token_unused"
APP_PACKAGE = "app_package"
VERSION_CODE = "version_code"
PLAY_PROTECT = "play_protect"
APP_ACCESS_RISK = "app_access_risk"
DEVICE_ACTIVITY = "device_activity"
TESTING_RESPONSE = "testing_response"

RISKY_APPS = frozenset({"UNKNOWN_CAPTURING", "UNKNOWN_CONTROLLING", "UNKNOWN_OVERLAYS"})
ACTIVITY_LEVELS = {"LEVEL_1": 1, "LEVEL_2": 2, "LEVEL_3": 3, "LEVEL_4": 4}

#: A token may claim a time at most this far ahead of the server's clock (seconds).
CLOCK_SKEW_SECONDS = 30

DEVICE_LEVELS = {"BASIC": 1, "DEVICE": 2, "STRONG": 3}
_DEVICE_LABELS = {f"MEETS_{name}_INTEGRITY": level for name, level in DEVICE_LEVELS.items()}


@dataclass(frozen=True)
class Expectations:
    """What a payload must match. ``request_hash`` is set for standard requests (the hash the
    server computed for this device and challenge), ``None`` for classic ones (then the nonce is
    checked by the caller). The fields after it are the newer verdict checks (see above)."""

    package_name: str
    cert_digests: frozenset[str]
    min_device: str  # BASIC | DEVICE | STRONG
    require_licensed: bool
    max_age_seconds: int
    request_hash: str | None = None
    min_version_code: int = 0
    require_play_protect: bool = False
    refuse_risky_apps: bool = False
    max_activity_level: str = ""  # "" = not checked, else LEVEL_1 .. LEVEL_4
    allow_testing: bool = False


def policy_document(expected: Expectations) -> dict[str, Any]:
    """The policy in force as JSON (for the audit log's policy hash): every expectation but the
    per-request ``request_hash``, certificate digests sorted."""
    document = {name: value for name, value in asdict(expected).items() if name != "request_hash"}
    document["cert_digests"] = sorted(expected.cert_digests)
    return document


def _section(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def token_time(payload: dict[str, Any]) -> datetime | None:
    """``requestDetails.timestampMillis`` (a decimal string of ms since the epoch) as aware UTC."""
    raw = _section(payload, "requestDetails").get("timestampMillis")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def nonce(payload: dict[str, Any]) -> str | None:
    """The classic-request ``requestDetails.nonce`` without base64 padding, or ``None``."""
    value = _section(payload, "requestDetails").get("nonce")
    return value.rstrip("=") if isinstance(value, str) and value else None


def device_level(payload: dict[str, Any]) -> int:
    """The strongest device label in ``deviceRecognitionVerdict`` (0 none, 1 BASIC .. 3 STRONG)."""
    labels = _strings(_section(payload, "deviceIntegrity").get("deviceRecognitionVerdict"))
    return max((_DEVICE_LABELS.get(label, 0) for label in labels), default=0)


def _equal(a: Any, b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def evaluate(payload: dict[str, Any], expect: Expectations, now: datetime) -> list[str]:
    """Names of the stateless checks ``payload`` fails, in a fixed order (empty: all pass).

    ``now`` is aware UTC. Missing or mistyped fields fail their check; nothing raises.
    """
    details = _section(payload, "requestDetails")
    app = _section(payload, "appIntegrity")
    failed: list[str] = []
    if not _equal(details.get("requestPackageName"), expect.package_name):
        failed.append(PACKAGE_NAME)
    request_hash = details.get("requestHash")
    if expect.request_hash is not None and not _equal(request_hash.rstrip("=") if isinstance(request_hash, str) else None,
                                                      expect.request_hash):
        failed.append(REQUEST_HASH)
    issued = token_time(payload)
    if (issued is None or now - issued > timedelta(seconds=expect.max_age_seconds)
            or issued - now > timedelta(seconds=CLOCK_SKEW_SECONDS)):
        failed.append(TIMESTAMP)
    if app.get("appRecognitionVerdict") != "PLAY_RECOGNIZED":
        failed.append(APP_RECOGNIZED)
    digests = {digest.rstrip("=") for digest in _strings(app.get("certificateSha256Digest"))}
    if not digests & expect.cert_digests:
        failed.append(CERTIFICATE_DIGEST)
    if device_level(payload) < DEVICE_LEVELS[expect.min_device]:
        failed.append(DEVICE_INTEGRITY)
    if expect.require_licensed and _section(payload, "accountDetails").get("appLicensingVerdict") != "LICENSED":
        failed.append(APP_LICENSED)
    failed.extend(_newer_verdicts(payload, app, expect))
    return failed


def _newer_verdicts(payload: dict[str, Any], app: dict[str, Any], expect: Expectations) -> list[str]:
    """The configurable checks of the newer verdict fields, in a fixed order."""
    environment = _section(payload, "environmentDetails")
    failed = []
    if not _equal(app.get("packageName"), expect.package_name):
        failed.append(APP_PACKAGE)
    version = app.get("versionCode")
    if expect.min_version_code and not (isinstance(version, (str, int)) and not isinstance(version, bool)
                                        and str(version).isdigit() and int(version) >= expect.min_version_code):
        failed.append(VERSION_CODE)
    if expect.require_play_protect and environment.get("playProtectVerdict") != "NO_ISSUES":
        failed.append(PLAY_PROTECT)
    if expect.refuse_risky_apps:
        risk = environment.get("appAccessRiskVerdict")
        detected = _strings(risk.get("appsDetected")) if isinstance(risk, dict) else None
        if detected is None or RISKY_APPS & set(detected):
            failed.append(APP_ACCESS_RISK)
    if expect.max_activity_level:
        activity = _section(_section(payload, "deviceIntegrity"), "recentDeviceActivity").get("deviceActivityLevel")
        if ACTIVITY_LEVELS.get(activity, 99) > ACTIVITY_LEVELS[expect.max_activity_level]:
            failed.append(DEVICE_ACTIVITY)
    if _section(payload, "testingDetails").get("isTestingResponse") is True and not expect.allow_testing:
        failed.append(TESTING_RESPONSE)
    return failed


def summarize(payload: dict[str, Any], request_type: str) -> dict[str, Any]:
    """The verdict as TrustGate reports and stores it (no nonce, hash or other request data)::

        {"request_type": "classic" | "standard", "package_name", "token_time": iso | None,
         "app_recognition", "device_recognition": [labels], "app_licensing", "app_package",
         "version_code", "play_protect", "apps_detected": [labels], "device_activity", "testing"}
    """
    issued = token_time(payload)
    app, environment = _section(payload, "appIntegrity"), _section(payload, "environmentDetails")
    risk = environment.get("appAccessRiskVerdict")
    return {
        "request_type": request_type,
        "package_name": _text(_section(payload, "requestDetails").get("requestPackageName")),
        "token_time": to_iso(issued) if issued else None,
        "app_recognition": _text(_section(payload, "appIntegrity").get("appRecognitionVerdict")),
        "device_recognition": _strings(_section(payload, "deviceIntegrity").get("deviceRecognitionVerdict"))[:8],
        "app_licensing": _text(_section(payload, "accountDetails").get("appLicensingVerdict")),
        "app_package": _text(app.get("packageName")),
        "version_code": _text(str(app["versionCode"])) if isinstance(app.get("versionCode"), (str, int)) else None,
        "play_protect": _text(environment.get("playProtectVerdict")),
        "apps_detected": _strings(risk.get("appsDetected"))[:8] if isinstance(risk, dict) else [],
        "device_activity": _text(_section(_section(payload, "deviceIntegrity"), "recentDeviceActivity").get("deviceActivityLevel")),
        "testing": _section(payload, "testingDetails").get("isTestingResponse") is True,
    }


def _text(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) else None
