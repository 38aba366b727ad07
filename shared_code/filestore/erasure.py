"""What account deletion erases in the file store (:func:`erase_user`, the ``erase`` step of
:mod:`shared_code.accounts.deletion`).

For every key the user owns, in this order, each step idempotent:

1. the key is destroyed (:func:`shared_code.filestore.kms.destroy_key`): its item becomes a
   tombstone without key material and without grantees, so from that moment neither the owner
   nor a grantee can get the private key of any version or have a data key unwrapped under one
   (``/unwrap_key``), and every ciphertext sealed for it is unreadable (crypto-shredding); the
   grants the user gave end with it. A rotation or KEK rewrap of the key still in flight is a
   replace on the etag it read, so it cannot bring key material back;
2. the stored file is deleted (:func:`shared_code.filestore.datastore.delete_stored`);
3. the grantees' and the owner's index entries are deleted, then the tombstone (the file name is
   free again).

Then the user is taken out of every key that names them as grantee (the grants they received),
and every index entry left in their partition is deleted, so nothing names the address any more.
A retry (or the purge timer's backstop) finds the tombstones by owner and continues, so a deletion
interrupted between any two steps completes. Nothing here checks who asks: the caller decided the
deletion. (A key destroyed by a request whose answer was lost has no grantees left to count; its
index entries are still deleted, by the grantees' partition scan of their own deletion or never
shown: an index entry grants nothing.)

An upload of the user's in flight when the deletion ran may land after it (a timeout is not a
rollback): a ciphertext under a destroyed key, unreadable and never served, which the name's next
owner's upload replaces (:func:`shared_code.filestore.datastore.store`).

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
        grantees = kms.destroy_key(kid)
        if grantees is not None:
            counts["keys_destroyed"] += 1
            counts["grants_revoked"] += len(grantees)
        counts["files_deleted"] += datastore.delete_stored(kid)
        for grantee in grantees or ():
            kms.drop_index(kid, grantee)
        kms.drop_index(kid, email)
        kms.delete_tombstone(kid)
    for kid in kms.granted_key_ids(email):
        counts["grants_removed"] += kms.remove_grantee(kid, email)
    for kid in kms.index_key_ids(email):
        kms.drop_index(kid, email)
    log.info("file store erased for an account: %s", counts)
    return counts
