"""The revocation sweep: refresh the status list, re-check every stored Android chain.

Run by the timer ``refresh_attestation_status`` (``%ANDROID_ATTESTATION_STATUS_SCHEDULE%``).
Devices attested with ``android-key`` keep their raw chain (``evidence.certificate_chain``); the
sweep reads them page by page (cross-partition query, :data:`PAGE_SIZE` a page), takes each
chain's certificate serials and, where one is now REVOKED or SUSPENDED, sets the record's
``trust_level`` to ``revoked`` (with ``revoked: {at, serials}``) by a conditional replace and logs
the security event ``attestation_revoked``. A revoked device is refused by every gate.

Each revocation is recorded in the audit log (``device_trust_revoked``) before it is written.

Crash safety: each device is one conditional replace; a run that stops part-way leaves the
devices it did not reach unchanged, and the next run (or a retry) re-checks them. Revoking twice
is harmless (already revoked devices are skipped).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from shared_code.audit import trail
from shared_code.devices.attestation import status_list
from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.attestation")

PAGE_SIZE = 100
MAX_PAGES = 1000
QUERY = ("SELECT c.id, c.evidence FROM c WHERE c.evidence.format = 'android-key' "
         "AND c.trust_level != 'revoked'")


@dataclass
class SweepReport:
    """Devices checked, the ids revoked by this run, and ids that could not be updated."""

    checked: int = 0
    revoked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def chain_serials(evidence: dict) -> set[str]:
    """Lower-case hex serials of a stored chain (certificates that no longer parse are skipped)."""
    serials = set()
    for text in evidence.get("certificate_chain") or []:
        try:
            serials.add(format(x509.load_der_x509_certificate(base64.b64decode(text)).serial_number, "x"))
        except ValueError:
            log.warning("a stored attestation certificate no longer parses")
    return serials


def _revoke(deviceid: str, serials: list[str], now: datetime, attempts: int = 3) -> bool:
    """Set one device's ``trust_level`` to ``revoked``; ``False`` when it is gone or already revoked.

    The decision is recorded once in the audit log before the first write; the conditional
    replace is retried on a lost race (re-read each time). Raises ServiceUnavailable.
    """
    current = cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)
    if current is None or current.get("trust_level") == "revoked":
        return False
    trail.record("device_trust_revoked", actor=trail.OPERATOR, outcome=trail.REFUSED, failed_checks=["revoked"],
                 objects={"device": deviceid, "serials": ",".join(serials)[:512]})
    for _ in range(attempts):
        try:
            cosmos.replace_item(cosmos.DEVICES, {**current, "trust_level": "revoked",
                                                 "revoked": {"at": to_iso(now), "serials": serials}}, current["_etag"])
        except cosmos.EtagMismatch:
            current = cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)
            if current is None or current.get("trust_level") == "revoked":
                return False
            continue
        security_event("attestation_revoked", level=logging.WARNING, deviceid=deviceid, serials=serials)
        return True
    raise ServiceUnavailable(detail=f"device {deviceid} kept changing during the revocation sweep")


def recheck_devices(refused: frozenset[str], now: datetime) -> SweepReport:
    """Revoke every attested Android device whose stored chain holds a serial in ``refused``."""
    report = SweepReport()
    continuation = None
    for _ in range(MAX_PAGES):
        items, continuation = cosmos.query_page(cosmos.DEVICES, QUERY, [], partition_key=None,
                                                page_size=PAGE_SIZE, continuation=continuation)
        for item in items:
            report.checked += 1
            listed = sorted(chain_serials(item.get("evidence") or {}) & refused)
            if not listed:
                continue
            try:
                if _revoke(item["id"], listed, now):
                    report.revoked.append(item["id"])
            except ServiceUnavailable:
                report.failed.append(item["id"])
        if not continuation:
            break
    return report


def refresh_and_recheck(now: datetime | None = None) -> SweepReport:
    """Fetch the status list now (raises :class:`~shared_code.devices.attestation.status_list.StatusListUnavailable`
    when it cannot be had, changing nothing) and re-check every stored chain against it."""
    now = now or utc_now()
    fresh = status_list.default_cache().refresh(now)
    return recheck_devices(fresh.refused, now)
