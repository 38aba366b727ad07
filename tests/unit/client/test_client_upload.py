"""Uploads: the multipart request the server receives, signatures over the file digest, errors."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client.cli import main
from client.device_api import ClientError, DeviceClient, guess_content_type
from client.keys import generate_private_key, public_key_pem

from .conftest import Device, FakeServer, Recorded, parse_multipart


def accept_uploads(server: FakeServer) -> None:
    """``POST /upload-file`` answers like the server: ids plus the digest of the file part it got."""

    def upload(request: Recorded):
        parts = {p.name: p for p in parse_multipart(request.headers["content-type"], request.body)}
        data = parts["file"].data
        return 200, {"code": 200, "message": "file_uploaded", "file_id": f"f{len(server.requests)}",
                     "blob_name": "dev-test/x", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    server.routes[("POST", "/upload-file")] = upload


def uploaded_parts(server: FakeServer) -> list[dict]:
    return [{p.name: p for p in parse_multipart(r.headers["content-type"], r.body)}
            for r in server.received("POST", "/upload-file")]


def test_upload_sends_signed_fields_and_the_exact_file_bytes(device: Device, fake_server: FakeServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    issued = fake_server.serve_challenges()
    accept_uploads(fake_server)
    data = os.urandom(300_000) + b"\r\n--not-a-boundary\r\n"  # binary, with multipart-looking bytes
    source = tmp_path / "report.txt"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    capsys.readouterr()

    assert main(["--home", str(device.home), "upload", str(source)]) == 0

    [request] = fake_server.received("POST", "/upload-file")
    [parts] = uploaded_parts(fake_server)
    assert request.headers["deviceid"] == "dev-test"
    assert request.headers["devicetoken"] == device.state.device_token
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(request.headers["content-length"]) == len(request.body)
    assert set(parts) == {"challenge", "signed_challenge", "public_key", "file"}
    assert parts["challenge"].data.decode() == issued[0]
    assert parts["file"].filename == "report.txt"
    assert parts["file"].content_type == "text/plain"
    assert parts["file"].data == data
    public_key = serialization.load_pem_public_key(parts["public_key"].data)
    public_key.verify(base64.b64decode(parts["signed_challenge"].data, validate=True),
                      f"upload:{issued[0]}:{digest}".encode(), ec.ECDSA(hashes.SHA256()))
    out = capsys.readouterr().out
    assert f"size={len(data)}" in out
    assert f"sha256={digest}" in out
    assert "file_id=f" in out


def test_each_file_gets_its_own_fresh_challenge(device: Device, fake_server: FakeServer, tmp_path: Path) -> None:
    issued = fake_server.serve_challenges()
    accept_uploads(fake_server)
    paths = []
    for name in ("a.csv", "b.bin"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(name.encode() * 100)

    assert main(["--home", str(device.home), "upload", *map(str, paths)]) == 0

    parts = uploaded_parts(fake_server)
    assert [p["challenge"].data.decode() for p in parts] == issued
    assert len(set(issued)) == 2
    assert [p["file"].data for p in parts] == [b"a.csv" * 100, b"b.bin" * 100]
    assert [p["file"].content_type for p in parts] == ["text/csv", "application/octet-stream"]


def test_content_type_option_overrides_the_guess(device: Device, fake_server: FakeServer, tmp_path: Path) -> None:
    fake_server.serve_challenges()
    accept_uploads(fake_server)
    source = tmp_path / "notes.txt"
    source.write_text("hello")

    main(["--home", str(device.home), "upload", "--content-type", "text/markdown", str(source)])

    [parts] = uploaded_parts(fake_server)
    assert parts["file"].content_type == "text/markdown"


@pytest.mark.parametrize("name, expected", [
    ("photo.PNG", "image/png"),
    ("data.json", "application/json"),
    ("archive.tar.gz", "application/gzip"),
    ("no_extension", "application/octet-stream"),
])
def test_content_type_guess(name: str, expected: str) -> None:
    assert guess_content_type(name) == expected


def test_a_refused_file_is_reported_and_the_others_still_upload(device: Device, fake_server: FakeServer,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.serve_challenges()
    accept_uploads(fake_server)
    accept = fake_server.routes[("POST", "/upload-file")]

    def refuse_big(request: Recorded):
        if len(request.body) > 10_000:
            return 413, {"code": 413, "message": "file_too_large", "detail": "files may be at most 10000 bytes"}
        return accept(request)

    fake_server.routes[("POST", "/upload-file")] = refuse_big
    big, small = tmp_path / "big.bin", tmp_path / "small.txt"
    big.write_bytes(b"x" * 20_000)
    small.write_text("small")
    capsys.readouterr()

    status = main(["--home", str(device.home), "upload", str(big), str(small)])

    output = capsys.readouterr()
    assert status == 1
    assert "error: file_too_large (413): files may be at most 10000 bytes" in output.err
    assert "small.txt" in output.out
    assert "big.bin" not in output.out


def test_missing_file_stops_before_anything_is_sent(device: Device, fake_server: FakeServer, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.serve_challenges()
    accept_uploads(fake_server)
    present = tmp_path / "present.txt"
    present.write_text("x")
    capsys.readouterr()

    status = main(["--home", str(device.home), "upload", str(present), str(tmp_path / "absent.txt")])

    assert status == 1
    assert "absent.txt: not a readable file" in capsys.readouterr().err
    assert fake_server.requests == []


def test_library_upload_reports_progress_while_streaming(fake_server: FakeServer, tmp_path: Path) -> None:
    issued = fake_server.serve_challenges()
    accept_uploads(fake_server)
    data = os.urandom(2 * 1024 * 1024 + 7)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    key = generate_private_key("ed25519")
    client = DeviceClient(fake_server.url + "/", "dev-lib", "t" * 43, key)
    calls: list[tuple[int, int]] = []

    result = client.upload(source, progress=lambda sent, total: calls.append((sent, total)))

    [request] = fake_server.received("POST", "/upload-file")
    [parts] = uploaded_parts(fake_server)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["size"] == len(data)
    assert len(calls) > 10  # sent in many chunks, not one read of the whole file
    assert [sent for sent, _ in calls] == sorted(sent for sent, _ in calls)
    assert calls[-1] == (len(request.body), len(request.body))
    assert parts["public_key"].data.decode() == public_key_pem(key)
    key.public_key().verify(base64.b64decode(parts["signed_challenge"].data),
                            f"upload:{issued[0]}:{result['sha256']}".encode())


def test_library_raises_client_error_with_the_servers_fields(fake_server: FakeServer, tmp_path: Path) -> None:
    fake_server.serve_challenges()
    fake_server.routes[("POST", "/upload-file")] = lambda r: (
        401, {"code": 401, "message": "invalid_signature", "detail": "does not verify"})
    source = tmp_path / "a.txt"
    source.write_text("a")
    client = DeviceClient(fake_server.url, "dev-lib", "t" * 43, generate_private_key("p384"))

    with pytest.raises(ClientError) as raised:
        client.upload(source)

    assert (raised.value.status, raised.value.message, raised.value.detail) == (401, "invalid_signature",
                                                                                 "does not verify")
