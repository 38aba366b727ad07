"""What account deletion erases in the file store (:func:`erase_user`, the ``erase`` step of
:mod:`shared_code.accounts.deletion`).

For every key the user owns, in this order, each step idempotent:

1. the key is destroyed (:func:`shared_code.filestore.kms.destroy_key`): its item becomes a
   tombstone without key material, so from that moment neither the owner nor a grantee can get
   the private key of any version, and every ciphertext sealed for it is unreadable
   (crypto-shredding);
2. the stored file is deleted (:func:`shared_code.filestore.datastore.delete_stored`);
3. the grantees' access entries are deleted (the grants the user gave; already useless after 1);
4. the owner's own entry, then the tombstone, are deleted (the file name is free again).

Then the grants the user received are removed. A retry (or the purge timer's backstop) finds the
tombstones by owner and continues, so a deletion interrupted between any two steps completes.
Nothing here checks who asks: the caller decided the deletion.

Storage keeps deleted data for a while by design (blob soft delete and versions,
``BLOB_VERSION_RETENTION_DAYS``; Cosmos DB backups): the ciphertext may survive there, the
private key only in Cosmos DB's backups, wrapped under the KMS master key.
"""

from __future__ import annotations

import logging

from shared_code.filestore import datastore, kms

log = logging.getLogger("trustgate.filestore")


def erase_user(email: str) -> dict[str, int]:
    """Erase the file-store data of ``email`` (normalised); returns the counts this call changed:
    ``keys_destroyed``, ``files_deleted``, ``grants_revoked`` (given), ``grants_removed`` (received).
    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` (what was done stays done)."""
    counts = {"keys_destroyed": 0, "files_deleted": 0, "grants_revoked": 0, "grants_removed": 0}
    for kid in kms.owned_key_ids(email):
        counts["keys_destroyed"] += kms.destroy_key(kid)
        counts["files_deleted"] += datastore.delete_stored(kid)
        for grantee in kms.grantee_emails(kid):
            counts["grants_revoked"] += kms.drop_access(kid, grantee)
        kms.drop_access(kid, email)
        kms.delete_tombstone(kid)
    for kid in kms.received_key_ids(email):
        counts["grants_removed"] += kms.drop_access(kid, email)
    log.info("file store erased for an account: %s", counts)
    return counts
