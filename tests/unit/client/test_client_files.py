"""Listing files: pages, continuation tokens, table and JSON output."""

from __future__ import annotations

import json

import pytest

from client.cli import main
from client.device_api import ClientError, DeviceClient
from client.keys import generate_private_key

from .conftest import Device, FakeServer, Recorded


def file_entry(n: int) -> dict:
    return {"file_id": f"file-{n}", "name": f"report-{n}.pdf", "size": 1000 + n, "content_type": "application/pdf",
            "sha256": f"{n:02x}" * 32, "status": "verified", "uploaded_at": f"2025-01-0{n}T00:00:00Z"}


def serve_two_pages(server: FakeServer) -> None:
    """Page 1 (no token) → files 3, 2 and continuation ``tok/2+=``; page 2 (that token) → file 1, end."""

    def files(request: Recorded):
        token = request.query.get("continuation", [None])[0]
        if token is None:
            return 200, {"code": 200, "message": "files_listed", "files": [file_entry(3), file_entry(2)],
                         "continuation": "tok/2+="}
        if token == "tok/2+=":
            return 200, {"code": 200, "message": "files_listed", "files": [file_entry(1)], "continuation": None}
        return 400, {"code": 400, "message": "invalid_continuation", "detail": token}

    server.routes[("GET", "/api/files")] = files


def test_files_all_follows_continuation_across_pages(device: Device, fake_server: FakeServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    serve_two_pages(fake_server)
    capsys.readouterr()

    assert main(["--home", str(device.home), "files", "--all", "--page-size", "2"]) == 0

    requests = fake_server.received("GET", "/api/files")
    assert [r.query for r in requests] == [{"page_size": ["2"]}, {"page_size": ["2"], "continuation": ["tok/2+="]}]
    assert all(r.headers["devicetoken"] == device.state.device_token for r in requests)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["UPLOADED", "SIZE", "STATUS", "CONTENT", "TYPE", "NAME", "FILE", "ID"]
    assert [line.split()[4] for line in lines[1:]] == ["report-3.pdf", "report-2.pdf", "report-1.pdf"]
    assert lines[1].split() == ["2025-01-03T00:00:00Z", "1003", "verified", "application/pdf", "report-3.pdf",
                                "file-3"]


def test_files_all_json_has_every_file_and_no_continuation(device: Device, fake_server: FakeServer,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    serve_two_pages(fake_server)
    capsys.readouterr()

    assert main(["--home", str(device.home), "files", "--all", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document == {"files": [file_entry(3), file_entry(2), file_entry(1)], "continuation": None}


def test_one_page_by_default_with_a_hint_about_the_rest(device: Device, fake_server: FakeServer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    serve_two_pages(fake_server)
    capsys.readouterr()

    assert main(["--home", str(device.home), "files"]) == 0

    output = capsys.readouterr()
    assert len(fake_server.received("GET", "/api/files")) == 1
    assert "report-1.pdf" not in output.out
    assert "report-2.pdf" in output.out
    assert "--continuation tok/2+=" in output.err


def test_continuation_option_starts_from_that_page(device: Device, fake_server: FakeServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    serve_two_pages(fake_server)
    capsys.readouterr()

    assert main(["--home", str(device.home), "files", "--json", "--continuation", "tok/2+="]) == 0

    assert json.loads(capsys.readouterr().out) == {"files": [file_entry(1)], "continuation": None}


def test_no_files_says_so(device: Device, fake_server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("GET", "/api/files")] = lambda r: (
        200, {"code": 200, "message": "files_listed", "files": [], "continuation": None})
    capsys.readouterr()

    assert main(["--home", str(device.home), "files"]) == 0

    assert capsys.readouterr().out == "no files\n"


def test_library_iter_files_yields_every_page(fake_server: FakeServer) -> None:
    serve_two_pages(fake_server)
    client = DeviceClient(fake_server.url, "dev-lib", "t" * 43, generate_private_key())

    names = [f["name"] for f in client.iter_files()]

    assert names == ["report-3.pdf", "report-2.pdf", "report-1.pdf"]
    assert len(fake_server.received("GET", "/api/files")) == 2


def test_library_list_files_returns_the_parsed_page(fake_server: FakeServer) -> None:
    serve_two_pages(fake_server)
    client = DeviceClient(fake_server.url, "dev-lib", "t" * 43, generate_private_key())

    page = client.list_files(page_size=5)

    assert page["message"] == "files_listed"
    assert page["continuation"] == "tok/2+="
    assert fake_server.received("GET", "/api/files")[0].query == {"page_size": ["5"]}


def test_a_repeated_continuation_token_stops_instead_of_looping(fake_server: FakeServer) -> None:
    fake_server.routes[("GET", "/api/files")] = lambda r: (
        200, {"code": 200, "message": "files_listed", "files": [file_entry(1)], "continuation": "same"})
    client = DeviceClient(fake_server.url, "dev-lib", "t" * 43, generate_private_key())

    with pytest.raises(ClientError, match="repeated a continuation token"):
        list(client.iter_files())

    assert len(fake_server.received("GET", "/api/files")) == 2
