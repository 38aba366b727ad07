"""The encrypted store (seed "data server"): client-side encrypted files and their envelopes.

The server never sees a plaintext or a usable key: ``encrypted_data`` is AES-256-GCM ciphertext
(tag appended), ``encrypted_aes_key`` the data key wrapped with RSA-OAEP under the file's KMS
public key, ``encrypted_aes_initial_vector`` the 96-bit GCM nonce.

Blob ``{ENCRYPTED_FILES_CONTAINER}/{key_id}`` (key id: :func:`shared_code.filestore.kms.key_id`) holds the
ciphertext bytes with the envelope as blob metadata ``encrypted_aes_key`` and
``encrypted_aes_iv`` (base64), ``key_generation`` (the KMS key it was sealed for; a blob of another
generation is never served), ``key_version`` (the file key version whose public key wrapped the
data key; absent on blobs stored before versions existed: 1) and ``upload_id``, written in one
conditional create (``If-None-Match: *``) so a second upload can never overwrite the first.
Replacing a stored file (after a key rotation: :mod:`shared_code.filestore.key_service`) is one
conditional write on the etag the owner downloaded (``If-Match``). Who may read is decided by the
KMS: the key's owner and its grantees, checked on every request. Each store (a replace included)
and each download is recorded in the audit log first (``encrypted_file_stored`` /
``encrypted_file_downloaded``); a failed log write is 503, and nothing is stored or handed out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobProperties, ContentSettings

from shared_code.audit import trail
from shared_code.filestore import key_versions, kms
from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import b64decode_strict, b64encode_text, random_token
from shared_code.platform.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
)

IV_BYTES = 12
GCM_TAG_BYTES = 16
ENVELOPE_FIELDS = ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector")
# The JSON body of an upload carries base64 (4/3 of the bytes) plus the other fields.
JSON_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Envelope:
    """One stored file: ciphertext, RSA-OAEP-wrapped data key and GCM nonce, all raw bytes."""

    encrypted_data: bytes
    encrypted_aes_key: bytes
    encrypted_aes_initial_vector: bytes

    def to_json(self) -> dict[str, str]:
        """The three envelope fields of the API, base64 (standard alphabet, padded)."""
        return {name: b64encode_text(getattr(self, name)) for name in ENVELOPE_FIELDS}


@dataclass(frozen=True)
class StoredFile:
    """A stored file: its :class:`Envelope`, the file ``key_version`` that wrapped its data key,
    and the blob's ``etag`` (for a conditional replace)."""

    envelope: Envelope
    key_version: int
    etag: str


