"""Device file uploads: signature-authorised upload, listing, and digest verification.

Blob ``{UPLOADS_CONTAINER}/{deviceid}/{file_id}`` holds the bytes (server-generated name, derived
from the upload's challenge by :func:`upload_file_id`; the client's file name is only metadata).
A record in container ``files`` (partition ``/deviceid``, id ``file_id``)::

    {"id": file_id, "deviceid", "blob_name", "name", "size": bytes, "content_type",
     "sha256": hex, "status": "uploaded" | "verified" | "digest_mismatch" | "device_revoked",
     "uploaded_at": iso, "verified_at": iso | None,
     "status_before_revocation"?: the status a revocation replaced, "revoked_at"?: iso}

Direct uploads (:mod:`shared_code.devices.direct_uploads`) add ``pending`` grants to the same
container; the listing shows them with the status :func:`file_status` gives.

A revoked device's files (:mod:`shared_code.devices.lifecycle`) are kept, blob and record, with
status ``device_revoked`` for the operator; the device itself can no longer call. Every write that
commits a file re-reads the device afterwards (:func:`settle_after_commit`), and the revocation
marks the device before it looks for files: with Cosmos DB's strong consistency one of the two
always sees the other, so no file committed by a request in flight during a revocation keeps a
live status.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from shared_code.audit import trail
from shared_code.devices import challenges, gates, proofs, registry
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.continuation import seal, unseal
from shared_code.platform.crypto import UnusableKey, load_device_public_key, sha256_hex, sha256_stream
from shared_code.platform.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
)
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.files")

UPLOAD_PREFIX = "upload:"
MAX_NAME_LENGTH = 255
DEVICE_REVOKED = "device_revoked"
# Concurrent writes of one file record (a revocation, the blob trigger) retry their etag-guarded write at most this often.
MAX_WRITE_RACES = 8


@dataclass(frozen=True)
class IncomingFile:
    """One uploaded file part: a seekable stream positioned anywhere, its client name and type."""

    stream: BinaryIO
    filename: str
    content_type: str


def upload_message(challenge: str, sha256_hex: str) -> bytes:
    """The bytes a device signs to upload a file: UTF-8 of ``upload:{challenge}:{sha256 hex}``.

    Binding the digest means a signature cannot be replayed with other bytes; binding the
    challenge (single use, issued to one device) means it cannot be replayed at all.
    """
    return f"{UPLOAD_PREFIX}{challenge}:{sha256_hex}".encode("utf-8")


def clean_filename(filename: str) -> str:
    """The client's file name reduced to a display name: last path segment, no control
    characters, at most 255 characters; ``"unnamed"`` when nothing is left. Never used in a path."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:MAX_NAME_LENGTH] or "unnamed"


def _file_record(deviceid: str, file_id: str, name: str, size: int, content_type: str, sha256_hex: str,
                 status: str, uploaded_at: str, verified_at: str | None = None) -> dict[str, Any]:
    """A ``files`` item in the shape the module docstring gives; the blob name derives from the ids."""
    return {
        "id": file_id, "deviceid": deviceid, "blob_name": f"{deviceid}/{file_id}", "name": name, "size": size,
        "content_type": content_type, "sha256": sha256_hex, "status": status,
        "uploaded_at": uploaded_at, "verified_at": verified_at,
    }


def _canonical_pem(pem: str) -> str:
    try:
        return load_device_public_key(pem).pem
    except UnusableKey:
        raise BadRequest("unusable_key", "public_key is not an accepted PEM public key") from None


def _measure(stream: BinaryIO) -> tuple[str, int]:
    stream.seek(0)
    digest, size = sha256_stream(stream)
    stream.seek(0)
    return digest, size


