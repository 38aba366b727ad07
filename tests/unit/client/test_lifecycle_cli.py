"""``device rotate-key`` / ``rotate-token`` against a fake server: what the client keeps when an
answer is lost, what it signs, and when it gives a pending key or token up."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client import lifecycle_cli
from client.cli import main
from client.keys import load_private_key_pem
from client.state import load_private_key, load_state


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(lifecycle_cli, "RETRY_SECONDS", 0)


def run(device, *args: str) -> int:
    return main(["--home", str(device.home), *args], out=io.StringIO())


def spki_sha256(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    return hashlib.sha256(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def test_rotate_key_signs_with_both_keys_and_keeps_the_new_key_only_once_confirmed(fake_server, device):
    issued = fake_server.serve_challenges()
    answers = iter([(503, {"code": 503, "message": "service_unavailable", "detail": "x"}),
                    (409, {"code": 409, "message": "key_already_current", "detail": "landed"})])
    fake_server.routes[("POST", "/rotate-device-key")] = lambda r: next(answers)
    old = load_private_key(device.state.key_path)
    assert run(device, "device", "rotate-key") == 0
    first, second = (r.json() for r in fake_server.received("POST", "/rotate-device-key"))
    assert first["challenge"] == issued[0] and second["challenge"] == issued[1]  # a fresh challenge per attempt
    assert first["new_public_key"] == second["new_public_key"]  # the same new key each time
    new = load_private_key(load_state(device.home).key_path)
    assert new.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode() \
        == first["new_public_key"] != old.public_key().public_bytes(serialization.Encoding.PEM,
                                                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    message = f"rotate:{issued[1]}:{spki_sha256(second['new_public_key'])}".encode()
    ecdsa = ec.ECDSA(hashes.SHA256())
    old.public_key().verify(base64.b64decode(second["signature_by_old_key"]), message, ecdsa)  # continuity
    new.public_key().verify(base64.b64decode(second["signature_by_new_key"]), message, ecdsa)  # possession
    assert not os.path.exists(device.state.key_path + ".next")


def test_an_unreachable_server_keeps_the_pending_key_for_the_next_run(fake_server, device):
    fake_server.serve_challenges()
    fake_server.routes[("POST", "/rotate-device-key")] = lambda r: (503, {"code": 503, "message": "service_unavailable", "detail": "x"})
    old_pem = open(device.state.key_path, "rb").read()
    assert run(device, "device", "rotate-key") == 1
    pending = device.state.key_path + ".next"
    assert os.path.exists(pending) and open(device.state.key_path, "rb").read() == old_pem
    fake_server.routes[("POST", "/rotate-device-key")] = lambda r: (200, {"code": 200, "message": "device_key_rotated",
                                                                           "trust_level": "software"})
    assert run(device, "device", "rotate-key") == 0
    sent = {r.json()["new_public_key"] for r in fake_server.received("POST", "/rotate-device-key")}
    assert len(sent) == 1 and not os.path.exists(pending)  # the pending key was the one bound


def test_a_refused_rotation_drops_the_pending_key(fake_server, device):
    fake_server.serve_challenges()
    fake_server.routes[("POST", "/rotate-device-key")] = lambda r: (403, {"code": 403, "message": "trust_downgrade", "detail": "x"})
    assert run(device, "device", "rotate-key") == 1
    assert not os.path.exists(device.state.key_path + ".next")
    load_private_key_pem(open(device.state.key_path, "rb").read())  # the old key is untouched


def test_rotate_token_finds_out_which_token_the_server_has_after_a_lost_answer(fake_server, device):
    fake_server.serve_challenges()
    old = device.state.device_token
    fake_server.routes[("POST", "/rotate-device-token")] = lambda r: (503, {"code": 503, "message": "service_unavailable", "detail": "x"})
    landed: list[str] = []

    def device_info(request):
        token = request.headers.get("devicetoken")
        return (200, {"code": 200, "message": "device", "device": {}}) if token in landed else \
            (403, {"code": 403, "message": "invalid_credentials", "detail": "x"})

    fake_server.routes[("GET", "/api/device")] = device_info
    assert run(device, "device", "rotate-token") == 1
    pending = load_state(device.home).pending_device_token
    assert pending and load_state(device.home).device_token == old
    landed.append(pending)  # the write had landed after all
    assert run(device, "device", "rotate-token") == 0
    state = load_state(device.home)
    assert (state.device_token, state.pending_device_token) == (pending, None)
    body = fake_server.received("POST", "/rotate-device-token")[0].json()
    assert body["new_device_token"] == pending and body["signature"]
