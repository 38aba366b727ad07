"""Audit entries: one canonical JSON document per trust decision, stored as a length-prefixed record.

An entry (RFC 8785 JCS, UTF-8, via the ``rfc8785`` library) holds exactly these members::

    {"v": 1, "seq": int, "ts": "2026-01-02T03:04:05.123456Z", "event": "token_issued",
     "actor": "operator" | "device:<deviceid>" | "user:<salted digest>",
     "client": "<salted digest of the caller's address>" | null,
     "objects": {"device": "...", "token_ref": "...", ...},
     "outcome": "granted" | "refused", "failed_checks": ["..."],
     "request_id": "<32 hex>" | null,
     "evidence": {"sha256": "<hex>", "verifier": "<name/version>", "policy": "<hex>"} | null}

``seq`` is the entry's leaf index in the Merkle tree, so a reordered or dropped entry is visible
without the tree. Nothing secret goes in: tokens appear as ``token_ref`` (a prefix of their stored
SHA-256), emails and IP addresses only as salted digests (:func:`salted_digest`, HMAC-SHA256 under
``AUDIT_SALT``, kept in Key Vault: a digest can be recomputed for a lookup by whoever holds the
salt, but not brute-forced from the log), evidence only as a digest.

A record in a log segment is ``uint32 big-endian length || entry`` (one Append Block each).
"""

from __future__ import annotations

import re
import struct
from typing import Any, Iterator, Mapping, Sequence

import rfc8785

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.crypto import keyed_hash

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 16 * 1024
LENGTH_PREFIX = struct.Struct(">I")
OUTCOMES = ("granted", "refused")

EVENT_PATTERN = re.compile(r"[a-z][a-z0-9_]{2,63}")
ACTOR_PATTERN = re.compile(r"operator|device:[A-Za-z0-9._:-]{1,128}|user:[0-9a-f]{64}")
OBJECT_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
CHECK_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
HEX_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_OBJECT_VALUE_CHARS = 512
MAX_OBJECTS = 16


class InvalidEntry(ValueError):
    """An entry field is missing, malformed or too large (a programming error of the caller)."""


def salted_digest(value: str) -> str:
    """HMAC-SHA256 (RFC 2104) of ``value`` under the ``AUDIT_SALT`` key, 64 lowercase hex.

    Raises :class:`ConfigError` when ``AUDIT_SALT`` is not set (in Azure a Key Vault reference):
    an audit entry is never written with an email or address in clear.
    """
    salt = get_settings().audit_salt
    if not salt:
        raise ConfigError("AUDIT_SALT", "is required to write audit entries (base64, >= 32 bytes)")
    return keyed_hash(salt, value)


def _check_objects(objects: Mapping[str, Any]) -> dict[str, Any]:
    if len(objects) > MAX_OBJECTS:
        raise InvalidEntry(f"at most {MAX_OBJECTS} objects")
    checked: dict[str, Any] = {}
    for key, value in objects.items():
        if not isinstance(key, str) or not OBJECT_KEY_PATTERN.fullmatch(key):
            raise InvalidEntry(f"object key {key!r} is not snake_case")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and len(item) > MAX_OBJECT_VALUE_CHARS:
                raise InvalidEntry(f"object {key} is longer than {MAX_OBJECT_VALUE_CHARS} characters")
            if item is not None and not isinstance(item, (str, int, bool)):
                raise InvalidEntry(f"object {key} must be text, a number, a boolean or null")
        checked[key] = value
    return checked


def evidence_field(evidence: Mapping[str, str] | None) -> dict[str, str] | None:
    """Validate ``{"sha256", "verifier", "policy"}`` (hex digests and a verifier name/version)."""
    if evidence is None:
        return None
    if set(evidence) != {"sha256", "verifier", "policy"}:
        raise InvalidEntry("evidence needs exactly sha256, verifier and policy")
    if not HEX_PATTERN.fullmatch(evidence["sha256"]) or not HEX_PATTERN.fullmatch(evidence["policy"]):
        raise InvalidEntry("evidence sha256 and policy must be SHA-256 hex digests")
    if not isinstance(evidence["verifier"], str) or not 1 <= len(evidence["verifier"]) <= 64:
        raise InvalidEntry("evidence verifier must be a short name/version")
    return dict(evidence)


def build_entry(
    *,
    seq: int,
    ts: str,
    event: str,
    actor: str,
    objects: Mapping[str, Any],
    outcome: str,
    failed_checks: Sequence[str] = (),
    request_id: str | None = None,
    client: str | None = None,
    evidence: Mapping[str, str] | None = None,
) -> bytes:
    """The canonical (RFC 8785) UTF-8 bytes of one entry. Raises :class:`InvalidEntry`."""
    if not EVENT_PATTERN.fullmatch(event):
        raise InvalidEntry(f"event {event!r} is not a snake_case name")
    if not ACTOR_PATTERN.fullmatch(actor):
        raise InvalidEntry("actor must be operator, device:<id> or user:<salted digest>")
    if outcome not in OUTCOMES:
        raise InvalidEntry(f"outcome must be one of {OUTCOMES}")
    checks = list(failed_checks)
    if any(not isinstance(c, str) or not CHECK_PATTERN.fullmatch(c) for c in checks):
        raise InvalidEntry("failed_checks must be snake_case check names")
    if client is not None and not HEX_PATTERN.fullmatch(client):
        raise InvalidEntry("client must be a salted digest")
    document = {
        "v": ENTRY_VERSION, "seq": seq, "ts": ts, "event": event, "actor": actor, "client": client,
        "objects": _check_objects(objects), "outcome": outcome, "failed_checks": checks,
        "request_id": request_id, "evidence": evidence_field(evidence),
    }
    entry = rfc8785.dumps(document)
    if len(entry) > MAX_ENTRY_BYTES:
        raise InvalidEntry(f"entry is larger than {MAX_ENTRY_BYTES} bytes")
    return entry


def encode_record(entry: bytes) -> bytes:
    """``uint32 big-endian length || entry``: one record of a log segment."""
    return LENGTH_PREFIX.pack(len(entry)) + entry


def decode_records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(end offset in data, entry)`` for each whole record in ``data``; a trailing
    incomplete record (a read window that cut it) is left for the next read. Raises ``ValueError``
    for a length no writer produces (a corrupt segment)."""
    position = 0
    while position + LENGTH_PREFIX.size <= len(data):
        (length,) = LENGTH_PREFIX.unpack_from(data, position)
        if not 0 < length <= MAX_ENTRY_BYTES:
            raise ValueError(f"record at byte {position} has impossible length {length}")
        end = position + LENGTH_PREFIX.size + length
        if end > len(data):
            return
        yield end, data[position + LENGTH_PREFIX.size:end]
        position = end
