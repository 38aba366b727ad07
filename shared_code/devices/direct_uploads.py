"""Direct-to-blob uploads, the grant side: authorise one exact file, hand out a narrowly scoped
upload URL, renew it, report the grant's state.

The model is IoT Hub file upload / S3 presigned URLs: the device proves (signature or App Attest
assertion, :mod:`shared_code.devices.proofs`) that it wants to upload the bytes with this SHA-256,
size and content type; the backend answers with a SAS for one staging blob (create + write
only); the device sends the bytes straight to Blob Storage in blocks; the staging blob trigger
(:mod:`shared_code.devices.upload_verifier`) verifies what arrived before anyone may see it.

A grant is the file's record in container ``files`` (partition ``/deviceid``, id = upload_id =
file_id), so granting is one atomic create and ``/api/files`` lists the file as ``pending``::

    {"id", "deviceid", "blob_name": "{deviceid}/{id}" (uploads container, once verified), "name",
     "size": bytes, "content_type", "sha256": hex, "status": "pending" | "verified" |
     "digest_mismatch" | "size_mismatch" | "expired" | "cancelled" | "device_revoked",
     "uploaded_at": iso (granted), "verified_at",
     "upload": {"staging_blob": "{deviceid}/{id}", "deadline": iso, "block_size": bytes, "slot": n,
                "observed_size"?, "observed_sha256"?},
     "expires_at": iso, "ttl": seconds}         # all but verified records: the purge convention

``upload_id`` is derived from (device, challenge): one challenge yields at most one grant, and a
retried request finds the grant it created. Writes, in order: slot (``upload_slots``) → the
audit entry ``upload_authorized`` (path ``direct``) → grant (conditional create) → consume the
challenge. Each prefix is safe: a slot without a grant (also when the log write failed: 503) is
reclaimed (:mod:`shared_code.devices.upload_slots`); a grant whose challenge was not yet consumed
is found again by the retry, which then consumes it; until then the challenge could still serve
one other action of the same device, never a second grant.

A grant is ``cancelled`` when its device is revoked (:mod:`shared_code.devices.lifecycle`): its
staged blob is deleted and the verifier refuses anything staged for it later. A grant made by a
request in flight during the revocation re-reads the device after its create and cancels itself.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared_code.audit import trail
from shared_code.devices import challenges, files, gates, proofs, registry, upload_slots
from shared_code.platform import blob_access, blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.direct_uploads")

MESSAGE_PREFIX = "direct-upload:"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
BLOCK_BYTES = 8 * 1024 * 1024  # Azure's high-throughput block blob range, and the client's read size
MAX_BLOCKS = 50_000  # Put Block List limit
RETENTION = timedelta(days=7)  # how long a grant that did not become a file stays queryable
PENDING = "pending"
CANCELLED = "cancelled"
TERMINAL_STATES = ("verified", "digest_mismatch", "size_mismatch", "expired", CANCELLED)


@dataclass(frozen=True)
class GrantRequest:
    """What the device asks to upload: display name, exact size (bytes), SHA-256 (lowercase
    hex), content type, and its proof (``signature``, base64) over a fresh ``challenge``."""

    file_name: str
    size: int
    sha256: str
    content_type: str
    challenge: str
    signature: str


def upload_message(challenge: str, sha256_hex: str, size: int, content_type: str) -> bytes:
    """The bytes a device signs to ask for a direct upload: UTF-8 of
    ``direct-upload:{challenge}:{sha256 hex}:{size}:{content_type}``, binding the exact bytes,
    their length and type to one single-use challenge."""
    return f"{MESSAGE_PREFIX}{challenge}:{sha256_hex}:{size}:{content_type}".encode("utf-8")


def upload_id_for(deviceid: str, challenge: str) -> str:
    """The grant id for ``challenge`` of ``deviceid``: 32 hex characters of SHA-256 (not secret)."""
    return hashlib.sha256(f"direct-upload-id:{deviceid}:{challenge}".encode("utf-8")).hexdigest()[:32]


def block_size_for(size: int) -> int:
    """The block size (bytes) the device must use: :data:`BLOCK_BYTES`, or the smallest whole
    MiB that keeps ``size`` within :data:`MAX_BLOCKS` blocks."""
    mib = 1024 * 1024
    needed = -(-size // MAX_BLOCKS)
    return max(BLOCK_BYTES, -(-needed // mib) * mib)


def staging_blob_name(deviceid: str, upload_id: str) -> str:
    """The grant's blob in ``UPLOAD_STAGING_CONTAINER`` (the only blob its upload URL can write)."""
    return f"{deviceid}/{upload_id}"


def is_grant(record: dict[str, Any] | None) -> bool:
    """Whether a ``files`` record is a direct-upload grant (not an ``/upload-file`` record)."""
    return bool(record) and isinstance(record.get("upload"), dict)


def state_of(record: dict[str, Any], now: datetime | None = None) -> str:
    """The grant's state: its status, except ``expired`` for a pending grant past its deadline
    (readers check the deadline; the sweep records it later). Same rule as the listing."""
    return files.file_status(record, now)


