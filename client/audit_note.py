"""Signed checkpoints as the audit verifier reads them: C2SP signed-note (c2sp.org/signed-note) with
Ed25519 signatures, carrying a C2SP tlog-checkpoint body (c2sp.org/tlog-checkpoint).

The pinned key is a verifier key in the Go ``note`` form ``<name>+<key ID hex>+<base64(0x01 ||
32-byte Ed25519 public key)>`` (what ``GET /audit/checkpoint`` calls ``verifier_key``; pin it from a
channel you trust, not from the server you are checking).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = 0x01
EM_DASH = "\u2014"
MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 16
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class NoteError(ValueError):
    """The note is malformed, unsigned by the pinned key, or its signature does not verify."""


@dataclass(frozen=True)
class VerifierKey:
    """A pinned Ed25519 note key: ``name``, 4-byte ``key_id``, 32-byte ``public_key``."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> "VerifierKey":
        """Parse ``<name>+<hex key ID>+<base64(0x01 || key)>``; the key ID must match the key
        (c2sp.org/signed-note: SHA-256(name || 0x0A || 0x01 || key)[:4])."""
        parts = text.strip().split("+")
        if len(parts) != 3 or not parts[0] or re.search(r"\s", parts[0]):
            raise NoteError("a verifier key is <name>+<key id>+<base64 key>")
        try:
            key_id, raw = bytes.fromhex(parts[1]), base64.b64decode(parts[2], validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("verifier key id or key is not hex / base64") from None
        if len(key_id) != 4 or len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only 32-byte Ed25519 verifier keys (type 0x01) are accepted")
        if hashlib.sha256(parts[0].encode() + b"\n" + raw).digest()[:4] != key_id:
            raise NoteError("verifier key id does not match its key")
        return cls(parts[0], key_id, raw[1:])


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose signature by the pinned key verified: ``origin``, ``size``, ``root``,
    and the exact ``note`` text (with signatures)."""

    origin: str
    size: int
    root: bytes
    note: str


def verify_checkpoint(note: str, key: VerifierKey) -> SignedCheckpoint:
    """Verify ``note`` (a signed checkpoint) with ``key`` and parse its body.

    c2sp.org/signed-note: text, blank line, signature lines ``— <name> base64(key ID || sig)``;
    signatures of unknown keys are ignored, a failing signature of the pinned key rejects the
    note, and so does the absence of one. c2sp.org/tlog-checkpoint: origin (must be the key
    name), decimal size without leading zeros, base64 32-byte root; extension lines are ignored.
    Raises :class:`NoteError`.
    """
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("a note is valid UTF-8 without control characters other than newline")
    if not note.endswith("\n") or "\n\n" not in note:
        raise NoteError("a signed note is text, a blank line and signature lines")
    split = note.rindex("\n\n")
    text, signature_block = note[:split + 1], note[split + 2:]
    lines = signature_block[:-1].split("\n")
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note has 1 to {MAX_SIGNATURES} signature lines")
    verified = False
    for line in lines:
        match = re.fullmatch(rf"{EM_DASH} (\S+) ([A-Za-z0-9+/=]+)", line)
        if not match:
            raise NoteError("malformed signature line")
        raw = base64.b64decode(match.group(2))
        if match.group(1) != key.name or raw[:4] != key.key_id:
            continue  # "Verifiers MUST ignore signatures from unknown keys"
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise NoteError("the checkpoint signature of the pinned key does not verify") from None
        verified = True
    if not verified:
        raise NoteError("the checkpoint is not signed by the pinned key")
    body = text[:-1].split("\n")
    if len(body) < 3 or not all(body):
        raise NoteError("a checkpoint has origin, size and root lines")
    if body[0] != key.name:
        raise NoteError(f"checkpoint origin {body[0]!r} is not the pinned key's name")
    if not _DECIMAL.fullmatch(body[1]):
        raise NoteError("checkpoint tree size is not a decimal without leading zeros")
    try:
        root = base64.b64decode(body[2], validate=True)
    except binascii.Error:
        raise NoteError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise NoteError("checkpoint root is not a 32-byte hash")
    return SignedCheckpoint(body[0], int(body[1]), root, note)
