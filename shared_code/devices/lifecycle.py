"""Device lifecycle for operators: suspend, resume, revoke (with its cascade).

The status lives on the device record (``status``, ``status_reason``, ``status_changed_at``;
:mod:`shared_code.devices.registry`), which every device call reads (no cache), so a change holds
from the next request on, on every instance and worker process:

- **suspend**: every call answers ``403 device_suspended``; nothing is deleted. Direct uploads
  already granted are held by the verifier (the staged blob stays, no verdict).
- **resume**: back to ``active``; held direct uploads are queued for verification again
  (:func:`shared_code.devices.upload_verifier.requeue_held`).
- **revoke** (permanent): every call answers ``403 device_revoked``, and then the cascade of
  :mod:`shared_code.devices.cascade` runs: challenges deleted, pending direct uploads cancelled,
  files marked ``device_revoked``. The record stays, so the id can never be registered again;
  the device's latest Play Integrity verdict is dropped with the mark.

Every decision is recorded in the audit log before it takes effect (``device_suspended``,
``device_resumed``, ``device_revoked``; the operator's reason only as its SHA-256, the text
itself on the record), and the cascade's counts after it ran (``device_revocation_cascaded``).

Crash safety of :func:`revoke_device`, step by step (a timeout is not a rollback: a write may
land later): (1) the audit entry: if the process dies here nothing changed and a retry decides
again; (2) the mark, one etag-guarded replace: from the moment it lands (also after a timeout,
when the caller saw 503) no credential of the device works; (3) the cascade steps, each
idempotent: a failure part-way answers 503 and leaves the device revoked with part of the cleanup
done; a retry (``revoke`` again) finds the device revoked, skips (1) and (2) and completes (3).
Requests in flight during the mark cannot slip through: every write that commits a file or a
grant re-reads the device afterwards (:func:`shared_code.devices.files.settle_after_commit`), and
the cascade reads after the mark, so with Cosmos DB's strong consistency one of them sees the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from shared_code.audit import trail
from shared_code.devices import cascade, direct_uploads, registry, upload_verifier
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import Conflict, NotFound, ServiceUnavailable
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.lifecycle")

MAX_REASON_CHARS = 500
MAX_WRITE_RACES = 8
OPERATOR, ATTESTATION = "operator", "attestation"


@dataclass
class Revocation:
    """What :func:`revoke_device` did (or, for a dry run, would do): the record as it stands, the
    counts per kind, whether the device was revoked before this call."""

    device: dict[str, Any]
    summary: dict[str, int] = field(default_factory=dict)
    already_revoked: bool = False
    dry_run: bool = False


def read_device(deviceid: str) -> dict[str, Any]:
    """The record of ``deviceid``. Raises :class:`NotFound` ``device_not_found`` (404), ServiceUnavailable."""
    device = registry.read_device(deviceid) if registry.DEVICE_ID_PATTERN.fullmatch(deviceid) else None
    if device is None:
        raise NotFound("device_not_found", "no device with this id is registered")
    return device


def reason_digest(reason: str) -> str:
    """The SHA-256 hex of an operator's reason: what the audit entry keeps (the text may name people)."""
    return sha256_hex(reason)


def _write_status(device: dict[str, Any], new_status: str, reason: str,
                  still_applies: Callable[[dict[str, Any]], bool], **changes: Any) -> dict[str, Any] | None:
    """Replace the record with ``status: new_status`` (and ``changes``, ``None`` dropping a field) on its etag; re-read after a
    lost race and write again while ``still_applies(current)``. Returns the stored record, or
    ``None`` when a concurrent change made the write moot. Raises ServiceUnavailable."""
    current: dict[str, Any] | None = device
    for _ in range(MAX_WRITE_RACES):
        if current is None or not still_applies(current):
            return None
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body.update(status=new_status, status_reason=reason, status_changed_at=to_iso(utc_now()))
        for name, value in changes.items():  # None removes the field
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        try:
            return cosmos.replace_item(cosmos.DEVICES, body, current["_etag"])
        except cosmos.EtagMismatch:
            current = registry.read_device(device["id"])
    raise ServiceUnavailable(detail=f"device {device['id']} kept changing, try again")


