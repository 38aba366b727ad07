"""The KMS as a key service (modelled on Vault's Transit engine, AWS KMS and Azure Key Vault key
operations): data keys unwrapped inside, private-key export as a switch, key versions, rotation.

Key versions: :mod:`shared_code.filestore.key_versions` (the layout in the key item).

- :func:`unwrap`: ``POST /unwrap_key``; RSA-OAEP decryption of a data key inside the function
  (:mod:`shared_code.filestore.data_keys`), for the owner and grantees, per user rate-limited
  (``KMS_UNWRAP_RATE_LIMIT_PER_MINUTE``) and audited (``kms_key_unwrapped``). Nothing leaves but the
  data key of one file, so a revoke takes effect with the next request and leaves nothing behind.
- :func:`export_private_key`: the seed's ``POST /get_private_key``, off with
  ``KMS_EXPORT_PRIVATE_KEYS=false`` (403 ``export_disabled``); audited (``kms_private_key_exported``).
- :func:`rotate`: ``POST /rotate_file_key``; a new current version (``kms_file_key_rotated``).
- :func:`retire`: ``POST /retire_file_key``; destroys the versions below a given one, refused while
  the stored file still names one of them (``kms_file_key_versions_retired``).

Rotation and retirement are each one write: a replace of the key item conditional on the etag read
(a request that loses a race reads again, at most :data:`MAX_WRITE_RACES` times), so a late write
(one that timed out and lands afterwards) lands only if nothing changed the item in between.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared_code.audit import trail
from shared_code.filestore import data_keys, datastore, key_wrap, kms, quota
from shared_code.filestore.key_versions import (
    PREVIOUS,
    VERSION,
    KeyVersion,
    current_version,
    version_of,
    versions,
    wrap_aad,
)
from shared_code.platform import cosmos, rate_limit
from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable
from shared_code.platform.security_log import subject_ref
from shared_code.platform.timeutil import to_iso, utc_now

MAX_WRITE_RACES = 16
MINUTE = 60


def _private_key_pem(item: dict[str, Any], record: KeyVersion) -> bytes:
    return key_wrap.unwrap(record.wrapped_private_key, wrap_aad(item["id"], record.version))


def _usable_key(email: str, file_name: str) -> dict[str, Any]:
    item = kms.key_for(email, file_name)
    if item is None:
        raise BadRequest("access_denied", "no key for this file name is available to you")
    return item


def unwrap(email: str, file_name: str, encrypted_aes_key: object, version: int | None = None,
           client_address: str | None = None) -> tuple[bytes, int]:
    """The data key inside ``encrypted_aes_key`` (base64 RSA-OAEP ciphertext) under version
    ``version`` (default current) of ``file_name``'s key, for its owner or a grantee; returns
    ``(data key bytes, version used)``. The private key exists only in this call.

    Steps: count the call against ``KMS_UNWRAP_RATE_LIMIT_PER_MINUTE`` for ``email`` (before
    anything is read: a stranger is limited like anyone); check access on the key item (one point
    read, so a revoke counts from the next request); unwrap the private key from its KEK; decrypt;
    record ``kms_key_unwrapped`` in the audit log; only then is the data key returned. Nothing is
    written but the counter and the audit entry: a crash or timeout at any step hands out nothing
    (after the audit write, the entry records an answer that may not have arrived); a retry repeats.

    Raises :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited``,
    :class:`BadRequest` ``access_denied`` (unknown name or not allowed: the same answer),
    ``key_version_retired`` / ``key_version_unknown``, ``invalid_wrapped_key`` (every decryption
    failure, see :mod:`shared_code.filestore.data_keys`),
    :class:`~shared_code.filestore.key_wrap.KeyUnwrapFailed` / ``ConfigError`` for KEK problems,
    :class:`ServiceUnavailable` when Cosmos DB or the audit log fails.
    """
    limit = get_settings().kms_unwrap_rate_limit_per_minute
    rate_limit.enforce("kms_unwrap", email, limit, MINUTE, f"at most {limit} unwraps a minute for one user",
                       limit_kind="user", endpoint="unwrap_key", account_ref=subject_ref(email))
    item = _usable_key(email, file_name)
    record = version_of(item, version)
    data_key = data_keys.unwrap_data_key(_private_key_pem(item, record), encrypted_aes_key)
    trail.record("kms_key_unwrapped", actor=trail.user_actor(email), client_address=client_address, objects={"file_key": item["id"], "key_version": record.version, "role": kms.role(item, email)})
    return data_key, record.version


def export_private_key(email: str, file_name: str, version: int | None = None,
                       client_address: str | None = None) -> tuple[bytes, int]:
    """The PKCS#8 PEM private key of version ``version`` (default current) of ``file_name``'s key
    for its owner or a grantee, and that version: the seed's export, which hands the key out for
    good (a grantee who keeps it can decrypt that version's files after a revoke).

    Audited as ``kms_private_key_exported`` before it is returned. Raises :class:`Forbidden`
    ``export_disabled`` for every caller when ``KMS_EXPORT_PRIVATE_KEYS`` is false (checked first,
    so it reveals nothing), then as :func:`unwrap` (no rate limit: the seed API had none).
    """
    if not get_settings().kms_export_private_keys:
        raise Forbidden("export_disabled", "this KMS does not export private keys: use POST /unwrap_key")
    item = _usable_key(email, file_name)
    record = version_of(item, version)
    pem = _private_key_pem(item, record)
    trail.record("kms_private_key_exported", actor=trail.user_actor(email), client_address=client_address, objects={"file_key": item["id"], "key_version": record.version, "role": kms.role(item, email)})
    return pem, record.version


def rotate(owner: str, file_name: str, from_version: int | None = None,
           client_address: str | None = None) -> tuple[int, str]:
    """A new current version of ``file_name``'s key pair (owner only); returns ``(version, PEM
    public key)``. The previous current version becomes decrypt-only (new uploads must use the
    new one); nothing is re-encrypted here (the client's ``files rotate`` does that).

    ``from_version`` makes a retry safe: when the key is already past it (an earlier call landed,
    perhaps after its caller saw a timeout) the current version is returned and nothing is made.

    One write (:data:`MAX_WRITE_RACES` note in the module docstring), after the audit entry
    ``kms_file_key_rotated``: if the process dies before it, nothing changed (the entry records a
    rotation that did not happen); if it times out and lands later, the caller got 503 and the new
    version exists (a retry with ``from_version`` returns it). Raises :class:`BadRequest`
    ``permission_denied`` (not the owner, or no key), :class:`Conflict` ``too_many_key_versions``
    (``KMS_MAX_KEY_VERSIONS`` live versions: re-encrypt and retire first),
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (a new version counts
    against ``KMS_KEYS_PER_HOUR``, :mod:`shared_code.filestore.quota`), ``ConfigError``,
    :class:`ServiceUnavailable`.
    """
    item = _owned(owner, file_name)  # before the costly key generation: strangers cost one read
    new_key = None
    for _ in range(MAX_WRITE_RACES):
        current = current_version(item)
        if from_version is not None and current > from_version:
            return current, item["public_key"]
        live = versions(item)
        if len(live) >= get_settings().kms_max_key_versions:
            raise Conflict("too_many_key_versions", f"this file's key has {len(live)} live versions: re-encrypt the file "
                                                    "and retire the older ones first")
        if new_key is None:
            quota.admit_key_creation(owner)  # a new version costs a key generation, like a new key
            new_key = rsa.generate_private_key(public_exponent=65537, key_size=get_settings().kms_rsa_key_bits)
        body = _body(item)
        body.update(_current_fields(item["id"], current + 1, new_key))
        body[PREVIOUS] = [v.as_item() for v in live]
        trail.record("kms_file_key_rotated", actor=trail.user_actor(owner), client_address=client_address, objects={"file_key": item["id"], "key_version": current + 1})
        try:
            cosmos.replace_item(cosmos.KMS_KEYS, body, item["_etag"])
            return current + 1, body["public_key"]
        except cosmos.EtagMismatch:
            item = _owned(owner, file_name)  # changed meanwhile (a grant, another rotation): decide again
    raise ServiceUnavailable(detail="the file's key is changing concurrently, try again")


def retire(owner: str, file_name: str, min_version: int, client_address: str | None = None) -> list[int]:
    """Destroy every version of ``file_name``'s key below ``min_version`` (owner only, Vault's
    ``min_decryption_version``); returns the versions retired (``[]`` when none were left: a retry).

    Refused while the stored file's envelope names a version below ``min_version``, so the one
    key that opens it is never destroyed. One write after the audit entry
    ``kms_file_key_versions_retired``, as in :func:`rotate`: a crash before it retires nothing, a
    late landing retires them (a retry answers ``[]``). Raises :class:`BadRequest`
    ``permission_denied``, ``invalid_field`` (``min_version`` above the current version),
    :class:`Conflict` ``envelope_uses_older_version``, ``ConfigError``, :class:`ServiceUnavailable`.
    """
    item = _owned(owner, file_name)
    stored = datastore.stored_key_version(item)
    for _ in range(MAX_WRITE_RACES):
        live = versions(item)
        if min_version > live[0].version:
            raise BadRequest("invalid_field", f"'min_version' must be at most the current version {live[0].version}")
        if stored is not None and stored < min_version:
            raise Conflict("envelope_uses_older_version", f"the stored file is encrypted under version {stored}: "
                                                          "re-encrypt it (client: files rotate) before retiring that version")
        retired = [v.version for v in live if v.version < min_version]
        if not retired:
            return []
        body = _body(item)
        body[PREVIOUS] = [v.as_item() for v in live[1:] if v.version >= min_version]
        trail.record("kms_file_key_versions_retired", actor=trail.user_actor(owner), client_address=client_address, objects={"file_key": item["id"], "retired": retired, "min_version": min_version})
        try:
            cosmos.replace_item(cosmos.KMS_KEYS, body, item["_etag"])
            return retired
        except cosmos.EtagMismatch:
            item = _owned(owner, file_name)
    raise ServiceUnavailable(detail="the file's key is changing concurrently, try again")


def _owned(owner: str, file_name: str) -> dict[str, Any]:
    item = kms.key_of_owner(owner, file_name)
    if item is None:
        raise BadRequest("permission_denied", "only the owner of the file's key may rotate or retire it")
    return item


def _body(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if not name.startswith("_")}


def _current_fields(key_id: str, version: int, private_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The top-level fields of a key item whose current version is ``version`` of ``private_key``."""
    pkcs8 = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return {VERSION: version, "key_bits": private_key.key_size, "public_key": public_pem,
            "wrapped_private_key": key_wrap.wrap(pkcs8, wrap_aad(key_id, version)), "key_created_at": to_iso(utc_now())}
