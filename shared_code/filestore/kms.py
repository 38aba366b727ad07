"""The KMS: one RSA key pair per file name, its owner, and who else may fetch the private key.

Container ``kms_keys`` (partition ``/id``), one item per file name. It alone decides who may use
the key::

    {"id": key_id, "file_name", "owner": email, "generation": random id of this key pair,
     "grantees": [email, ...], "key_bits", "public_key": PEM SPKI,
     "wrapped_private_key": {shared_code.filestore.key_wrap form}, "created_at": iso,
     "access_changed_at": iso, "key_version"?, "previous_versions"?}   # shared_code.filestore.key_versions

Container ``file_access`` (partition ``/email``) is the index that lists a user's files in one
single-partition query, one item per user and file::

    {"id": key_id, "email", "file_name", "role": "owner" | "grantee", "owner": email,
     "generation": the key's generation, "granted_at": iso}

``key_id`` is the SHA-256 hex of the NFC-normalised UTF-8 file name (any name is a valid Cosmos
id then). Creating the key item on that id makes exactly one of concurrent ``get_public_key``
calls for a name win.

Crash safety. A storage timeout is not a rollback: the write may land later. So every change is
one commit write to the key item (a conditional create, or a replace on its etag), and the index
entry it needs is written *before* it. An index entry grants nothing: readers show an entry only
while the current key item has the entry's generation and still names the user as owner or
grantee, so an entry left by a half-finished or lost request is invisible, and one written for
an earlier key of the name (keys go with their owner's account, and an entry may outlive its key) never
unlocks a later key. An access check is one point read of the key item; a revoke takes effect
with the very next request.

Account deletion (:mod:`shared_code.filestore.erasure`) destroys a key by replacing
its item with a tombstone that holds no key material (:func:`destroy_key`: crypto-shredding, every
version at once since they all live in the one item); readers take a tombstone for no key
(:func:`_read_key`), and it is deleted once the file and the index entries are gone. Grants go
only to active accounts, and are withdrawn again when the friend's account stopped being active
(or was registered anew) while the grant was being written.

Audit log (:mod:`shared_code.audit.trail`): ``kms_key_created``, ``kms_access_granted`` and
``kms_access_revoked`` are recorded before their first write; a failed log write is 503 with
nothing changed. (The key service's operations record their own: :mod:`shared_code.filestore.key_service`.)
"""

from __future__ import annotations

import unicodedata
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared_code.accounts import users
from shared_code.audit import trail
from shared_code.filestore import key_versions, key_wrap
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import random_token, sha256_hex
from shared_code.platform.errors import BadRequest, NotFound, ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now

MAX_FILE_NAME_LENGTH = 255
_PATH_SEPARATORS = frozenset("/\\")
LIST_PAGE_SIZE = 1000
KEY_LOOKUP_BATCH = 100
GENERATION_BYTES = 16
OWNER, GRANTEE = "owner", "grantee"
# Concurrent grants and revokes of one file retry their etag-guarded write at most this often.
MAX_WRITE_RACES = 16


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


def create_key(owner: str, file_name: str, client_address: str | None = None) -> str:
    """The public key of ``file_name``'s RSA key pair (``KMS_RSA_KEY_BITS``, e = 65537) owned by
    ``owner``, as PEM SubjectPublicKeyInfo (RFC 5280), generating the pair on the first call.

    Idempotent for the owner: a repeated call (a retry after a 503 included) returns the same
    public key and repairs the owner's index entry. The private key is stored only wrapped
    (:mod:`shared_code.filestore.key_wrap`).

    Steps, and what a caller sees if the process dies or the storage call times out right after
    each: (1) the owner's index entry for the new generation: nothing is usable or listed yet (no
    key item has that generation), a retry creates the key; (2) the key item, created on the
    name's id (the commit): if it lands after a timeout the caller got 503 but the key is
    complete, and a retry returns it. If another caller's key won (2), the stray entry of (1)
    stays invisible.

    Raises :class:`BadRequest` ``file_exists`` when another user owns the name (also when a
    concurrent call of theirs won), ``ConfigError`` when the master key is not usable (checked
    before any work), :class:`ServiceUnavailable` when Cosmos DB fails.
    """
    kek = key_wrap.current_kek()
    kid = key_id(file_name)
    existing = _read_key(kid)
    if existing is None:
        item = _new_key_item(kid, owner, file_name, kek)
        trail.record("kms_key_created", actor=trail.user_actor(owner), client_address=client_address,
                     objects={"file_key": kid, "key_version": key_versions.current_version(item), "key_bits": item["key_bits"]})
        _write_index(item, owner, OWNER)
        try:
            cosmos.create_item(cosmos.KMS_KEYS, item)
            return item["public_key"]
        except cosmos.AlreadyExists:
            existing = _read_key(kid)  # a concurrent call won, or this request's earlier try landed late
    if existing is None or existing["owner"] != owner:
        raise _file_exists()
    _ensure_index(existing, owner, OWNER)
    return existing["public_key"]


