"""App Attest request proofs: an assertion per request, its counter kept by compare-and-swap.

A device attested with ``apple-appattest`` proves each request (an upload, ...) with an assertion
over the request's client data (e.g. ``upload:{challenge}:{sha256 hex}``), checked by
:func:`shared_code.devices.attestation.apple.verify_assertion`. The accepted counter is stored on
the device record (``assertion_counter``) with a conditional replace on the record's etag, so of
two racing requests carrying assertions with one counter exactly one wins: the loser re-reads
the record, finds the counter no longer lower than its own and is refused as a replay.

Crash safety: the counter write is the only write. If the process dies (or the write times out
but lands) after it, the assertion is used up and the request fails; the device makes a new
assertion (its counter only grows), so a retry succeeds.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared_code.devices import registry
from shared_code.devices.attestation.apple import AssertionRefused, verify_assertion
from shared_code.platform import cosmos
from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.crypto import b64decode_strict
from shared_code.platform.errors import BadRequest, ServiceUnavailable, Unauthorized

ATTEMPTS = 3


def verify_assertion_proof(device: dict[str, Any], client_data: bytes, proof_b64: str, field: str) -> dict[str, Any]:
    """Check the App Attest assertion ``proof_b64`` (base64 CBOR, request field ``field``) over
    ``client_data`` and store its counter; returns the updated device record.

    Raises :class:`BadRequest` ``invalid_signature_encoding`` (400: not base64, not an assertion),
    :class:`Unauthorized` ``invalid_signature`` (401: signature or App ID) and
    ``assertion_replayed`` (401: counter not above the stored one, also after losing a race),
    :class:`~shared_code.platform.config.ConfigError` without ``APP_ATTEST_APP_IDS``,
    :class:`ServiceUnavailable` when the record keeps changing.
    """
    app_ids = get_settings().app_attest_app_ids
    if not app_ids:
        raise ConfigError("APP_ATTEST_APP_IDS", "is required for apple-appattest devices")
    try:
        assertion = b64decode_strict(proof_b64)
    except ValueError:
        raise BadRequest("invalid_signature_encoding", f"{field} must be base64") from None
    key = serialization.load_pem_public_key(device["public_key"].encode("ascii"))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unauthorized("invalid_signature", "the device key is not an App Attest key")
    current = device
    for _ in range(ATTEMPTS):
        try:
            counter = verify_assertion(assertion, client_data, key, app_ids, int(current.get("assertion_counter", 0)))
        except AssertionRefused as refused:
            if refused.reason == "malformed":
                raise BadRequest("invalid_signature_encoding", f"{field}: {refused}") from None
            if refused.reason == "counter":
                raise Unauthorized("assertion_replayed", f"{field}: {refused}") from None
            raise Unauthorized("invalid_signature", f"{field}: {refused}") from None
        try:
            return cosmos.replace_item(cosmos.DEVICES, {**current, "assertion_counter": counter}, current["_etag"])
        except cosmos.EtagMismatch:
            current = registry.require_active(registry.read_device(device["id"]))
            if current.get("public_key") != device["public_key"]:  # rotated meanwhile: the old key is out
                raise Unauthorized("invalid_signature", f"{field}: the device key was rotated") from None
    raise ServiceUnavailable(detail="the device record is being changed concurrently, try again")