def store_upload(
    device: dict[str, Any],
    incoming: IncomingFile,
    challenge: str,
    signature_b64: str,
    claimed_key_pem: str | None,
) -> dict[str, Any]:
    """Check the device's signature over the file and store it; returns the file record.

    Checks: the upload gates (:mod:`shared_code.devices.gates`: attested, recent Play Integrity
    verdict) → size and type → proof over ``upload:{challenge}:{sha256}``
    (:mod:`shared_code.devices.proofs`). The file id derives from the challenge
    (:func:`upload_file_id`), so one signed request always names one blob and one record.

    Steps, and what the caller sees if the process dies or the storage call times out right
    after each (a retry of the *same* signed request continues where it stopped, answers 200 with
    the same file and never stores it twice):

    1. claim the challenge for this upload (``upload:{sha256}``): nothing is stored; the
       challenge now serves only this request;
    2. the audit entry ``upload_authorized`` (device, file, digest, size, type; a failed log write
       is 503 with nothing stored, and the retry records it again);
    3. conditional blob create: the bytes are stored but not listed; the blob trigger records
       and lists them (the upload completes on its own), or the retry does;
    4. the file record: the upload is listed (if this create lands after a timeout, the caller
       got 503 and the file is there);
    5. delete the challenge (best effort: a claimed challenge is useless for anything else).

    Nothing is ever deleted again, so a listed record always has its blob.

    Raises :class:`Forbidden` ``device_not_attested`` / ``integrity_required`` / ``public_key_mismatch`` (403),
    :class:`PayloadTooLarge` (413), :class:`BadRequest` ``file_type_not_allowed`` /
    ``invalid_signature_encoding`` / ``unusable_key`` (400), :class:`Unauthorized` ``invalid_signature`` /
    ``invalid_challenge`` (401; also when the challenge was claimed by another upload or action),
    :class:`ServiceUnavailable` (503).
    """
    settings = get_settings()
    gates.require_upload_allowed(device)
    if claimed_key_pem is not None and _canonical_pem(claimed_key_pem) != device["public_key"]:
        raise Forbidden("public_key_mismatch", "public_key differs from the device's attested key")
    content_type = (incoming.content_type or "application/octet-stream").lower()
    if content_type not in settings.allowed_content_types:
        raise BadRequest("file_type_not_allowed", f"content type {content_type!r} is not accepted")
    digest, size = _measure(incoming.stream)
    if size > settings.max_upload_bytes:
        raise PayloadTooLarge("file_too_large", f"files may be at most {settings.max_upload_bytes} bytes")
    device = proofs.verify_request_proof(device, upload_message(challenge, digest), signature_b64, "signed_challenge")

    record = _file_record(device["id"], upload_file_id(device["id"], challenge), clean_filename(incoming.filename),
                          size, content_type, digest, "uploaded", to_iso(utc_now()))
    try:
        claimed = challenges.claim_challenge(device["id"], challenge, f"{UPLOAD_PREFIX}{digest}")
    except Unauthorized:
        stored = _stored_upload(record)  # the challenge is gone: was it this very upload, completed?
        if stored is None:
            raise
        return stored
    trail.record("upload_authorized", actor=trail.device_actor(device["id"]), objects=audit_objects(record, "upload-file"))
    _write_blob(record, incoming.stream)
    created = _create_record(record)
    settle_after_commit(created)
    challenges.finish(claimed)
    log.info("file uploaded: device=%s file=%s size=%d", device["id"], record["id"], size)
    return created


def audit_objects(record: dict[str, Any], path: str) -> dict[str, Any]:
    """The objects of an upload's audit entries: device, file id, signed digest, size, type and
    the upload ``path`` (``upload-file`` or ``direct``); never the client's file name."""
    return {"device": record["deviceid"], "file": record["id"], "sha256": record["sha256"], "size": record["size"],
            "content_type": record["content_type"], "path": path}


def upload_file_id(deviceid: str, challenge: str) -> str:
    """The file id of the upload authorised by ``challenge``: 32 hex of SHA-256 of
    ``upload-file:{deviceid}:{challenge}`` (the challenge is random, so ids are unpredictable and unique)."""
    return sha256_hex(f"upload-file:{deviceid}:{challenge}")[:32]


def _create_record(record: dict[str, Any]) -> dict[str, Any]:
    """Create the file record; when it exists (the blob trigger, or an earlier try of this
    request, wrote it first) the stored one is authoritative."""
    try:
        return cosmos.create_item(cosmos.FILES, record)
    except cosmos.AlreadyExists:
        return cosmos.read_item(cosmos.FILES, record["id"], record["deviceid"]) or record


def _stored_upload(record: dict[str, Any]) -> dict[str, Any] | None:
    """The record of an earlier try of this exact upload (same file id and digest) whose challenge
    is already used up, completing it when only its blob was stored; ``None`` if there was none."""
    existing = cosmos.read_item(cosmos.FILES, record["id"], record["deviceid"])
    if existing is not None:
        return existing if existing["sha256"] == record["sha256"] else None
    with blobs.storage_errors("blob read"):
        try:
            properties = _uploads().get_blob_client(record["blob_name"]).get_blob_properties()
        except ResourceNotFoundError:
            return None
    if (properties.metadata or {}).get("sha256") != record["sha256"]:
        return None
    return _create_record(record)