def _refuse_revoked(device: dict[str, Any]) -> None:
    if registry.status(device) == registry.REVOKED:
        raise Conflict("device_revoked", "the device is revoked; revocation is permanent")


def suspend_device(deviceid: str, reason: str) -> tuple[dict[str, Any], bool]:
    """Suspend ``deviceid``; returns ``(record, changed)`` (``changed`` is ``False`` when it was
    suspended already: a retry). Audited (``device_suspended``) before the write.

    Raises :class:`NotFound` ``device_not_found``, :class:`Conflict` ``device_revoked`` (409),
    ServiceUnavailable (503: nothing changed, or the write landed after the timeout; a retry
    answers 200 either way).
    """
    device = read_device(deviceid)
    _refuse_revoked(device)
    if registry.status(device) == registry.SUSPENDED:
        return device, False
    trail.record("device_suspended", actor=trail.OPERATOR, objects={"device": deviceid, "reason_sha256": reason_digest(reason)})
    stored = _write_status(device, registry.SUSPENDED, reason, lambda d: registry.status(d) == registry.ACTIVE)
    if stored is None:  # revoked or suspended meanwhile
        current = read_device(deviceid)
        _refuse_revoked(current)
        return current, False
    security_event("device_suspended", level=logging.WARNING, deviceid=deviceid)
    return stored, True


def resume_device(deviceid: str, reason: str) -> tuple[dict[str, Any], bool, int]:
    """Make a suspended ``deviceid`` active again; returns ``(record, changed, uploads requeued)``.
    Audited (``device_resumed``) before the write. Direct uploads the verifier held while the
    device was suspended are queued for verification again (also when the device was active
    already, so a retry after a failure there completes it).

    Raises :class:`NotFound`, :class:`Conflict` ``device_revoked`` (409), ServiceUnavailable.
    """
    device = read_device(deviceid)
    _refuse_revoked(device)
    changed = False
    if registry.status(device) == registry.SUSPENDED:
        trail.record("device_resumed", actor=trail.OPERATOR, objects={"device": deviceid, "reason_sha256": reason_digest(reason)})
        stored = _write_status(device, registry.ACTIVE, reason, lambda d: registry.status(d) == registry.SUSPENDED)
        device = stored or read_device(deviceid)
        _refuse_revoked(device)
        changed = stored is not None
        if changed:
            security_event("device_resumed", deviceid=deviceid)
    requeued = sum(upload_verifier.requeue_held(grant) for grant in direct_uploads.pending_grants(deviceid))
    return device, changed, requeued


