"""Proofs that a request comes from a device's attested key.

A device authorises an action (an upload, ...) by a proof over the action's client data, e.g.
``upload:{challenge}:{sha256 hex}``. Today the proof is a signature by the attested public key
(:meth:`shared_code.platform.crypto.DevicePublicKey.verify`: ECDSA, RSA PKCS#1 v1.5 / PSS,
Ed25519). Every action verifies through :func:`verify_request_proof`, so a new kind of device
proof is added here once for every action.

Devices attested with ``apple-appattest`` prove requests with App Attest assertions instead
(:mod:`shared_code.devices.attestation.assertions`: signature over
``SHA-256(authenticatorData ‖ SHA-256(client_data))``, App ID, counter stored by etag
compare-and-swap); the returned record then carries the new counter and etag.
"""

from __future__ import annotations

from typing import Any

from shared_code.devices.attestation.results import APPLE_APPATTEST
from shared_code.platform.crypto import b64decode_strict, load_device_public_key
from shared_code.platform.errors import BadRequest, Forbidden, Unauthorized


def verify_request_proof(device: dict[str, Any], client_data: bytes, proof_b64: str, field: str = "signature") -> dict[str, Any]:
    """Check that ``proof_b64`` (base64 or base64url text, the request field ``field``) proves
    ``client_data`` (the exact bytes the device signed) with ``device``'s attested key.

    Returns the device record to continue with (unchanged for signature proofs; with the new
    ``assertion_counter`` and etag for App Attest assertions, which also raise ``401
    assertion_replayed``, see :mod:`shared_code.devices.attestation.assertions`). Raises
    :class:`~shared_code.platform.errors.Forbidden` ``device_not_attested`` (403) when the device
    has no attested key, :class:`~shared_code.platform.errors.BadRequest`
    ``invalid_signature_encoding`` (400) for a proof that is not base64, and
    :class:`~shared_code.platform.errors.Unauthorized` ``invalid_signature`` (401) when it does
    not verify.
    """
    if not device.get("public_key"):
        raise Forbidden("device_not_attested", "attest the device key first")
    if (device.get("attestation") or {}).get("format") == APPLE_APPATTEST:
        # imported on first use: cbor2 and the App Attest verifier stay out of the cold start
        from shared_code.devices.attestation import assertions

        return assertions.verify_assertion_proof(device, client_data, proof_b64, field)
    try:
        signature = b64decode_strict(proof_b64)
    except ValueError:
        raise BadRequest("invalid_signature_encoding", f"{field} must be base64") from None
    if not load_device_public_key(device["public_key"]).verify(signature, client_data):
        raise Unauthorized("invalid_signature", f"{field} does not verify for this request and challenge")
    return device
