"""Direct uploads on the client side: block layout, what is remembered for --resume, CLI sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from client import direct_upload
from client.cli import _byte_size, build_parser
from client.keys import direct_upload_message


def test_blocks_cover_the_file_exactly_with_equal_length_ids():
    blocks = direct_upload.block_ranges(20, 8)
    assert blocks == [("000000", 0, 8), ("000001", 8, 8), ("000002", 16, 4)]
    assert direct_upload.block_ranges(16, 8)[-1] == ("000001", 8, 8)


def test_the_client_signs_what_the_server_checks():
    from shared_code.devices.direct_uploads import upload_message

    assert direct_upload_message("c", "ab" * 32, 7, "text/csv") == upload_message("c", "ab" * 32, 7, "text/csv")


def test_pending_uploads_are_remembered_per_path_until_forgotten(tmp_path: Path):
    home, path = tmp_path / "home", tmp_path / "capture.bin"
    path.write_bytes(b"x")
    assert direct_upload.find_pending(home, path) is None
    entry = direct_upload.PendingUpload("u1", str(path.resolve()), "ab" * 32, 1, "application/octet-stream")
    direct_upload.save_pending(home, entry)
    direct_upload.save_pending(home, direct_upload.PendingUpload("u2", str(tmp_path / "other"), "cd" * 32, 2, "x/y"))
    assert direct_upload.find_pending(home, path) == entry
    assert (home / "uploads" / "u1.json").stat().st_mode & 0o777 == 0o600
    direct_upload.forget_pending(home, "u1")
    assert direct_upload.find_pending(home, path) is None


@pytest.mark.parametrize("text, size", [("8388608", 8388608), ("8MiB", 8 * 1024 ** 2), ("64MB", 64_000_000),
                                        ("1GiB", 1024 ** 3), ("0", 0)])
def test_threshold_sizes(text, size):
    assert _byte_size(text) == size


@pytest.mark.parametrize("text", ["8 XB", "-1", "1.5MiB", ""])
def test_bad_threshold_sizes(text):
    with pytest.raises(argparse.ArgumentTypeError):
        _byte_size(text)


def test_upload_defaults_to_the_direct_path_above_8_mib():
    args = build_parser().parse_args(["upload", "f.bin"])
    assert args.direct_threshold == 8 * 1024 * 1024 and args.concurrency == 4 and args.resume is False
