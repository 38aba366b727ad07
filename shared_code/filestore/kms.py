"""The KMS: one RSA key pair per file name, its owner, and who else may fetch the private key.

Container ``kms_keys`` (partition ``/id``), one item per file name::

    {"id": key_id, "file_name", "owner": email, "key_bits", "public_key": PEM SPKI,
     "wrapped_private_key": {shared_code.filestore.key_wrap form}, "created_at": iso,
     "key_version"?, "previous_versions"?}    # key versions: shared_code.filestore.key_versions

Container ``file_access`` (partition ``/email``), one item per user who may use the key::

    {"id": key_id, "email", "file_name", "role": "owner" | "grantee", "owner": email, "granted_at": iso}

``key_id`` is the SHA-256 hex of the NFC-normalised UTF-8 file name (any name is a valid Cosmos
id then). Creating the key item on that id makes exactly one of concurrent ``get_public_key``
calls for a name win. An access check is one point read, a revoke one delete (effective for the
very next request), and listing a user's files one single-partition query.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared_code.accounts import users
from shared_code.filestore import key_wrap
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import BadRequest, NotFound, ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now

MAX_FILE_NAME_LENGTH = 255
_PATH_SEPARATORS = frozenset("/\\")
LIST_PAGE_SIZE = 1000


def validate_file_name(raw: object) -> str:
    """The file name in NFC form: 1-255 characters, no ``/`` or ``\\``, no control characters
    (Unicode category Cc), not ``.`` or ``..``.

    Raises :class:`BadRequest` ``missing_fields`` when absent or empty, ``invalid_file_name`` otherwise.
    """
    if raw is None or raw == "":
        raise BadRequest("missing_fields", "'file_name' is required")
    if not isinstance(raw, str):
        raise BadRequest("invalid_file_name", "'file_name' must be a string")
    name = unicodedata.normalize("NFC", raw)
    if not 1 <= len(name) <= MAX_FILE_NAME_LENGTH:
        raise BadRequest("invalid_file_name", f"'file_name' must be 1-{MAX_FILE_NAME_LENGTH} characters")
    if name in (".", "..") or any(ch in _PATH_SEPARATORS or unicodedata.category(ch) == "Cc" for ch in name):
        raise BadRequest("invalid_file_name", "'file_name' may not contain path separators or control characters")
    return name


def key_id(file_name: str) -> str:
    """The key id of a validated file name: SHA-256 (FIPS 180-4) of its UTF-8, lowercase hex."""
    return sha256_hex(file_name)


def create_key(owner: str, file_name: str) -> str:
    """Generate the RSA key pair of ``file_name`` (``KMS_RSA_KEY_BITS``, e = 65537), owned by
    ``owner``; returns the public key as PEM SubjectPublicKeyInfo (RFC 5280).

    The private key is stored only wrapped (:mod:`shared_code.filestore.key_wrap`). Raises
    :class:`BadRequest` ``file_exists`` when the name already has a key (also when a concurrent
    call won), ``ConfigError`` when the master key is not usable (checked before any work), and
    :class:`ServiceUnavailable` when Cosmos DB fails (then nothing is left behind).
    """
    kek = key_wrap.current_kek()
    kid = key_id(file_name)
    if cosmos.read_item(cosmos.KMS_KEYS, kid, kid) is not None:
        raise _file_exists()
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=get_settings().kms_rsa_key_bits)
    pkcs8 = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    now = to_iso(utc_now())
    item = {
        "id": kid, "file_name": file_name, "owner": owner, "key_bits": private_key.key_size,
        "public_key": public_pem, "wrapped_private_key": key_wrap.wrap(pkcs8, kid, kek), "created_at": now,
    }
    try:
        cosmos.create_item(cosmos.KMS_KEYS, item)
    except cosmos.AlreadyExists:
        raise _file_exists() from None
    try:
        cosmos.create_item(cosmos.FILE_ACCESS, _access_item(kid, owner, file_name, "owner", owner, now))
    except (ServiceUnavailable, cosmos.AlreadyExists):
        cosmos.delete_item(cosmos.KMS_KEYS, kid, kid)  # no key without its owner's access entry
        raise
    return public_pem


def key_of_owner(email: str, file_name: str) -> dict[str, Any] | None:
    """The key item of ``file_name`` if ``email`` owns it, else ``None`` (also when there is no key)."""
    kid = key_id(file_name)
    item = cosmos.read_item(cosmos.KMS_KEYS, kid, kid)
    return item if item is not None and item["owner"] == email else None


def key_for(email: str, file_name: str) -> dict[str, Any] | None:
    """The key item of ``file_name`` if ``email`` owns it or holds a live grant, else ``None``."""
    return cosmos.read_item(cosmos.KMS_KEYS, key_id(file_name), key_id(file_name)) if has_access(email, file_name) else None


def has_access(email: str, file_name: str) -> bool:
    """Whether ``email`` owns ``file_name``'s key or holds a live grant (one point read)."""
    return cosmos.read_item(cosmos.FILE_ACCESS, key_id(file_name), email) is not None