def _new_key_item(kid: str, owner: str, file_name: str, kek: bytes) -> dict[str, Any]:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=get_settings().kms_rsa_key_bits)
    pkcs8 = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    now = to_iso(utc_now())
    return {
        "id": kid, "file_name": file_name, "owner": owner, "generation": random_token(GENERATION_BYTES),
        "grantees": [], "key_bits": private_key.key_size, "public_key": public_pem,
        "wrapped_private_key": key_wrap.wrap(pkcs8, kid, kek), "created_at": now, "access_changed_at": now,
    }


def _read_key(kid: str) -> dict[str, Any] | None:
    """The key item ``kid``; ``None`` when there is none or it is a destroyed key's tombstone."""
    item = cosmos.read_item(cosmos.KMS_KEYS, kid, kid)
    return None if item is None or is_destroyed(item) else item


def role(key: dict[str, Any], email: str) -> str | None:
    """``owner`` / ``grantee`` when the key item ``key`` lets ``email`` use the key, else ``None``."""
    if key["owner"] == email:
        return OWNER
    return GRANTEE if email in key.get("grantees", ()) else None


def key_of_owner(email: str, file_name: str) -> dict[str, Any] | None:
    """The key item of ``file_name`` if ``email`` owns it, else ``None`` (also when there is no key)."""
    item = _read_key(key_id(file_name))
    return item if item is not None and item["owner"] == email else None


def key_for(email: str, file_name: str) -> dict[str, Any] | None:
    """The key item of ``file_name`` if ``email`` owns it or holds a grant, else ``None`` (one point read)."""
    item = _read_key(key_id(file_name))
    return item if item is not None and role(item, email) is not None else None


def grant(owner: str, file_name: str, friend_email: object, client_address: str | None = None) -> None:
    """Let the registered user ``friend_email`` fetch ``file_name``'s private key.

    Steps: (1) the friend's index entry: if the process dies or times out here, nothing is
    granted or listed; (2) the key item names the friend (the commit, a replace on its etag): from
    then on the friend can fetch the key and sees the file, also when (2) landed after a timeout
    (the caller got 503; a retry answers 200). Granting twice is harmless.

    Raises :class:`BadRequest` ``permission_denied`` when ``owner`` does not own the key,
    ``invalid_email`` / ``invalid_friend`` (the owner themself), :class:`NotFound`
    ``user_not_found`` when the friend is not registered, :class:`ServiceUnavailable`.
    """
    item, friend = _owned_and_friend(owner, file_name, friend_email)
    account = users.active_user(friend)
    if account is None:
        raise NotFound("user_not_found", "no registered user has that email")
    trail.record("kms_access_granted", actor=trail.user_actor(owner), client_address=client_address, objects={"file_key": item["id"], "grantee": trail.user_actor(friend)})
    _write_index(item, friend, GRANTEE)
    _change_grantees(item, friend, granted=True)
    _withdraw_if_gone(item, friend, users.incarnation(account))


def _withdraw_if_gone(key: dict[str, Any], friend: str, incarnation: str) -> None:
    """After a grant's commit: re-read the friend's account and withdraw the grant if it is no
    longer that active account (an account deletion may have removed its grants just before this
    one landed). Raises :class:`NotFound` ``user_not_found`` then."""
    account = users.active_user(friend)
    if account is None or users.incarnation(account) != incarnation:
        _change_grantees(key, friend, granted=False)
        raise NotFound("user_not_found", "no registered user has that email")


