"""What revoking a device cleans up once the device is marked revoked: each step idempotent, each
with a dry run that counts the same items without changing them.

The steps, in the order :func:`shared_code.devices.lifecycle.revoke_device` runs them:

1. :func:`delete_challenges`: every challenge item of the device (``challenges`` partition);
2. :func:`cancel_uploads`: every pending direct-upload grant becomes ``cancelled``, its slot
   is released and its staged blob deleted
   (:func:`shared_code.devices.upload_verifier.cancel_grant`); the verifier refuses whatever is
   staged for it later;
3. :func:`mark_files`: every stored file (``/upload-file`` records and verified direct uploads)
   gets status ``device_revoked`` (:func:`shared_code.devices.files.mark_device_revoked`); the
   blobs stay, for the operator.

Each step lists what it will touch (single-partition queries whose filter never depends on a field
the step changes, so paging stays stable while it acts), then acts on each: the dry run only
counts, so it reports exactly what a real run would touch at that moment. A real run counts what
it changed itself; a retry after a failure part-way finds only what is left. Raises
:class:`~shared_code.platform.errors.ServiceUnavailable` on a storage fault: whatever was done stays
done, and the revocation's retry continues.
"""

from __future__ import annotations

from typing import Any

from shared_code.devices import direct_uploads, files, upload_verifier
from shared_code.platform import cosmos

PAGE_SIZE = 500
MAX_PAGES = 10_000


def _ids(spec: cosmos.ContainerSpec, query: str, deviceid: str) -> list[str]:
    """Every id ``query`` yields in ``deviceid``'s partition, read to the last page before anything changes."""
    found: list[str] = []
    continuation = None
    parameters = [{"name": "@deviceid", "value": deviceid}]
    for _ in range(MAX_PAGES):
        page, continuation = cosmos.query_page(spec, query, parameters, partition_key=deviceid,
                                               page_size=PAGE_SIZE, continuation=continuation)
        found.extend(item["id"] for item in page)
        if not continuation:
            break
    return found


def delete_challenges(deviceid: str, *, dry_run: bool = False) -> int:
    """Delete every challenge issued to ``deviceid``; returns how many this call deleted (dry run:
    how many exist). A challenge issued by a request that authenticated just before the device was
    marked may be created after this step: it can serve nothing (every use of a challenge
    authenticates the device first) and expires within ``CHALLENGE_TTL_SECONDS``."""
    ids = _ids(cosmos.CHALLENGES, "SELECT c.id FROM c WHERE c.deviceid = @deviceid", deviceid)
    if dry_run:
        return len(ids)
    return sum(cosmos.delete_item(cosmos.CHALLENGES, challenge, deviceid) for challenge in ids)


def cancel_uploads(deviceid: str, *, dry_run: bool = False) -> int:
    """Cancel every pending direct-upload grant of ``deviceid``; returns how many this call
    cancelled (dry run: how many are pending). A grant the verifier concluded first keeps its
    verdict (a verified one becomes a file, which :func:`mark_files` then marks)."""
    grants = direct_uploads.pending_grants(deviceid)
    if dry_run:
        return len(grants)
    return sum(upload_verifier.cancel_grant(grant) == direct_uploads.CANCELLED for grant in grants)


def _markable(record: dict[str, Any]) -> bool:
    """A file record that holds bytes in the uploads container and is not marked yet: every
    ``/upload-file`` record, and direct-upload grants that were verified. Grants that never became
    files (pending, refused, expired, cancelled) hold no bytes there."""
    if record.get("status") == files.DEVICE_REVOKED:
        return False
    return not direct_uploads.is_grant(record) or record.get("status") == "verified"


def mark_files(deviceid: str, *, dry_run: bool = False) -> int:
    """Mark every stored file of ``deviceid`` ``device_revoked``; returns how many this call
    marked (dry run: how many are not marked yet). Pages through all the device's records (the
    filter is applied here, so marking never shifts a page) and replaces each on the etag the
    page returned: one write per file, a re-read only after a lost race."""
    marked = 0
    continuation = None
    for _ in range(MAX_PAGES):
        page, continuation = cosmos.query_page(cosmos.FILES, "SELECT * FROM c WHERE c.deviceid = @deviceid",
                                               [{"name": "@deviceid", "value": deviceid}], partition_key=deviceid,
                                               page_size=PAGE_SIZE, continuation=continuation)
        for record in filter(_markable, page):
            marked += 1 if dry_run else files.mark_device_revoked(deviceid, record["id"], record)
        if not continuation:
            return marked
    return marked