def revoke_device(deviceid: str, reason: str, *, dry_run: bool = False, source: str = OPERATOR,
                  serial: str | None = None) -> Revocation:
    """Revoke ``deviceid`` for good and run the cascade; returns the :class:`Revocation`.

    ``dry_run``: nothing is written (no audit entry either); the summary counts what a real run
    would touch now. ``source`` ``operator`` or ``attestation`` (a revoked certificate ``serial``
    in the stored chain, :mod:`shared_code.devices.attestation.sweep`). Summary keys:
    ``challenges_deleted``, ``uploads_cancelled``, ``integrity_dropped`` (0 or 1), ``files_marked``.

    Idempotent: revoking a revoked device answers with ``already_revoked`` and completes whatever
    the cascade had left. Raises :class:`NotFound` ``device_not_found``, ServiceUnavailable (503:
    see the module docstring; a retry completes it).
    """
    device = read_device(deviceid)
    already = registry.status(device) == registry.REVOKED
    summary = {"challenges_deleted": 0, "uploads_cancelled": 0, "integrity_dropped": 0, "files_marked": 0}
    if dry_run:
        summary.update(challenges_deleted=cascade.delete_challenges(deviceid, dry_run=True),
                       uploads_cancelled=cascade.cancel_uploads(deviceid, dry_run=True),
                       integrity_dropped=int(not already and bool(device.get("integrity"))),
                       files_marked=cascade.mark_files(deviceid, dry_run=True))
        return Revocation(device, summary, already, dry_run=True)
    if not already:
        objects = {"device": deviceid, "reason_sha256": reason_digest(reason), "source": source}
        if serial:
            objects["serial"] = serial
        trail.record("device_revoked", actor=trail.OPERATOR, objects=objects)
        had_integrity = bool(device.get("integrity"))
        stored = _write_status(device, registry.REVOKED, reason, lambda d: registry.status(d) != registry.REVOKED,
                               previous_status=registry.status(device), revoked_by=source, integrity=None)
        already = stored is None  # a concurrent revocation landed first
        device = stored or read_device(deviceid)
        summary["integrity_dropped"] = int(had_integrity and not already)
        if not already:
            security_event("device_revoked", level=logging.WARNING, deviceid=deviceid, source=source)
    summary["challenges_deleted"] = cascade.delete_challenges(deviceid)
    summary["uploads_cancelled"] = cascade.cancel_uploads(deviceid)
    summary["files_marked"] = cascade.mark_files(deviceid)
    trail.record("device_revocation_cascaded", actor=trail.OPERATOR, objects={"device": deviceid, **summary})
    device = _mark_completed(device)
    log.info("device %s revoked (%s): %s", deviceid, source, summary)
    return Revocation(device, summary, already)


def _mark_completed(device: dict[str, Any]) -> dict[str, Any]:
    """Note on the revoked record that its cascade ran to the end (``revocation_completed_at``),
    so :func:`complete_interrupted` and the attestation sweep leave it alone. Raises ServiceUnavailable."""
    current = device
    for _ in range(MAX_WRITE_RACES):
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body["revocation_completed_at"] = to_iso(utc_now())
        try:
            return cosmos.replace_item(cosmos.DEVICES, body, current["_etag"])
        except cosmos.EtagMismatch:
            current = read_device(device["id"])
    raise ServiceUnavailable(detail=f"device {device['id']} kept changing, try again")


def revocation_complete(device: dict[str, Any]) -> bool:
    """Whether ``device`` is revoked and its cascade ran to the end."""
    return registry.status(device) == registry.REVOKED and bool(device.get("revocation_completed_at"))


INTERRUPTED_QUERY = ("SELECT c.id FROM c WHERE c.status = @revoked AND NOT IS_DEFINED(c.revocation_completed_at) "
                     "AND c.status_changed_at < @before")


def complete_interrupted(limit: int = 20, grace_seconds: int = 300) -> int:
    """Finish the cascades of revocations interrupted at least ``grace_seconds`` ago (an operator who
    got a 503 and never retried): the purge timer's backstop. Returns how many were completed;
    raises ServiceUnavailable (the next run continues)."""
    before = to_iso(utc_now() - timedelta(seconds=grace_seconds))
    items = cosmos.query_first(cosmos.DEVICES, INTERRUPTED_QUERY, [{"name": "@revoked", "value": registry.REVOKED},
                                                                   {"name": "@before", "value": before}], limit)
    for item in items:
        current = read_device(item["id"])
        revoke_device(item["id"], current.get("status_reason") or "interrupted revocation completed",
                      source=current.get("revoked_by") or OPERATOR)
    return len(items)


def operator_view(device: dict[str, Any]) -> dict[str, Any]:
    """A device as operators see it: the device's own view plus status and key history (never
    the token hash, never evidence bytes)."""
    view = registry.public_view(device)
    view.update(status_reason=device.get("status_reason"), status_changed_at=device.get("status_changed_at"),
                token_rotated_at=device.get("token_rotated_at"),
                key_history=[{k: entry.get(k) for k in ("key_type", "trust_level", "format", "attested_at", "retired_at")}
                             for entry in device.get("key_history") or ()])
    return view
