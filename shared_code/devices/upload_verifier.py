"""Direct uploads, the verifier side: what the staging blob trigger and the expiry sweep do with
a grant (:mod:`shared_code.devices.direct_uploads`) and its staged blob.

:func:`verify_staged_blob`, for a blob committed in ``UPLOAD_STAGING_CONTAINER``:

1. read the grant; none, or not ``pending`` (verified, refused, expired, cancelled) → delete the
   staged blob, nothing else (a rewrite after the verdict never changes it);
   the device revoked (:mod:`shared_code.devices.lifecycle`) → ``cancelled``; suspended → held:
   nothing changes, the staged blob stays, and resuming the device verifies it;
2. the copy already landed (an earlier attempt died after it) → record ``verified``;
3. the blob's properties: modified after the deadline → ``expired``; size ≠ the grant's →
   ``size_mismatch``;
4. stream it through SHA-256, pinned to its ETag; digest ≠ the grant's → ``digest_mismatch``;
5. copy exactly that version server side into ``UPLOADS_CONTAINER/{deviceid}/{file_id}``
   (:func:`shared_code.platform.blob_copy.copy_version`: every range ``x-ms-source-if-match``
   the hashed ETag, commit ``If-None-Match: *``), the device having no access there;
6. record ``verified`` (etag-guarded replace; the record drops ``expires_at``/``ttl``), release
   the slot, delete the staged blob; then re-read the device, and mark the file
   ``device_revoked`` if a revocation landed meanwhile
   (:func:`shared_code.devices.files.settle_after_commit`).

Every verdict (steps 3, 4, 6 and the sweep's ``expired``) is recorded in the audit log first
(``upload_verified``: granted, or refused with the verdict as ``failed_checks`` and what was
observed); when that fails nothing is recorded on the grant and the trigger's retry decides again.

A staged blob rewritten after step 3 makes step 4 or 5 fail with ``SourceChanged``: nothing is
copied, nothing recorded, and the rewrite's own event verifies the new version. So only bytes
whose digest matched the signed one ever reach the uploads container. Every step is safe to
repeat, so trigger retries (Event Grid redelivers, devhost retries failures) are idempotent:
each run re-reads the grant, finds the copy if it landed, and the first verdict recorded wins
(a later run that reached another verdict deletes its copy, never the winner's).

:func:`sweep_expired_grants` (purge timer): grants still pending :data:`SWEEP_GRACE` after their
deadline lose their staged blob and become ``expired`` (or ``verified``, if the copy landed).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient

from shared_code.audit import trail
from shared_code.devices import direct_uploads, files, registry, upload_slots
from shared_code.platform import blob_access, blob_copy, blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Forbidden
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.upload_verifier")

CLOCK_SKEW = timedelta(minutes=5)  # storage clock vs app clock when comparing with the deadline
SWEEP_GRACE = timedelta(hours=1)  # a commit just before the deadline still gets verified first
SOURCE_URL_TTL_SECONDS = 3600
SWEEP_BATCH = 100


def verify_staged_blob(blob_name: str) -> str:
    """Verify the staged blob ``{deviceid}/{upload_id}`` (relative to the staging container)
    against its grant, as the module docstring says. Returns the outcome: the state recorded
    (``verified``, ``digest_mismatch``, ``size_mismatch``, ``expired``), ``already_<state>``,
    ``orphan`` (no grant), ``gone`` (blob deleted meanwhile), ``changed`` (rewritten during
    verification; its next event decides), ``held`` (the device is suspended) or ``device_revoked``
    (verified just as the device was revoked: the file is marked). Raises ``ServiceUnavailable`` on
    a storage fault (the trigger retries; every step is idempotent)."""
    deviceid, _, upload_id = blob_name.rpartition("/")
    staged = _staging_client(blob_name)
    record = direct_uploads.read_grant(deviceid, upload_id) if deviceid else None
    if record is None:
        log.warning("staged blob %s has no grant; deleting it", blob_name)
        _delete(staged)
        return "orphan"
    if record["status"] != direct_uploads.PENDING:
        _delete(staged)
        return f"already_{record['status']}"
    device_status = registry.status(registry.read_device(deviceid) or {"status": registry.REVOKED})
    if device_status == registry.REVOKED:
        return cancel_grant(record)
    if device_status == registry.SUSPENDED:
        log.info("staged blob %s: device suspended, verification held until it is resumed", blob_name)
        return "held"
    if _copied(record):
        return _conclude(record, "verified")
    with blobs.storage_errors("staged blob properties"):
        try:
            properties = staged.get_blob_properties()
        except ResourceNotFoundError:
            return "gone"
    if properties.last_modified > from_iso(record["upload"]["deadline"]) + CLOCK_SKEW:
        return _conclude(record, "expired")
    if properties.size != record["size"]:
        return _conclude(record, "size_mismatch", observed_size=properties.size)
    try:
        digest = blob_copy.sha256_of_version(staged, properties.etag, properties.size)
        if digest != record["sha256"]:
            return _conclude(record, "digest_mismatch", observed_sha256=digest)
        _copy(record, staged, properties.etag)
    except blob_copy.SourceChanged:
        log.info("staged blob %s changed during verification; its new version is verified on its own", blob_name)
        return "changed"
    return _conclude(record, "verified")


def sweep_expired_grants(now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Retire up to ``batch`` grants still pending :data:`SWEEP_GRACE` after their deadline:
    delete the staged blob (uncommitted blocks also expire by themselves in Azure after 7 days),
    then record ``expired`` (``verified`` instead if the copy had landed). Returns how many.
    A crash between the two leaves a pending grant without a blob, which the next run retires.
    Raises ``ServiceUnavailable``."""
    cutoff = (now or utc_now()) - SWEEP_GRACE
    records = cosmos.query_first(
        cosmos.FILES,
        "SELECT * FROM c WHERE c.status = @pending AND IS_DEFINED(c.upload) AND c.upload.deadline < @cutoff",
        [{"name": "@pending", "value": direct_uploads.PENDING}, {"name": "@cutoff", "value": to_iso(cutoff)}], batch,
    )
    for record in records:
        if _copied(record):
            _conclude(record, "verified")
            continue
        _delete(_staging_client(record["upload"]["staging_blob"]))
        _conclude(record, "expired")
    if records:
        log.info("expired %d direct-upload grant(s)", len(records))
    return len(records)


