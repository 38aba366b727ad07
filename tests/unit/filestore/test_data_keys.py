"""Unwrapping data keys inside the KMS: RSA-OAEP-SHA256, one answer for every failure."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from client.envelope import seal
from shared_code.filestore import data_keys
from shared_code.platform.errors import BadRequest


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _wrapped(key, plaintext: bytes) -> bytes:
    return key.public_key().encrypt(plaintext, data_keys.oaep())


def test_the_clients_wrapped_data_key_unwraps(key):
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    sealed = seal(b"file", "f.txt", public_pem)
    data_key = data_keys.unwrap_data_key(_pem(key), _b64(sealed.encrypted_aes_key))
    assert len(data_key) == 32


@pytest.mark.parametrize("size", [16, 24, 32])
def test_every_aes_key_size_unwraps(key, size):
    data_key = os.urandom(size)
    assert data_keys.unwrap_data_key(_pem(key), _b64(_wrapped(key, data_key))) == data_key


def _failures(key, other_key) -> dict[str, object]:
    good = _wrapped(key, os.urandom(32))
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    modulus = key.key_size // 8
    return {
        "wrong key": _b64(_wrapped(other_key, os.urandom(32))),
        "bit flip (bad padding)": _b64(bytes(flipped)),
        "first byte altered": _b64(bytes([good[0] ^ 0x80]) + good[1:]),
        "one byte short": _b64(good[:-1]),
        "one byte long": _b64(good + b"\x00"),
        "zero length": "",
        "all zero": _b64(bytes(modulus)),
        "not below the modulus": _b64(b"\xff" * modulus),
        "valid OAEP, not an AES key (31 bytes)": _b64(_wrapped(key, os.urandom(31))),
        "valid OAEP, empty": _b64(_wrapped(key, b"")),
        "not base64": "%%%%",
        "not a string": 12345,
        "too long": "A" * 5000,
    }


def test_every_decryption_failure_gives_the_one_same_answer(key, other_key):
    answers = set()
    for case, wrapped in _failures(key, other_key).items():
        with pytest.raises(BadRequest) as raised:
            data_keys.unwrap_data_key(_pem(key), wrapped)
        answers.add((raised.value.status, raised.value.message, raised.value.detail, type(raised.value)))
        assert raised.value.__cause__ is None and raised.value.__suppress_context__, case  # no chained library error
    assert answers == {(400, "invalid_wrapped_key", "the wrapped key does not unwrap under this file's key", BadRequest)}