def _uploads() -> ContainerClient:
    return blobs.container_client(get_settings().uploads_container)


def settle_after_commit(record: dict[str, Any]) -> None:
    """After a write that made ``record`` a file of its device: re-read the device and, if it was
    revoked meanwhile, mark the file ``device_revoked`` and raise
    :class:`~shared_code.platform.errors.Forbidden` ``device_revoked`` (403): an upload that
    overlapped a revocation is never accepted. One point read; raises ``ServiceUnavailable``
    (the file then stays as written, and the revocation's retry marks it)."""
    device = registry.read_device(record["deviceid"])
    if device is not None and registry.status(device) == registry.REVOKED:
        mark_device_revoked(record["deviceid"], record["id"])
        raise Forbidden("device_revoked", "this device was revoked; the upload was not accepted")


def mark_device_revoked(deviceid: str, file_id: str, current: dict[str, Any] | None = None) -> bool:
    """Set the file record's status to ``device_revoked`` (the previous one kept in
    ``status_before_revocation``), by an etag-guarded replace retried on a lost race; ``True`` if
    this call changed it, ``False`` when it is gone or already marked. ``current``: the record as
    just read (with its ``_etag``), saving the first read. The blob stays. Raises ``ServiceUnavailable``."""
    for _ in range(MAX_WRITE_RACES):
        current = current or cosmos.read_item(cosmos.FILES, file_id, deviceid)
        if current is None or current.get("status") == DEVICE_REVOKED:
            return False
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body.update(status=DEVICE_REVOKED, status_before_revocation=current.get("status"), revoked_at=to_iso(utc_now()))
        try:
            cosmos.replace_item(cosmos.FILES, body, current["_etag"])
            return True
        except cosmos.EtagMismatch:
            current = None
    raise ServiceUnavailable(detail=f"file {file_id} kept changing while it was being marked device_revoked")


def _write_blob(record: dict[str, Any], stream: BinaryIO) -> None:
    """Create the blob of ``record`` (never overwriting). An existing blob with the same digest is
    this upload's own earlier try (or the SDK's retry after a lost answer): done."""
    metadata = {
        "deviceid": record["deviceid"],
        "file_id": record["id"],
        "sha256": record["sha256"],
        "original_name": quote(record["name"], safe=""),
        "uploaded_at": record["uploaded_at"],
    }
    with blobs.storage_errors("blob upload"):
        client = _uploads().get_blob_client(record["blob_name"])
        try:
            # Block blob: staged blocks become visible only at the final commit, so a failure
            # part-way leaves no partial blob. overwrite=False makes the create conditional.
            client.upload_blob(
                stream, length=record["size"], overwrite=False, metadata=metadata,
                content_settings=ContentSettings(content_type=record["content_type"]), max_concurrency=4,
            )
        except ResourceExistsError:
            if (client.get_blob_properties().metadata or {}).get("sha256") != record["sha256"]:
                raise Unauthorized("invalid_challenge", "the challenge was used for another upload") from None