def view(record: dict[str, Any]) -> dict[str, Any]:
    """The grant as the API shows it: ``{upload_id, file_id, state, name, size, sha256,
    content_type, block_size, created_at, grant_expires_at, verified_at}``."""
    return {
        "upload_id": record["id"], "file_id": record["id"], "state": state_of(record), "name": record["name"],
        "size": record["size"], "sha256": record["sha256"], "content_type": record["content_type"],
        "block_size": record["upload"]["block_size"], "created_at": record["uploaded_at"],
        "grant_expires_at": record["upload"]["deadline"], "verified_at": record.get("verified_at"),
    }


def read_grant(deviceid: str, upload_id: str) -> dict[str, Any] | None:
    """The grant record ``upload_id`` of ``deviceid`` (``None`` if there is none: ids of other
    devices are never found, they live in other partitions)."""
    if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
        return None
    record = cosmos.read_item(cosmos.FILES, upload_id, deviceid)
    return record if is_grant(record) else None


def pending_grants(deviceid: str) -> list[dict[str, Any]]:
    """Every grant of ``deviceid`` still in status ``pending`` (deadline passed or not), for
    lifecycle operations such as cancelling a revoked device's uploads."""
    items, _ = cosmos.query_page(
        cosmos.FILES, "SELECT * FROM c WHERE c.deviceid = @deviceid AND c.status = @pending AND IS_DEFINED(c.upload)",
        [{"name": "@deviceid", "value": deviceid}, {"name": "@pending", "value": PENDING}],
        partition_key=deviceid, page_size=1000, continuation=None,
    )
    return items


def create_grant(device: dict[str, Any], request: GrantRequest) -> tuple[dict[str, Any], str, datetime]:
    """Authorise ``request`` for ``device``; returns ``(grant record, upload_url, url expiry)``.

    Order: upload gates (:func:`shared_code.devices.gates.require_upload_allowed`) → type, size,
    digest → proof over :func:`upload_message` (:func:`shared_code.devices.proofs.verify_request_proof`)
    → an existing grant for this challenge is answered again (retry) → live challenge → slot →
    audit entry → grant create → challenge consumed. Raises ``Forbidden`` (403: gates), ``BadRequest`` 400
    ``file_type_not_allowed`` / ``invalid_field`` / ``invalid_signature_encoding``,
    ``PayloadTooLarge`` 413 ``file_too_large``, ``Unauthorized`` 401 ``invalid_signature`` /
    ``invalid_challenge``, ``Conflict`` 409 ``upload_not_pending`` (a retry of a grant that is
    already verified, refused or expired), ``TooManyRequests`` 429 ``too_many_pending_uploads``,
    ``ServiceUnavailable`` 503. A retry of the same signed request after a 503 returns the grant.
    """
    settings = get_settings()
    gates.require_upload_allowed(device)
    content_type = request.content_type.strip().lower()
    if content_type not in settings.allowed_content_types:
        raise BadRequest("file_type_not_allowed", f"content type {content_type!r} is not accepted")
    if not SHA256_PATTERN.fullmatch(request.sha256):
        raise BadRequest("invalid_field", "sha256 must be 64 lowercase hex characters")
    if request.size < 1:
        raise BadRequest("invalid_field", "size must be at least 1 byte")
    if request.size > settings.max_direct_upload_bytes:
        raise PayloadTooLarge("file_too_large", f"direct uploads may be at most {settings.max_direct_upload_bytes} bytes")
    message = upload_message(request.challenge, request.sha256, request.size, content_type)
    device = proofs.verify_request_proof(device, message, request.signature, "signature")
    deviceid = device["id"]
    if not challenges.CHALLENGE_PATTERN.fullmatch(request.challenge):
        raise Unauthorized("invalid_challenge", "the challenge is malformed")
    upload_id = upload_id_for(deviceid, request.challenge)

    existing = cosmos.read_item(cosmos.FILES, upload_id, deviceid)
    if existing is None:
        challenges.require_live_challenge(deviceid, request.challenge)
        now = utc_now()
        deadline = now + timedelta(seconds=settings.upload_grant_ttl_seconds)
        slot = upload_slots.acquire(deviceid, upload_id, deadline, lambda other: _still_held(deviceid, other))
        record = _new_record(deviceid, upload_id, request, content_type, now, deadline, slot)
        trail.record("upload_authorized", actor=trail.device_actor(deviceid), objects=files.audit_objects(record, "direct"))
        try:
            existing = cosmos.create_item(cosmos.FILES, record)
            log.info("direct upload granted: device=%s upload=%s size=%d", deviceid, upload_id, request.size)
        except cosmos.AlreadyExists:  # a concurrent copy of this request created it first
            existing = cosmos.read_item(cosmos.FILES, upload_id, deviceid)
    if not is_grant(existing) or (existing["sha256"], existing["size"], existing["content_type"]) != (
            request.sha256, request.size, content_type):
        raise Unauthorized("invalid_challenge", "the challenge was already used for another upload")
    _consume(deviceid, request.challenge)
    _settle_grant(existing)
    if state_of(existing) != PENDING:
        raise Conflict("upload_not_pending", f"this upload is already {state_of(existing)}")
    url, expiry = _upload_url(existing)
    return existing, url, expiry


