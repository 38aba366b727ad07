"""The revocation sweep: refresh the status list, re-check every stored attestation chain; and the
operator's cascade by one revoked certificate (``POST /operator/attestation/revoke-intermediate``).

Run by the timer ``refresh_attestation_status`` (``%ANDROID_ATTESTATION_STATUS_SCHEDULE%``).
Devices attested with ``android-key`` keep their raw chain (``evidence.certificate_chain``), those
attested with ``apple-appattest`` their attestation object (its ``x5c``); the
sweep reads them page by page (cross-partition query, :data:`PAGE_SIZE` a page), takes each
chain's certificate serials and, where one is now REVOKED or SUSPENDED (or is the serial an
operator names, :func:`revoke_certificate`), acts by ``ATTESTATION_REVOCATION_ACTION``:

- ``downgrade`` (default): the record's ``trust_level`` becomes ``revoked`` (with ``revoked: {at,
  serials}``) by a conditional replace, with the security event ``attestation_revoked``; the
  upload gates refuse the device, which may still call;
- ``revoke``: the device itself is revoked, with the whole cascade
  (:func:`shared_code.devices.lifecycle.revoke_device`, source ``attestation``).

Each downgrade is recorded in the audit log (``device_trust_revoked``) before it is written; a
revocation records its own entries; an operator's cascade records
``attestation_certificate_revoked`` first.

Crash safety: each device is one conditional replace (or one idempotent revocation); a run that
stops part-way leaves the devices it did not reach unchanged, and the next run (or a retry)
re-checks them. Acting twice is harmless (devices already downgraded or revoked are skipped).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime

import re
from typing import Iterator

from cryptography import x509

from shared_code.audit import trail
from shared_code.devices import lifecycle, registry
from shared_code.devices.attestation import apple, status_list
from shared_code.devices.attestation.results import APPLE_APPATTEST
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest, ServiceUnavailable
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.attestation")

PAGE_SIZE = 100
MAX_PAGES = 1000
# Every stored chain (Google's list names Android certificates only; an operator may name an
# Apple one); what to skip is decided per action (trust already revoked for a
# downgrade, the device already revoked for a revocation), so the query never filters on a field
# the sweep changes while it pages.
QUERY = ("SELECT c.id, c.evidence, c.trust_level, c.status, c.revocation_completed_at FROM c "
         "WHERE c.evidence.format = 'android-key' OR c.evidence.format = 'apple-appattest'")
DOWNGRADE, REVOKE = "downgrade", "revoke"
ACTIONS = (DOWNGRADE, REVOKE)
SERIAL_PATTERN = re.compile(r"[0-9A-Fa-f]{1,64}|[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{2}){0,31}")
MAX_LISTED = 1000


@dataclass
class SweepReport:
    """Devices checked, the ids acted on by this run (``revoked``: downgraded or revoked, by
    ``action``), the ids that matched, ids that could not be updated, and the cascade's counts
    summed over the devices (``revoke`` only)."""

    checked: int = 0
    revoked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    action: str = DOWNGRADE
    cascaded: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """Counts per kind: ``devices_matched``, ``devices_downgraded`` / ``devices_revoked``, ``devices_failed``
        and, for ``revoke``, the cascade's ``challenges_deleted``, ``uploads_cancelled``, ``integrity_dropped``,
        ``files_marked``."""
        acted = "devices_revoked" if self.action == REVOKE else "devices_downgraded"
        return {"devices_matched": len(self.matched), acted: len(self.revoked), "devices_failed": len(self.failed),
                **self.cascaded}


def chain_serials(evidence: dict) -> set[str]:
    """Lower-case hex serials of a stored chain: an ``android-key`` ``certificate_chain``, or the
    ``x5c`` of an ``apple-appattest`` attestation object (certificates that no longer parse are
    skipped)."""
    serials = set()
    if evidence.get("format") == APPLE_APPATTEST:
        try:
            certificates = apple.attestation_certificates(base64.b64decode(evidence.get("attestation_object") or ""))
        except ValueError:
            log.warning("a stored App Attest attestation object no longer parses")
            return serials
        return {format(c.serial_number, "x") for c in certificates}
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
    current = registry.read_device(deviceid)
    if current is None or current.get("trust_level") == "revoked" or registry.status(current) == registry.REVOKED:
        return False
    trail.record("device_trust_revoked", actor=trail.OPERATOR, outcome=trail.REFUSED, failed_checks=["revoked"],
                 objects={"device": deviceid, "serials": ",".join(serials)[:512]})
    for _ in range(attempts):
        try:
            cosmos.replace_item(cosmos.DEVICES, {**current, "trust_level": "revoked",
                                                 "revoked": {"at": to_iso(now), "serials": serials}}, current["_etag"])
        except cosmos.EtagMismatch:
            current = registry.read_device(deviceid)
            if current is None or current.get("trust_level") == "revoked" or registry.status(current) == registry.REVOKED:
                return False
            continue
        security_event("attestation_revoked", level=logging.WARNING, deviceid=deviceid, serials=serials)
        return True
    raise ServiceUnavailable(detail=f"device {deviceid} kept changing during the revocation sweep")


def normalize_serial(raw: str) -> str:
    """A certificate serial as the stored chains are compared: lowercase hex without leading zeros
    (``0A:1b`` → ``a1b``). Accepts plain hex (up to 64 digits) or colon-separated octets (up to
    32, as ``openssl x509 -serial`` / certificate viewers print them; RFC 5280 §4.1.2.2 allows 20).
    Raises :class:`BadRequest` ``invalid_serial`` for anything else."""
    if not SERIAL_PATTERN.fullmatch(raw):
        raise BadRequest("invalid_serial", "serial must be a certificate serial number in hex (colons allowed)")
    return raw.replace(":", "").lower().lstrip("0") or "0"


def matching_devices(refused: frozenset[str]) -> Iterator[tuple[dict, list[str]]]:
    """``(device item, its listed serials)`` for every stored chain holding a serial of
    ``refused`` (the item has ``id``, ``evidence``, ``trust_level``, ``status``, ``revocation_completed_at``)."""
    continuation = None
    for _ in range(MAX_PAGES):
        items, continuation = cosmos.query_page(cosmos.DEVICES, QUERY, [], partition_key=None,
                                                page_size=PAGE_SIZE, continuation=continuation)
        for item in items:
            listed = sorted(chain_serials(item.get("evidence") or {}) & refused)
            yield item, listed
        if not continuation:
            return


def _pending(item: dict, action: str) -> bool:
    """Whether ``action`` still has to be taken on a matching device."""
    if action == REVOKE:
        return not lifecycle.revocation_complete(item)
    return registry.status(item) != registry.REVOKED and item.get("trust_level") != "revoked"


def recheck_devices(refused: frozenset[str], now: datetime, action: str | None = None, *,
                    dry_run: bool = False, reason: str | None = None) -> SweepReport:
    """Act by ``action`` (default ``ATTESTATION_REVOCATION_ACTION``) on every hardware-attested device
    whose stored chain holds a serial in ``refused``; a device that cannot be updated is listed in
    ``failed`` and the others are still done. ``dry_run`` counts without changing anything."""
    report = SweepReport(action=action or get_settings().attestation_revocation_action)
    for item, listed in matching_devices(refused):
        report.checked += 1
        if not listed or not _pending(item, report.action):
            continue
        report.matched.append(item["id"])
        try:
            if report.action == REVOKE:
                text = reason or f"attestation certificate {', '.join(listed)} revoked"
                outcome = lifecycle.revoke_device(item["id"], text[:lifecycle.MAX_REASON_CHARS], dry_run=dry_run,
                                                  source=lifecycle.ATTESTATION, serial=",".join(listed)[:512])
                for kind, count in outcome.summary.items():
                    report.cascaded[kind] = report.cascaded.get(kind, 0) + count
                if outcome.dry_run or not outcome.already_revoked:
                    report.revoked.append(item["id"])
            elif dry_run or _revoke(item["id"], listed, now):
                report.revoked.append(item["id"])
        except ServiceUnavailable:
            report.failed.append(item["id"])
    return report


def revoke_certificate(serial: str, action: str | None = None, *, dry_run: bool = False,
                       reason: str | None = None, now: datetime | None = None) -> SweepReport:
    """The operator's cascade by attestation evidence: act on every device whose stored chain
    holds the certificate ``serial`` (an intermediate whose key was compromised, say), as the
    sweep does for a serial the status list refuses. Audited (``attestation_certificate_revoked``,
    with the action) before any device is touched; ``dry_run`` writes nothing. Raises
    :class:`BadRequest` ``invalid_serial``, ServiceUnavailable (before any device was touched)."""
    normalized = normalize_serial(serial)
    chosen = action or get_settings().attestation_revocation_action
    if not dry_run:
        trail.record("attestation_certificate_revoked", actor=trail.OPERATOR,
                     objects={"serial": normalized, "action": chosen,
                              **({"reason_sha256": lifecycle.reason_digest(reason)} if reason else {})})
    return recheck_devices(frozenset({normalized}), now or utc_now(), chosen, dry_run=dry_run, reason=reason)


def refresh_and_recheck(now: datetime | None = None) -> SweepReport:
    """Fetch the status list now (raises :class:`~shared_code.devices.attestation.status_list.StatusListUnavailable`
    when it cannot be had, changing nothing) and re-check every stored chain against it."""
    now = now or utc_now()
    fresh = status_list.default_cache().refresh(now)
    return recheck_devices(fresh.refused, now)
