"""``python -m client files put|get|grant|revoke|ls`` against a recording fake server (a fake KMS
that unwraps data keys with its private key, as the real one does)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from client.cli import main

SID = "S" * 43


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture
def store(fake_server, key_pair):
    """A fake KMS + store: keeps the last upload and serves it back."""
    public, private = key_pair
    stored: dict[str, dict] = {}

    def ok(message: str, **fields):
        return 200, {"code": 200, "message": message, **fields}

    def upload(request):
        stored[request.json()["file_name"]] = request.json()
        return ok("upload_success")

    def download(request):
        name = request.query["file_name"][0]
        return ok("download_success", **stored[name]) if name in stored else (404, {"code": 404, "message": "file_not_found"})

    def unwrap_key(request):
        key = serialization.load_pem_private_key(private, None)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        return ok("key_unwrapped", aes_key=base64.b64encode(key.decrypt(base64.b64decode(request.json()["encrypted_aes_key"]), oaep)).decode())

    fake_server.routes.update({
        ("POST", "/get_public_key"): lambda r: ok("public_key_saved", kms_public_key=base64.b64encode(public).decode()),
        ("POST", "/get_private_key"): lambda r: ok("private_key_retrieved", kms_private_key=base64.b64encode(private).decode()),
        ("POST", "/upload"): upload,
        ("GET", "/download"): download,
        ("POST", "/unwrap_key"): unwrap_key,
        ("POST", "/grant_access"): lambda r: ok("grant_success"),
        ("POST", "/revoke_access"): lambda r: (400, {"code": 400, "message": "permission_denied", "detail": "not the owner"}),
        ("GET", "/list_files"): lambda r: ok("list_files_success", files=["a.txt"],
                                             entries=[{"file_name": "a.txt", "role": "grantee", "owner": "o@example.org"}]),
    })
    return stored


@pytest.fixture
def home(tmp_path: Path, fake_server) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "session.json").write_text(json.dumps({"server": fake_server.url, "email": "me@example.org", "sid": SID}))
    return home


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), "files", *args])


def test_put_then_get_round_trips_and_the_server_sees_only_ciphertext(home, store, fake_server, tmp_path, capsys):
    source = tmp_path / "notes.txt"
    source.write_bytes(b"top secret notes\n" * 100)
    assert run(home, "put", str(source)) == 0
    upload = store["notes.txt"]
    assert b"top secret" not in base64.b64decode(upload["encrypted_data"])
    assert len(base64.b64decode(upload["encrypted_aes_initial_vector"])) == 12
    target = tmp_path / "copy.txt"
    assert run(home, "get", "notes.txt", "-o", str(target)) == 0
    assert target.read_bytes() == source.read_bytes()
    assert all(r.headers["sid"] == SID for r in fake_server.requests)
    out, err = capsys.readouterr()
    assert "decrypted and verified" in out and SID not in out + err
    # the data key was unwrapped by the KMS: the private key never came to the client
    assert fake_server.received("POST", "/unwrap_key") and not fake_server.received("POST", "/get_private_key")


def test_get_with_export_private_key_takes_the_seed_path(home, store, fake_server, tmp_path):
    source = tmp_path / "seed.txt"
    source.write_bytes(b"the seed's way")
    assert run(home, "put", str(source)) == 0
    target = tmp_path / "seed-copy.txt"
    assert run(home, "get", "seed.txt", "-o", str(target), "--export-private-key") == 0
    assert target.read_bytes() == source.read_bytes()
    assert fake_server.received("POST", "/get_private_key") and not fake_server.received("POST", "/unwrap_key")


def test_tampered_download_fails_and_writes_nothing(home, store, tmp_path, capsys):
    source = tmp_path / "a.bin"
    source.write_bytes(b"abc" * 50)
    run(home, "put", str(source), "--name", "b.bin")
    data = bytearray(base64.b64decode(store["b.bin"]["encrypted_data"]))
    data[5] ^= 1
    store["b.bin"]["encrypted_data"] = base64.b64encode(bytes(data)).decode()
    target = tmp_path / "out.bin"
    assert run(home, "get", "b.bin", "-o", str(target)) == 1
    assert not target.exists() and "failed authentication" in capsys.readouterr().err


def test_get_will_not_replace_a_file_without_force(home, store, tmp_path, capsys):
    target = tmp_path / "exists.txt"
    target.write_text("keep me")
    assert run(home, "get", "x", "-o", str(target)) == 1
    assert target.read_text() == "keep me" and "--force" in capsys.readouterr().err


def test_sid_from_environment_and_server_flag(tmp_path, store, fake_server, monkeypatch, capsys):
    monkeypatch.setenv("TRUSTGATE_SID", "E" * 43)
    assert main(["--home", str(tmp_path / "empty"), "files", "grant", "a.txt", "friend@example.org",
                 "--server", fake_server.url]) == 0
    request = fake_server.received("POST", "/grant_access")[0]
    assert request.headers["sid"] == "E" * 43
    assert request.json() == {"file_name": "a.txt", "friend_email": "friend@example.org"}
    assert "granted friend@example.org" in capsys.readouterr().out


def test_sid_flag_wins_over_the_session_file(home, store, fake_server):
    assert run(home, "ls", "--sid", "F" * 43) == 0
    assert fake_server.received("GET", "/list_files")[0].headers["sid"] == "F" * 43


def test_server_refusal_is_reported_with_exit_1(home, store, capsys):
    assert run(home, "revoke", "a.txt", "friend@example.org") == 1
    assert "error: permission_denied (400): not the owner" in capsys.readouterr().err


def test_ls_table_and_json(home, store, capsys):
    assert run(home, "ls") == 0
    assert "grantee" in capsys.readouterr().out
    assert run(home, "ls", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["owner"] == "o@example.org"


def test_without_a_session_the_command_says_how_to_log_in(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TRUSTGATE_SID", raising=False)
    assert main(["--home", str(tmp_path / "nobody"), "files", "ls"]) == 1
    assert "user login" in capsys.readouterr().err