def _settle_grant(record: dict[str, Any]) -> None:
    """After the grant's create: re-read the device; if it was revoked meanwhile (the revocation
    may have looked for pending grants before this one existed), cancel the grant and raise
    :class:`~shared_code.platform.errors.Forbidden` ``device_revoked`` (403)."""
    device = registry.read_device(record["deviceid"])
    if device is not None and registry.status(device) == registry.REVOKED:
        from shared_code.devices import upload_verifier  # it imports this module

        upload_verifier.cancel_grant(record)
        raise Forbidden("device_revoked", "this device was revoked; the upload was not granted")


def _new_record(deviceid: str, upload_id: str, request: GrantRequest, content_type: str,
                now: datetime, deadline: datetime, slot: int) -> dict[str, Any]:
    record = files._file_record(  # same shape as /upload-file records, so the listing shows both
        deviceid, upload_id, files.clean_filename(request.file_name), request.size, content_type,
        request.sha256, PENDING, to_iso(now),
    )
    record["upload"] = {"staging_blob": staging_blob_name(deviceid, upload_id), "deadline": to_iso(deadline),
                        "block_size": block_size_for(request.size), "slot": slot}
    return with_expiry(record, deadline + RETENTION)


def with_expiry(record: dict[str, Any], expires_at: datetime) -> dict[str, Any]:
    """``record`` marked for the purge timer (``expires_at``) and Cosmos TTL (``ttl``, seconds)."""
    record["expires_at"] = to_iso(expires_at)
    record["ttl"] = max(int((expires_at - utc_now()).total_seconds()), 1)
    return record


def _still_held(deviceid: str, slot: dict[str, Any]) -> bool:
    """Whether another request's upload ``slot`` counts: its grant is pending, or not created yet
    by a request that may still be running (:func:`shared_code.devices.upload_slots.taken_recently`)."""
    record = read_grant(deviceid, slot["upload_id"])
    if record is None:
        return upload_slots.taken_recently(slot)
    return state_of(record) == PENDING


def _consume(deviceid: str, challenge: str) -> None:
    try:
        challenges.consume_challenge(deviceid, challenge)
    except Unauthorized:
        pass  # consumed by an earlier attempt of this request (or it expired since): the grant stands


def _upload_url(record: dict[str, Any]) -> tuple[str, datetime]:
    settings = get_settings()
    expiry = min(utc_now() + timedelta(seconds=settings.upload_sas_ttl_seconds), from_iso(record["upload"]["deadline"]))
    return blob_access.upload_url(settings.upload_staging_container, record["upload"]["staging_blob"], expiry), expiry


def get_grant(device: dict[str, Any], upload_id: str) -> dict[str, Any]:
    """:func:`view` of ``device``'s grant ``upload_id``. Raises ``NotFound`` 404 ``upload_not_found``
    (also for another device's grant), ``ServiceUnavailable``."""
    record = read_grant(device["id"], upload_id)
    if record is None:
        raise NotFound("upload_not_found", "no such upload for this device")
    return view(record)


def renew_grant(device: dict[str, Any], upload_id: str) -> dict[str, Any]:
    """A new upload URL for ``device``'s pending, unexpired grant, and what is already staged, so
    an interrupted upload resumes: ``{upload_url, expires_at, block_size, committed: bool,
    staged_blocks: [{id, size}]}`` (uncommitted blocks as Get Block List reports them; the
    device's SAS cannot read the block list itself). Writes only the audit entry
    ``upload_authorized`` (path ``direct-renewal``) before the new URL is made.

    Applies the upload gates again. Raises ``NotFound`` 404 ``upload_not_found``, ``Conflict``
    409 ``upload_not_pending`` (verified, refused or expired), ``Forbidden`` 403, ``ServiceUnavailable``.
    """
    gates.require_upload_allowed(device)
    record = read_grant(device["id"], upload_id)
    if record is None:
        raise NotFound("upload_not_found", "no such upload for this device")
    if state_of(record) != PENDING:
        raise Conflict("upload_not_pending", f"this upload is already {state_of(record)}")
    committed, staged = _staged_blocks(record["upload"]["staging_blob"])
    trail.record("upload_authorized", actor=trail.device_actor(device["id"]), objects=files.audit_objects(record, "direct-renewal"))
    url, expiry = _upload_url(record)
    return {"upload_url": url, "expires_at": to_iso(expiry), "block_size": record["upload"]["block_size"],
            "committed": committed, "staged_blocks": staged}


def _staged_blocks(blob_name: str) -> tuple[bool, list[dict[str, Any]]]:
    client = blobs.container_client(get_settings().upload_staging_container).get_blob_client(blob_name)
    with blobs.storage_errors("block list"):
        try:
            committed, uncommitted = client.get_block_list("all")
        except ResourceNotFoundError:
            return False, []
    return bool(committed), [{"id": block.id, "size": block.size} for block in uncommitted]