def revoke(owner: str, file_name: str, friend_email: object, client_address: str | None = None) -> bool:
    """Withdraw ``friend_email``'s grant at once; ``True`` if a grant existed.

    One step, the key item's replace on its etag: if it times out and lands later the caller got
    503 and the grant is gone; a retry answers 200. The friend's index entry stays, invisible.
    Raises like :func:`grant` except that the friend need not be registered.
    """
    item, friend = _owned_and_friend(owner, file_name, friend_email)
    trail.record("kms_access_revoked", actor=trail.user_actor(owner), client_address=client_address, objects={"file_key": item["id"], "grantee": trail.user_actor(friend)})
    return _change_grantees(item, friend, granted=False)


def _change_grantees(key: dict[str, Any], friend: str, *, granted: bool) -> bool:
    """Add or remove ``friend`` in the key item's grantees; returns whether they were a grantee.

    Always a write, conditional on the etag read, even when nothing changes: a late write (one
    that timed out and lands afterwards) was decided on an older etag and then fails instead of
    undoing a change acknowledged after it. A live request that loses the race reads again.
    """
    for _ in range(MAX_WRITE_RACES):
        current = key.get("grantees", [])  # absent on items of older code: nobody
        before = friend in current
        grantees = sorted(set(current) | {friend}) if granted else [e for e in current if e != friend]
        changed = {k: v for k, v in key.items() if not k.startswith("_")}
        changed.update(grantees=grantees, access_changed_at=to_iso(utc_now()))
        try:
            cosmos.replace_item(cosmos.KMS_KEYS, changed, key["_etag"])
            return before
        except cosmos.EtagMismatch:
            current = _read_key(key["id"])
            if current is None or current["owner"] != key["owner"]:
                raise _not_owner() from None
            key = current
    raise ServiceUnavailable(detail="the file's access list is changing concurrently, try again")


def accessible_files(email: str) -> list[dict[str, str]]:
    """Files whose key ``email`` owns or was granted, by name: ``[{file_name, role, owner}]``.

    One query in the caller's ``file_access`` partition, then one query for the key items those
    entries name; an entry counts only while its key item agrees (same generation, the caller
    still owner or grantee). Raises :class:`ServiceUnavailable`.
    """
    entries: list[dict[str, Any]] = []
    continuation: str | None = None
    while True:
        page, continuation = cosmos.query_page(
            cosmos.FILE_ACCESS, "SELECT c.id, c.generation FROM c WHERE c.email = @email",
            [{"name": "@email", "value": email}],
            partition_key=email, page_size=LIST_PAGE_SIZE, continuation=continuation)
        entries.extend(page)
        if not continuation:
            break
    keys = _key_summaries([entry["id"] for entry in entries], email)
    listed = []
    for entry in entries:
        key = keys.get(entry["id"])
        if key is None or key.get("generation") != entry.get("generation"):
            continue
        role = OWNER if key["owner"] == email else GRANTEE if key.get("granted") else None
        if role is not None:
            listed.append({"file_name": key["file_name"], "role": role, "owner": key["owner"]})
    return sorted(listed, key=lambda entry: entry["file_name"])


def _key_summaries(kids: list[str], email: str) -> dict[str, dict[str, Any]]:
    """``{key id: {id, file_name, owner, generation, granted}}`` of the key items in ``kids``."""
    query = ("SELECT c.id, c.file_name, c.owner, c.generation, ARRAY_CONTAINS(c.grantees, @email) AS granted "
             "FROM c WHERE ARRAY_CONTAINS(@ids, c.id)")
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(kids), KEY_LOOKUP_BATCH):
        batch = kids[start:start + KEY_LOOKUP_BATCH]
        parameters = [{"name": "@ids", "value": batch}, {"name": "@email", "value": email}]
        found.update((item["id"], item) for item in cosmos.query_first(cosmos.KMS_KEYS, query, parameters, len(batch)))
    return found


def _write_index(key: dict[str, Any], email: str, role: str) -> None:
    cosmos.upsert_item(cosmos.FILE_ACCESS, {
        "id": key["id"], "email": email, "file_name": key["file_name"], "role": role, "owner": key["owner"],
        "generation": key.get("generation"), "granted_at": to_iso(utc_now()),
    })


def _ensure_index(key: dict[str, Any], email: str, role: str) -> None:
    """Write ``email``'s index entry for ``key`` unless it is already there (repairs a half-made creation)."""
    entry = cosmos.read_item(cosmos.FILE_ACCESS, key["id"], email)
    if entry is None or entry.get("generation") != key.get("generation") or entry.get("role") != role:
        _write_index(key, email, role)