def max_body_bytes() -> int:
    """The largest JSON body ``POST /upload`` reads: base64 of ``DATASTORE_MAX_FILE_BYTES`` plus overhead."""
    return 4 * ((get_settings().datastore_max_file_bytes + 2) // 3) + JSON_OVERHEAD_BYTES


def parse_envelope(fields: dict[str, object]) -> Envelope:
    """Decode the three base64 envelope fields of an upload body.

    Raises :class:`BadRequest` ``missing_fields`` (any absent/empty), ``invalid_base64`` (naming
    the field), ``invalid_field`` (IV not 12 bytes, ciphertext shorter than a GCM tag), and
    :class:`PayloadTooLarge` ``file_too_large`` over ``DATASTORE_MAX_FILE_BYTES``.
    """
    missing = [name for name in ENVELOPE_FIELDS if fields.get(name) in (None, "")]
    if missing:
        raise BadRequest("missing_fields", f"required: {', '.join(missing)}")
    decoded = {}
    for name in ENVELOPE_FIELDS:
        value = fields[name]
        try:
            decoded[name] = b64decode_strict(value) if isinstance(value, str) else None
        except ValueError:
            decoded[name] = None
        if decoded[name] is None:
            raise BadRequest("invalid_base64", f"'{name}' must be a base64 string")
    envelope = Envelope(**decoded)
    limit = get_settings().datastore_max_file_bytes
    if len(envelope.encrypted_data) > limit:
        raise PayloadTooLarge("file_too_large", f"encrypted_data may be at most {limit} bytes")
    if len(envelope.encrypted_aes_initial_vector) != IV_BYTES:
        raise BadRequest("invalid_field", f"'encrypted_aes_initial_vector' must be {IV_BYTES} bytes (a GCM nonce)")
    if len(envelope.encrypted_data) < GCM_TAG_BYTES:
        raise BadRequest("invalid_field", "'encrypted_data' is shorter than an AES-GCM tag")
    return envelope


def store(email: str, file_name: str, envelope: Envelope, *, key_version: int | None = None,
          if_match: str | None = None, client_address: str | None = None) -> tuple[int, str]:
    """Store ``envelope`` as ``file_name`` for its KMS owner ``email``, sealed under the key's
    current version (``key_version``, when given, must be it); returns ``(key version, etag)``.

    Without ``if_match`` the file must be new (never overwriting; a blob sealed for an earlier key
    of the name, which is never served, is replaced on its etag). With ``if_match`` (the etag the
    owner downloaded) the stored file is replaced only if it is still that one: one conditional
    write, so if it times out and lands later the caller got 503 and the file is replaced (a retry
    with the same etag answers 412 and a download shows the new version); two racing replaces
    cannot both land. When the SDK's own retry of either write meets the blob its first try wrote,
    the request's id (``upload_id``) tells, and the upload succeeds.

    One step either way, a conditional blob write whose metadata names the key's generation, its
    version and a random id of this request. A create that times out and lands later: the caller
    got 503 and the file is stored; a retry answers ``409 file_exists`` (download it to compare).

    Raises :class:`Forbidden` ``permission_denied`` when ``email`` does not own the file's KMS
    key, :class:`BadRequest` ``invalid_field`` when ``encrypted_aes_key`` is not the size of
    that key's RSA modulus, :class:`Conflict` ``key_version_not_current`` for an older version,
    ``file_exists`` when the file was uploaded before (no ``if_match``),
    :class:`PreconditionFailed` ``precondition_failed`` when the stored file is not ``if_match``
    (changed, or absent), :class:`~shared_code.platform.errors.ServiceUnavailable` when a store fails.
    """
    key = kms.key_of_owner(email, file_name)
    if key is None:
        raise Forbidden("permission_denied", "only the owner of the file's KMS key may upload it")
    current = key_versions.current_version(key)
    if key_version is not None and key_version != current:
        raise Conflict("key_version_not_current", f"the file's key is at version {current}: seal the file under its "
                                                  "current public key (POST /get_public_key or /rotate_file_key)")
    if len(envelope.encrypted_aes_key) != key["key_bits"] // 8:
        raise BadRequest("invalid_field", "'encrypted_aes_key' must be RSA-OAEP output under the file's KMS key")
    upload_id = random_token(16)
    metadata = {"encrypted_aes_key": b64encode_text(envelope.encrypted_aes_key),
                "encrypted_aes_iv": b64encode_text(envelope.encrypted_aes_initial_vector),
                "key_generation": key.get("generation") or "", "key_version": str(current), "upload_id": upload_id}
    condition = {"overwrite": False} if if_match is None else \
        {"overwrite": True, "etag": if_match, "match_condition": MatchConditions.IfNotModified}
    blob = _blob(file_name)
    trail.record("encrypted_file_stored", actor=trail.user_actor(email), client_address=client_address,
                 objects={"file_key": key["id"], "key_version": current, "size": len(envelope.encrypted_data),
                          "replace": if_match is not None})
    with blobs.storage_errors("encrypted upload"):
        try:
            written = blob.upload_blob(envelope.encrypted_data, metadata=metadata, **condition,
                                       content_settings=ContentSettings(content_type="application/octet-stream"))
            return current, written["etag"]
        except ResourceExistsError:
            refusal: AppError = Conflict("file_exists", "this file was uploaded before; it cannot be overwritten")
        except (ResourceModifiedError, ResourceNotFoundError):
            refusal = PreconditionFailed(detail="the stored file changed since it was downloaded (or is gone): download it again")
        # The SDK retries a write whose answer was lost; its retry then meets the blob the first
        # try wrote. The request's random id tells that apart from another upload.
        properties = _properties(blob)
    if properties is not None and if_match is None and not _of_key(properties, key):
        return _replace_leftover(email, file_name, envelope, key_version, properties.etag)
    if properties is None or (properties.metadata or {}).get("upload_id") != upload_id:
        raise refusal
    return current, properties.etag


def _of_key(properties: BlobProperties, key: dict[str, Any]) -> bool:
    """Whether a stored blob was sealed for key item ``key`` (its generation; ``""``: older code)."""
    return (properties.metadata or {}).get("key_generation", "") == (key.get("generation") or "")


def _replace_leftover(email: str, file_name: str, envelope: Envelope, key_version: int | None, etag: str) -> tuple[int, str]:
    """Replace, on its etag, a blob sealed for an earlier key of the name: never served (its key is
    gone) and left by an upload that landed after its owner's account deletion removed the file.
    Another upload that replaced it first wins: ``file_exists``."""
    try:
        return store(email, file_name, envelope, key_version=key_version, if_match=etag)
    except PreconditionFailed:
        raise Conflict("file_exists", "this file was uploaded before; it cannot be overwritten") from None


def fetch(email: str, file_name: str, client_address: str | None = None) -> StoredFile:
    """The stored envelope of ``file_name`` for its owner or a grantee, with its key version and etag.

    Only a blob stored under the current key (same generation) counts. Raises
    :class:`NotFound` ``file_not_found`` when there is no such file *or* the caller may not read
    it (same answer), :class:`~shared_code.platform.errors.ServiceUnavailable` when a store fails.
    """
    not_found = NotFound("file_not_found", "no such file is available to you")
    key = kms.key_for(email, file_name)
    if key is None:
        raise not_found
    with blobs.storage_errors("encrypted download"):
        try:
            downloader = _blob(file_name).download_blob()
            data = downloader.readall()
        except ResourceNotFoundError:
            raise not_found from None
    if not _of_key(downloader.properties, key):
        raise not_found
    metadata = downloader.properties.metadata or {}
    version = _key_version(metadata)
    trail.record("encrypted_file_downloaded", actor=trail.user_actor(email), client_address=client_address,
                 objects={"file_key": key["id"], "key_version": version, "role": kms.role(key, email)})
    envelope = Envelope(data, b64decode_strict(metadata["encrypted_aes_key"]), b64decode_strict(metadata["encrypted_aes_iv"]))
    return StoredFile(envelope, version, downloader.properties.etag)


def stored_key_version(key: dict[str, Any]) -> int | None:
    """The key version the stored file of key item ``key`` was sealed under, ``None`` when nothing
    is stored under that key (a blob of another generation counts as nothing, as for downloads).
    One properties read. Raises :class:`~shared_code.platform.errors.ServiceUnavailable`."""
    with blobs.storage_errors("encrypted file properties"):
        properties = _properties(_blob(key["file_name"]))
    if properties is None or not _of_key(properties, key):
        return None
    return _key_version(properties.metadata or {})


def _properties(blob: BlobClient) -> BlobProperties | None:
    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        return None


def _key_version(metadata: dict[str, str]) -> int:
    return int(metadata.get("key_version", "1"))


def _blob(file_name: str) -> BlobClient:
    return blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kms.key_id(file_name))


def delete_stored(kid: str) -> bool:
    """Delete the stored file of key ``kid`` (account deletion; its key is already destroyed);
    ``True`` if a blob was deleted. Raises :class:`~shared_code.platform.errors.ServiceUnavailable`."""
    blob = blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kid)
    with blobs.storage_errors("encrypted file delete"):
        try:
            blob.delete_blob(delete_snapshots="include")
            return True
        except ResourceNotFoundError:
            return False