def grant(owner: str, file_name: str, friend_email: object) -> None:
    """Let the registered user ``friend_email`` fetch ``file_name``'s private key.

    Raises :class:`BadRequest` ``permission_denied`` when ``owner`` does not own the key,
    ``invalid_email`` / ``invalid_friend`` (the owner themself), :class:`NotFound`
    ``user_not_found`` when the friend is not registered. Granting twice is harmless.
    """
    item, friend = _owned_and_friend(owner, file_name, friend_email)
    if users.get_user(friend) is None:
        raise NotFound("user_not_found", "no registered user has that email")
    cosmos.upsert_item(cosmos.FILE_ACCESS,
                       _access_item(item["id"], friend, item["file_name"], "grantee", owner, to_iso(utc_now())))


def revoke(owner: str, file_name: str, friend_email: object) -> bool:
    """Withdraw ``friend_email``'s grant at once; ``True`` if a grant existed.

    Raises like :func:`grant` except that the friend need not be registered.
    """
    item, friend = _owned_and_friend(owner, file_name, friend_email)
    return cosmos.delete_item(cosmos.FILE_ACCESS, item["id"], friend)


def accessible_files(email: str) -> list[dict[str, str]]:
    """Files whose key ``email`` owns or was granted, by name: ``[{file_name, role, owner}]``.

    One query in the caller's ``file_access`` partition. Raises :class:`ServiceUnavailable`.
    """
    entries: list[dict[str, str]] = []
    continuation: str | None = None
    while True:
        page, continuation = cosmos.query_page(
            cosmos.FILE_ACCESS, "SELECT * FROM c WHERE c.email = @email", [{"name": "@email", "value": email}],
            partition_key=email, page_size=LIST_PAGE_SIZE, continuation=continuation)
        entries.extend({"file_name": i["file_name"], "role": i["role"], "owner": i["owner"]} for i in page)
        if not continuation:
            return sorted(entries, key=lambda entry: entry["file_name"])


def _owned_and_friend(owner: str, file_name: str, friend_email: object) -> tuple[dict[str, Any], str]:
    friend = users.normalize_email(friend_email)
    item = key_of_owner(owner, file_name)
    if item is None:
        raise BadRequest("permission_denied", "only the owner of the file's key may change who has access")
    if friend == owner:
        raise BadRequest("invalid_friend", "the owner always has access to their own file")
    return item, friend


def _access_item(kid: str, email: str, file_name: str, role: str, owner: str, granted_at: str) -> dict[str, str]:
    return {"id": kid, "email": email, "file_name": file_name, "role": role, "owner": owner, "granted_at": granted_at}


def _file_exists() -> BadRequest:
    return BadRequest("file_exists", "a key for this file name already exists")