def _owned_and_friend(owner: str, file_name: str, friend_email: object) -> tuple[dict[str, Any], str]:
    friend = users.normalize_email(friend_email)
    item = key_of_owner(owner, file_name)
    if item is None:
        raise _not_owner()
    if friend == owner:
        raise BadRequest("invalid_friend", "the owner always has access to their own file")
    return item, friend


def _not_owner() -> BadRequest:
    return BadRequest("permission_denied", "only the owner of the file's key may change who has access")


def _file_exists() -> BadRequest:
    return BadRequest("file_exists", "a key for this file name already exists")


# -- account deletion: the KMS side of shared_code.filestore.erasure -------------------

def is_destroyed(item: dict[str, Any]) -> bool:
    """Whether a key item is a tombstone left by :func:`destroy_key`."""
    return bool(item.get("destroyed_at"))


def owned_key_ids(email: str) -> list[str]:
    """The ids of every key item ``email`` owns, tombstones included (a cross-partition query:
    key items are partitioned by id). Raises :class:`ServiceUnavailable`."""
    return _ids(cosmos.KMS_KEYS, "SELECT c.id FROM c WHERE c.owner = @email", email, None)


def granted_key_ids(email: str) -> list[str]:
    """The ids of the live keys whose item names ``email`` as a grantee (a cross-partition query)."""
    return _ids(cosmos.KMS_KEYS, "SELECT c.id FROM c WHERE ARRAY_CONTAINS(c.grantees, @email)", email, None)


def index_key_ids(email: str) -> list[str]:
    """The ids of every index entry of ``email`` (its ``file_access`` partition), whatever its role
    or generation: what must go so that nothing names the address any more."""
    return _ids(cosmos.FILE_ACCESS, "SELECT c.id FROM c WHERE c.email = @email", email, email)


def _ids(spec: cosmos.ContainerSpec, query: str, email: str, partition_key: str | None) -> list[str]:
    found: list[str] = []
    continuation: str | None = None
    while True:
        page, continuation = cosmos.query_page(spec, query, [{"name": "@email", "value": email}],
                                               partition_key=partition_key, page_size=LIST_PAGE_SIZE,
                                               continuation=continuation)
        found.extend(item["id"] for item in page)
        if not continuation:
            return found


def destroy_key(kid: str) -> list[str] | None:
    """Crypto-shred key ``kid``: replace its item (etag-guarded) by a tombstone without the public
    key or any wrapped private key version and without grantees, keeping ``id``, ``file_name``,
    ``owner`` and ``generation``. Returns the grantees it had (the grants revoked with it), or
    ``None`` when it is gone or a tombstone already. From the moment the replace lands nobody can
    get the private key, so every ciphertext sealed for it is unreadable. Raises
    :class:`ServiceUnavailable` (if the replace landed anyway, a retry finds the tombstone)."""
    for _ in range(MAX_WRITE_RACES):
        item = cosmos.read_item(cosmos.KMS_KEYS, kid, kid)
        if item is None or is_destroyed(item):
            return None
        tombstone = {"id": kid, "file_name": item.get("file_name"), "owner": item["owner"],
                     "generation": item.get("generation"), "grantees": [], "destroyed_at": to_iso(utc_now())}
        try:
            cosmos.replace_item(cosmos.KMS_KEYS, tombstone, item["_etag"])
            return list(item.get("grantees", []))
        except cosmos.EtagMismatch:
            continue
    raise ServiceUnavailable(detail="the key kept changing while it was being destroyed, try again")


def remove_grantee(kid: str, email: str) -> bool:
    """Withdraw ``email``'s grant on key ``kid`` (its account is being deleted); ``True`` if it had one."""
    key = _read_key(kid)
    if key is None or email not in key.get("grantees", []):
        return False
    try:
        return _change_grantees(key, email, granted=False)
    except BadRequest:  # the key was destroyed or changed hands meanwhile: no grant left to withdraw
        return False


def drop_index(kid: str, email: str) -> bool:
    """Delete ``email``'s index entry for key ``kid``; ``True`` if one existed."""
    return cosmos.delete_item(cosmos.FILE_ACCESS, kid, email)


def delete_tombstone(kid: str) -> bool:
    """Delete a destroyed key's tombstone (the file name becomes free); never a live key."""
    item = cosmos.read_item(cosmos.KMS_KEYS, kid, kid)
    return item is not None and is_destroyed(item) and cosmos.delete_item(cosmos.KMS_KEYS, kid, kid, etag=item["_etag"])