def list_files(deviceid: str, page_size: int, continuation: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``deviceid``'s files, newest first: ``(files, next continuation | None)``.

    Each file: ``{file_id, name, size, content_type, sha256, status, uploaded_at}``. The
    continuation token is opaque base64url. Raises :class:`BadRequest` ``invalid_continuation``.
    """
    token = _decode_continuation(deviceid, continuation) if continuation else None
    query = (
        "SELECT c.id, c.name, c.size, c.content_type, c.sha256, c.status, c.uploaded_at, c.upload "
        "FROM c WHERE c.deviceid = @deviceid ORDER BY c.uploaded_at DESC"
    )
    try:
        items, next_token = cosmos.query_page(
            cosmos.FILES, query, [{"name": "@deviceid", "value": deviceid}],
            partition_key=deviceid, page_size=page_size, continuation=token,
        )
    except cosmos.InvalidContinuation:
        raise BadRequest("invalid_continuation", "continuation is not a token from this API") from None
    files = [
        {"file_id": item["id"], **{k: item.get(k) for k in ("name", "size", "content_type", "sha256", "uploaded_at")},
         "status": file_status(item)}
        for item in items
    ]
    return files, _encode_continuation(deviceid, next_token) if next_token else None


def file_status(record: dict[str, Any], now: datetime | None = None) -> str:
    """The status a reader sees: the stored one, except ``expired`` for a direct-upload grant
    (:mod:`shared_code.devices.direct_uploads`) still ``pending`` past its deadline."""
    upload = record.get("upload")
    if record.get("status") == "pending" and isinstance(upload, dict) and upload.get("deadline"):
        if from_iso(upload["deadline"]) <= (now or utc_now()):
            return "expired"
    return record.get("status")


FILES_CONTINUATION = "files-continuation"


def _encode_continuation(deviceid: str, token: str) -> str:
    """The Cosmos continuation ``token`` sealed for ``deviceid`` (:mod:`shared_code.platform.continuation`)."""
    return seal(get_settings().device_token_pepper, FILES_CONTINUATION, deviceid, token)


def _decode_continuation(deviceid: str, text: str) -> str:
    return unseal(get_settings().device_token_pepper, FILES_CONTINUATION, deviceid, text)


def record_uploaded_blob(blob_name: str, stream: BinaryIO, metadata: dict[str, str], content_type: str | None) -> dict[str, Any]:
    """Blob-trigger side: recompute the SHA-256 of an uploaded blob and write its file record
    with status ``verified`` or ``digest_mismatch``, after recording the verdict in the audit log
    (``upload_verified``: granted, or refused with ``digest_mismatch`` and the observed digest).
    Idempotent on the blob name (a redelivered event records its verdict again).

    The record is created, or replaced on its etag (re-read on a lost race), so a
    ``device_revoked`` mark is never undone: the verdict then goes to ``status_before_revocation``.
    Afterwards the device is re-read (:func:`settle_after_commit`): a file of a device revoked
    meanwhile is marked. ``blob_name`` is relative to the uploads container
    (``{deviceid}/{file_id}``). Raises ``ValueError`` for a blob whose name is not of that shape
    (not written by this app), ``ServiceUnavailable`` when the audit log or Cosmos DB is down
    (nothing is written; the trigger's retry decides again).
    """
    deviceid, _, file_id = blob_name.rpartition("/")
    if not deviceid or not file_id:
        raise ValueError(f"unexpected blob name {blob_name!r}")
    digest, size = sha256_stream(stream)
    declared = metadata.get("sha256")
    record = _file_record(
        deviceid, file_id, unquote(metadata.get("original_name", "")) or "unnamed", size,
        content_type or "application/octet-stream", digest,
        "verified" if declared == digest else "digest_mismatch",
        metadata.get("uploaded_at") or to_iso(utc_now()), verified_at=to_iso(utc_now()),
    )
    observed = {}
    if record["status"] == "digest_mismatch":
        record["declared_sha256"] = declared
        observed = {"sha256": declared, "observed_sha256": digest}
        log.warning("digest mismatch for blob %s (declared %s)", blob_name, declared)
    trail.record("upload_verified", actor=trail.OPERATOR, **verdict_entry(record, "upload-file", **observed))
    written = _write_verdict(record)
    try:
        settle_after_commit(written)
    except Forbidden:
        return cosmos.read_item(cosmos.FILES, file_id, deviceid) or written
    return written


def verdict_entry(record: dict[str, Any], path: str, status: str | None = None, **observed: Any) -> dict[str, Any]:
    """The audit fields (``objects``, ``outcome``, ``failed_checks``) of the verification verdict
    ``status`` (default: the record's) on an upload of ``path``: granted for ``verified``, else
    refused with the status as the failed check; ``observed`` adds or overrides objects (the
    signed ``sha256``, ``observed_sha256``, ``observed_size``)."""
    status = status or record["status"]
    objects = {**audit_objects(record, path), **observed}
    if status == "verified":
        return {"objects": objects, "outcome": trail.GRANTED}
    return {"objects": objects, "outcome": trail.REFUSED, "failed_checks": [status]}


def _write_verdict(record: dict[str, Any]) -> dict[str, Any]:
    """Create ``record``, or replace the stored one on its etag keeping a ``device_revoked`` mark."""
    for _ in range(MAX_WRITE_RACES):
        current = cosmos.read_item(cosmos.FILES, record["id"], record["deviceid"])
        if current is None:
            try:
                return cosmos.create_item(cosmos.FILES, record)
            except cosmos.AlreadyExists:
                continue
        body = dict(record)
        if current.get("status") == DEVICE_REVOKED:
            body.update(status=DEVICE_REVOKED, status_before_revocation=record["status"], revoked_at=current.get("revoked_at"))
        try:
            return cosmos.replace_item(cosmos.FILES, body, current["_etag"])
        except cosmos.EtagMismatch:
            continue
    raise ServiceUnavailable(detail=f"file {record['id']} kept changing while its digest verdict was written")
