"""Crypto helpers: keyed hashes, key parsing and every accepted signature scheme."""

import hashlib
import io

import pytest
from cryptography.hazmat.primitives import serialization

from shared_code.platform.crypto import (
    UnusableKey,
    b64decode_strict,
    keyed_hash,
    keyed_hash_matches,
    load_device_public_key,
    random_token,
    sha256_stream,
)
from tests.support.devices import new_key, public_pem, sign

KEY = b"k" * 32


def test_keyed_hash_depends_on_key_and_value_and_verifies():
    digest = keyed_hash(KEY, "token")
    assert len(digest) == 64 and digest != keyed_hash(b"j" * 32, "token") != keyed_hash(KEY, "token2")
    assert keyed_hash_matches(KEY, "token", digest)
    assert not keyed_hash_matches(KEY, "token", digest[:-1] + "0")
    assert not keyed_hash_matches(KEY, "token", "not hex")


def test_random_tokens_are_urlsafe_and_distinct():
    tokens = {random_token(32) for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) == 43 and "=" not in t and "+" not in t for t in tokens)


@pytest.mark.parametrize("kind, pss", [("p256", False), ("p384", False), ("rsa2048", False), ("rsa-pss", True), ("ed25519", False)])
def test_signatures_verify_for_the_signed_message_only(kind, pss):
    key = new_key(kind)
    device_key = load_device_public_key(public_pem(key))
    signature = b64decode_strict(sign(key, b"attest:abc", pss=pss))
    assert device_key.verify(signature, b"attest:abc")
    assert not device_key.verify(signature, b"attest:abd")
    assert not device_key.verify(b"\x00" * len(signature), b"attest:abc")
    assert not device_key.verify(b"", b"attest:abc")


def test_p256_signature_does_not_verify_under_another_key():
    key, other = new_key("p256"), new_key("p256")
    signature = b64decode_strict(sign(key, b"m"))
    assert not load_device_public_key(public_pem(other)).verify(signature, b"m")


@pytest.mark.parametrize("kind", ["p521", "k256", "rsa1024"])
def test_unaccepted_keys_are_unusable(kind):
    with pytest.raises(UnusableKey):
        load_device_public_key(public_pem(new_key(kind)))


def test_private_key_pem_is_not_a_public_key():
    pem = new_key("p256").private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    with pytest.raises(UnusableKey):
        load_device_public_key(pem)


def test_canonical_pem_is_stable():
    key = new_key("p256")
    assert load_device_public_key(public_pem(key)).pem == public_pem(key)


def test_b64decode_accepts_standard_and_urlsafe_and_rejects_garbage():
    assert b64decode_strict("+/8=") == b64decode_strict("-_8") == b"\xfb\xff"
    with pytest.raises(ValueError):
        b64decode_strict("***")


def test_sha256_stream_reads_in_chunks():
    data = b"abc" * 1000
    assert sha256_stream(io.BytesIO(data), chunk_bytes=7) == (hashlib.sha256(data).hexdigest(), 3000)
