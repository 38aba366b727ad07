"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note form, signed with Ed25519.

A checkpoint (c2sp.org/tlog-checkpoint, "Note text")::

    trustgate/<AUDIT_ENVIRONMENT>/audit          origin
    20852163                                     tree size, decimal
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= RFC 6962 root hash, base64

    — trustgate/<env>/audit <base64(key ID || Ed25519 signature over the text above)>

Key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4] (c2sp.org/signed-note,
"Ed25519 signatures"); the key name is the origin. :func:`verifier_key` gives the public key in the
Go ``note`` verifier-key form ``<name>+<key ID hex>+<base64(0x01 || public key)>`` that verifiers pin.

Published checkpoints are appended, length-prefixed, to ``checkpoints/{segment}.bin`` (never
rewritten: immutability policy in Azure) and mirrored in Cosmos item ``audit_state/checkpoint``
for fast reads. :func:`publish` appends first, then updates the item:
- crash after the append, before the item update: the checkpoint is published; readers still get
  the previous one from the item until the next publish, which meets 412 at the stale offset,
  reads the newer record and repairs the item before going on;
- a checkpoint is appended only at the offset after the newest one and only if its size is larger,
  so the published sizes only grow and two instances never publish out of order.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared_code.audit import storage
from shared_code.audit.entries import encode_record
from shared_code.audit.sequencer import TreeState, synced_state
from shared_code.audit.storage import CHECKPOINT_SEGMENT_RECORDS, PositionTaken
from shared_code.platform import cosmos
from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.audit")

ITEM_ID = "checkpoint"
ED25519_TYPE = b"\x01"
MAX_ATTEMPTS = 8


def origin() -> str:
    """``trustgate/<AUDIT_ENVIRONMENT>/audit``: the log's identity and its key name."""
    return f"trustgate/{get_settings().audit_environment}/audit"


def _signing_key() -> Ed25519PrivateKey:
    seed = get_settings().audit_signing_key
    if len(seed) != 32:
        raise ConfigError("AUDIT_SIGNING_KEY", "must be base64 of a 32-byte Ed25519 private key (RFC 8032 seed)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> bytes:
    """c2sp.org/signed-note: SHA-256(key name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def verifier_key() -> str:
    """The public key to pin: ``<origin>+<key ID hex>+<base64(0x01 || Ed25519 public key)>``.
    Raises :class:`ConfigError` when ``AUDIT_SIGNING_KEY`` is unset or malformed."""
    public = _public_bytes(_signing_key())
    name = origin()
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519_TYPE + public).decode('ascii')}"


def note_text(size: int, root: bytes) -> str:
    """c2sp.org/tlog-checkpoint note text: origin, size, base64 root, each ending in a newline."""
    return f"{origin()}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def sign_note(text: str) -> str:
    """c2sp.org/signed-note: ``text`` + blank line + ``— <name> base64(key ID || signature)``."""
    key = _signing_key()
    name = origin()
    signature = key_id(name, _public_bytes(key)) + key.sign(text.encode("utf-8"))
    return f"{text}\n\u2014 {name} {base64.b64encode(signature).decode('ascii')}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint: ``size``, ``root`` (32 bytes), the signed ``note`` and when."""

    size: int
    root: bytes
    note: str
    published_at: str


def _from_item(item: dict) -> Checkpoint:
    return Checkpoint(item["size"], base64.b64decode(item["root"]), item["note"], item["published_at"])


def latest() -> Checkpoint | None:
    """The newest published checkpoint, or None before the first. Raises ServiceUnavailable."""
    item = cosmos.read_item(cosmos.AUDIT_STATE, ITEM_ID, ITEM_ID)
    return _from_item(item) if item else None


def _parse_size(note: str) -> int:
    return int(note.split("\n", 2)[1])


def _repair(item: dict | None) -> dict:
    """The checkpoint item brought up to the newest record of the checkpoint segments."""
    current = dict(item) if item else {"id": ITEM_ID, "size": -1, "count": 0, "offset": 0, "note": "",
                                       "root": "", "published_at": ""}
    for count, offset, record in _records_after(current):
        note = record.decode("utf-8")
        lines = note.split("\n")
        current.update(count=count + 1, offset=offset, note=note, size=int(lines[1]), root=lines[2],
                       published_at=to_iso(utc_now()))
    return current


def _records_after(item: dict):
    return storage.iter_records(storage.checkpoint_segment, item["count"], item["offset"], CHECKPOINT_SEGMENT_RECORDS)


def publish(state: TreeState | None = None) -> Checkpoint:
    """Sign and publish a checkpoint of the whole log (every stored entry folded in first) unless
    the newest one already has that size; returns the newest checkpoint.

    Raises :class:`ConfigError` without a signing key, :class:`ServiceUnavailable` on storage faults.
    """
    state = state or synced_state()
    item = cosmos.read_item(cosmos.AUDIT_STATE, ITEM_ID, ITEM_ID)
    for _ in range(MAX_ATTEMPTS):
        if item is not None and item["size"] >= state.size:
            return _from_item(item)
        note = sign_note(note_text(state.size, state.tree.root()))
        record = encode_record(note.encode("utf-8"))
        count, offset = (item["count"], item["offset"]) if item else (0, 0)
        try:
            storage.append_at(storage.checkpoint_segment(count // CHECKPOINT_SEGMENT_RECORDS), record, offset)
        except PositionTaken:
            repaired = _repair(item)
            item = _store_item(repaired, item)
            continue
        following = count + 1
        published = {"id": ITEM_ID, "size": state.size, "root": base64.b64encode(state.tree.root()).decode("ascii"),
                     "note": note, "published_at": to_iso(utc_now()), "count": following,
                     "offset": 0 if following % CHECKPOINT_SEGMENT_RECORDS == 0 else offset + len(record)}
        item = _store_item(published, item)
        log.info("audit checkpoint published: size %d", state.size)
        return _from_item(item)
    raise ServiceUnavailable(detail="checkpoint publishing is contended, try again")


def _store_item(new: dict, old: dict | None) -> dict:
    """Create or replace the checkpoint item (etag); after a lost race, the larger count wins."""
    try:
        if old is None:
            return cosmos.create_item(cosmos.AUDIT_STATE, {k: v for k, v in new.items() if not k.startswith("_")})
        return cosmos.replace_item(cosmos.AUDIT_STATE, {k: v for k, v in new.items() if not k.startswith("_")},
                                   old["_etag"])
    except (cosmos.AlreadyExists, cosmos.EtagMismatch):
        current = cosmos.read_item(cosmos.AUDIT_STATE, ITEM_ID, ITEM_ID)
        if current is None:
            raise ServiceUnavailable(detail="the checkpoint item vanished") from None
        return current


def publish_if_due(now: datetime | None = None) -> Checkpoint | None:
    """The timer's step: publish when the log grew and the newest checkpoint is at least
    ``AUDIT_CHECKPOINT_SECONDS`` old, or when there is none yet. Returns what was published."""
    settings = get_settings()
    state = synced_state()
    current = latest()
    if current is not None:
        age = ((now or utc_now()) - from_iso(current.published_at)).total_seconds()
        if state.size <= current.size or age < settings.audit_checkpoint_seconds:
            return None
    return publish(state)

