"""File key versions: how a key item in ``kms_keys`` holds them (no I/O here).

The item's top-level ``public_key``, ``wrapped_private_key`` and ``key_bits`` are the **current**
version, numbered ``key_version`` (absent on items made before versions existed: 1), made at
``key_created_at`` (else the item's ``created_at``). So every reader that knows nothing of
versions (key creation, the upload's size check) keeps seeing the current key. Older versions
that may still decrypt are in ``previous_versions``, newest first::

    "key_version": 3,
    "previous_versions": [{"version": 2, "key_bits", "public_key", "wrapped_private_key", "created_at"}, ...]

A version below the oldest one listed is **retired**: its private key is destroyed (crypto-shredded)
and nothing decrypts under it again. The private key of version 1 is wrapped with the key id as
associated data (as before versions existed); version *n* > 1 with ``"<key id>/v<n>"``, so a
wrapped key moved into another version's slot fails to unwrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_code.platform.errors import BadRequest

VERSION = "key_version"
PREVIOUS = "previous_versions"
MAX_VERSION = 1_000_000


@dataclass(frozen=True)
class KeyVersion:
    """One version of a file key pair: ``version`` (1, 2, ...), ``key_bits``, ``public_key`` (PEM
    SPKI), ``wrapped_private_key`` (:mod:`~shared_code.filestore.key_wrap` form), ``created_at`` (ISO)."""

    version: int
    key_bits: int
    public_key: str
    wrapped_private_key: dict[str, str]
    created_at: str

    def as_item(self) -> dict[str, Any]:
        """The entry of ``previous_versions``."""
        return {"version": self.version, "key_bits": self.key_bits, "public_key": self.public_key,
                "wrapped_private_key": self.wrapped_private_key, "created_at": self.created_at}


def current_version(item: dict[str, Any]) -> int:
    """The current version number of a key item (1 for items made before versions existed)."""
    return int(item.get(VERSION, 1))


def versions(item: dict[str, Any]) -> list[KeyVersion]:
    """Every version of ``item`` that can still decrypt, current first."""
    current = KeyVersion(current_version(item), item["key_bits"], item["public_key"], item["wrapped_private_key"],
                         item.get("key_created_at", item.get("created_at", "")))
    return [current] + [KeyVersion(p["version"], p["key_bits"], p["public_key"], p["wrapped_private_key"], p["created_at"])
                        for p in item.get(PREVIOUS, [])]


def wrap_aad(key_id: str, version: int) -> str:
    """The associated data binding a wrapped private key to its file key and version."""
    return key_id if version == 1 else f"{key_id}/v{version}"


def version_of(item: dict[str, Any], version: int | None) -> KeyVersion:
    """Version ``version`` of ``item`` (``None``: the current one).

    Raises :class:`BadRequest` ``key_version_retired`` for a version whose private key was
    destroyed and ``key_version_unknown`` for one never made.
    """
    found = versions(item)
    if version is None:
        return found[0]
    for candidate in found:
        if candidate.version == version:
            return candidate
    if 1 <= version < found[0].version:
        raise BadRequest("key_version_retired", f"version {version} of this file's key was retired: nothing decrypts under it")
    raise BadRequest("key_version_unknown", f"this file's key has no version {version} (current: {found[0].version})")


def parse_version(raw: object, name: str = "key_version", *, required: bool = False) -> int | None:
    """A version number from a request body (``None`` when absent and not ``required``).

    Raises :class:`BadRequest` ``missing_fields`` (absent but required) or ``invalid_field``
    (not an integer from 1 to 1,000,000).
    """
    if raw is None:
        if required:
            raise BadRequest("missing_fields", f"'{name}' is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_VERSION:
        raise BadRequest("invalid_field", f"'{name}' must be a positive integer")
    return raw