def cancel_grant(record: dict[str, Any]) -> str:
    """Cancel the pending grant ``record`` (its device was revoked): record ``cancelled``
    (etag-guarded; a verdict recorded first stands), release its slot, delete its staged blob.
    Returns the state that stands (``cancelled`` or ``already_<state>``). Idempotent; raises
    ``ServiceUnavailable``."""
    return _conclude(record, direct_uploads.CANCELLED)


def requeue_held(record: dict[str, Any]) -> bool:
    """Have the staging trigger verify ``record``'s staged blob again (after its device was
    resumed, :func:`verify_staged_blob` having held it): commit the blob's committed block list
    once more, conditional on the ETag just read. That is a Put Block List without data, which
    raises a new ``BlobCreated`` event (Event Grid; devhost sees the new ETag). ``True`` if a
    commit was made or the device rewrote the blob meanwhile (its own event verifies it), ``False``
    when nothing is committed yet. The new commit's time counts against the grant's deadline.
    Raises ``ServiceUnavailable``."""
    staged = _staging_client(record["upload"]["staging_blob"])
    with blobs.storage_errors("staged blob requeue"):
        try:
            properties = staged.get_blob_properties()
            committed, _ = staged.get_block_list("committed")
            staged.commit_block_list([BlobBlock(block_id=block.id) for block in committed],
                                     content_settings=properties.content_settings, metadata=properties.metadata,
                                     etag=properties.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            return False
        except ResourceModifiedError:
            return True
    return True


def _staging_client(blob_name: str) -> BlobClient:
    return blobs.container_client(get_settings().upload_staging_container).get_blob_client(blob_name)


def _destination(record: dict[str, Any]) -> BlobClient:
    return blobs.container_client(get_settings().uploads_container).get_blob_client(record["blob_name"])


def _copied(record: dict[str, Any]) -> bool:
    """Whether the uploads container holds this grant's copy (written only by :func:`_copy`)."""
    with blobs.storage_errors("uploaded blob properties"):
        try:
            metadata = _destination(record).get_blob_properties().metadata or {}
        except ResourceNotFoundError:
            return False
    return metadata.get("upload_id") == record["id"]


def _copy(record: dict[str, Any], staged: BlobClient, etag: str) -> None:
    settings = get_settings()
    source_url = blob_access.read_url(settings.upload_staging_container, staged.blob_name, SOURCE_URL_TTL_SECONDS)
    metadata = {  # the /upload-file metadata, plus upload_id (the uploads trigger leaves such blobs alone)
        "deviceid": record["deviceid"], "file_id": record["id"], "sha256": record["sha256"],
        "original_name": quote(record["name"], safe=""), "uploaded_at": record["uploaded_at"],
        "upload_id": record["id"],
    }
    blob_copy.copy_version(staged, source_url, etag, record["size"], _destination(record),
                           metadata=metadata, content_type=record["content_type"])


def _conclude(record: dict[str, Any], status: str, **observed: Any) -> str:
    """Record the verdict ``status`` on the pending grant (etag-guarded), then release its slot
    and delete its staged blob. If another run recorded a verdict first, that one stands: a copy
    this run made for ``verified`` is deleted unless the winner is ``verified`` too. Returns the
    state that stands. Raises ``ServiceUnavailable`` when the audit entry cannot be written
    (nothing is recorded then)."""
    trail.record("upload_verified", actor=trail.OPERATOR, **files.verdict_entry(record, "direct", status, **observed))
    while True:
        body = _concluded(record, status, observed)
        try:
            cosmos.replace_item(cosmos.FILES, body, record["_etag"])
            break
        except cosmos.EtagMismatch:
            current = direct_uploads.read_grant(record["deviceid"], record["id"])
            if current is not None and current["status"] == direct_uploads.PENDING:
                record = current
                continue
            winner = current["status"] if current is not None else "gone"
            if status == "verified" and winner != "verified":
                _delete(_destination(record))
            _delete(_staging_client(record["upload"]["staging_blob"]))
            return f"already_{winner}"
    upload_slots.release(record["deviceid"], record["upload"]["slot"], record["id"])
    _delete(_staging_client(record["upload"]["staging_blob"]))
    log.info("direct upload %s of device %s: %s", record["id"], record["deviceid"], status)
    if status == "verified":
        try:
            files.settle_after_commit(body)
        except Forbidden:
            return files.DEVICE_REVOKED
    return status


def _concluded(record: dict[str, Any], status: str, observed: dict[str, Any]) -> dict[str, Any]:
    body = {key: value for key, value in record.items() if not key.startswith("_")}
    body["upload"] = {**record["upload"], **observed}
    body["status"] = status
    now = utc_now()
    if status == "verified":
        body["verified_at"] = to_iso(now)
        body.pop("expires_at", None)  # a verified file never expires
        body.pop("ttl", None)
    else:
        if status not in ("expired", direct_uploads.CANCELLED):
            body["verified_at"] = to_iso(now)
        direct_uploads.with_expiry(body, now + direct_uploads.RETENTION)
    return body


def _delete(client: BlobClient) -> None:
    with blobs.storage_errors("blob delete"):
        try:
            client.delete_blob()
        except ResourceNotFoundError:
            pass
