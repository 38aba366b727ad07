"""The encrypted store (seed "data server"): client-side encrypted files and their envelopes.

The server never sees a plaintext or a usable key: ``encrypted_data`` is AES-256-GCM ciphertext
(tag appended), ``encrypted_aes_key`` the data key wrapped with RSA-OAEP under the file's KMS
public key, ``encrypted_aes_initial_vector`` the 96-bit GCM nonce.

Blob ``{ENCRYPTED_FILES_CONTAINER}/{key_id}`` (key id: :func:`shared_code.filestore.kms.key_id`) holds the
ciphertext bytes with the envelope as blob metadata ``encrypted_aes_key`` and
``encrypted_aes_iv`` (base64), plus ``key_generation`` (the KMS key it was sealed for; a blob of
another generation is never served) and ``upload_id``, written in one conditional create
(``If-None-Match: *``) so a second upload can never overwrite the first. Who may read is decided
by the KMS: the key's owner and its grantees, checked on every request. Each store and each
download is recorded in the audit log first (``encrypted_file_stored`` / ``encrypted_file_downloaded``;
a failed log write is 503, and nothing is stored or handed out).
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContentSettings

from shared_code.audit import trail
from shared_code.filestore import kms
from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import b64decode_strict, b64encode_text, random_token
from shared_code.platform.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge

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


def store(email: str, file_name: str, envelope: Envelope) -> None:
    """Store ``envelope`` as ``file_name`` for its KMS owner ``email``, never overwriting.

    One step, a conditional blob create (``If-None-Match: *``) whose metadata names the key's
    generation and a random id of this request. If it times out and lands later the caller got
    503 and the file is stored; a retry answers ``409 file_exists`` (download it to compare). When
    the SDK's own retry of the create meets the blob its first try wrote, the id tells, and the
    upload succeeds.

    Raises :class:`Forbidden` ``permission_denied`` when ``email`` does not own the file's KMS
    key, :class:`BadRequest` ``invalid_field`` when ``encrypted_aes_key`` is not the size of
    that key's RSA modulus, :class:`Conflict` ``file_exists`` when the file was uploaded
    before, :class:`~shared_code.platform.errors.ServiceUnavailable` when a store fails.
    """
    key = kms.key_of_owner(email, file_name)
    if key is None:
        raise Forbidden("permission_denied", "only the owner of the file's KMS key may upload it")
    if len(envelope.encrypted_aes_key) != key["key_bits"] // 8:
        raise BadRequest("invalid_field", "'encrypted_aes_key' must be RSA-OAEP output under the file's KMS key")
    upload_id = random_token(16)
    metadata = {"encrypted_aes_key": b64encode_text(envelope.encrypted_aes_key),
                "encrypted_aes_iv": b64encode_text(envelope.encrypted_aes_initial_vector),
                "key_generation": key.get("generation") or "", "upload_id": upload_id}
    blob = _blob(file_name)
    trail.record("encrypted_file_stored", actor=trail.user_actor(email), objects={"file_key": key["id"], "size": len(envelope.encrypted_data)})
    with blobs.storage_errors("encrypted upload"):
        try:
            blob.upload_blob(envelope.encrypted_data, overwrite=False, metadata=metadata,
                             content_settings=ContentSettings(content_type="application/octet-stream"))
        except ResourceExistsError:
            if (blob.get_blob_properties().metadata or {}).get("upload_id") != upload_id:
                raise Conflict("file_exists", "this file was uploaded before; it cannot be overwritten") from None


def fetch(email: str, file_name: str) -> Envelope:
    """The stored envelope of ``file_name`` for its owner or a grantee.

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
    metadata = downloader.properties.metadata or {}
    if metadata.get("key_generation", "") != (key.get("generation") or ""):  # "": items of older code
        raise not_found
    trail.record("encrypted_file_downloaded", actor=trail.user_actor(email), objects={"file_key": key["id"], "role": "owner" if key["owner"] == email else "grantee"})
    return Envelope(data, b64decode_strict(metadata["encrypted_aes_key"]), b64decode_strict(metadata["encrypted_aes_iv"]))


def _blob(file_name: str) -> BlobClient:
    return blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kms.key_id(file_name))
