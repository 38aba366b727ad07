"""Direct-upload rules that need no storage: the signed message, ids, block sizes, states, parsing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared_code.devices import direct_uploads, files
from shared_code.platform.timeutil import to_iso, utc_now
from tests.support.devices import call, json_body


def test_the_signed_message_binds_challenge_digest_size_and_type():
    assert direct_uploads.upload_message("c1", "ab" * 32, 42, "image/png") == (
        b"direct-upload:c1:" + b"ab" * 32 + b":42:image/png")


def test_upload_ids_are_per_device_and_challenge():
    a = direct_uploads.upload_id_for("dev-a", "challenge-1")
    assert a == direct_uploads.upload_id_for("dev-a", "challenge-1") and len(a) == 32
    assert a != direct_uploads.upload_id_for("dev-b", "challenge-1")
    assert a != direct_uploads.upload_id_for("dev-a", "challenge-2")


@pytest.mark.parametrize("size, block", [
    (1, 8 * 1024 * 1024),
    (5 * 1024 ** 3, 8 * 1024 * 1024),  # 640 blocks
    (1024 ** 4, 21 * 1024 * 1024),  # 1 TiB needs bigger blocks to stay within 50,000
])
def test_block_size_keeps_every_file_within_50000_blocks(size, block):
    assert direct_uploads.block_size_for(size) == block
    assert -(-size // block) <= direct_uploads.MAX_BLOCKS


def _grant(status: str, deadline_offset: timedelta) -> dict:
    return {"status": status, "upload": {"deadline": to_iso(utc_now() + deadline_offset)}}


def test_a_pending_grant_past_its_deadline_reads_as_expired():
    assert files.file_status(_grant("pending", timedelta(minutes=5))) == "pending"
    assert files.file_status(_grant("pending", -timedelta(seconds=1))) == "expired"
    assert files.file_status(_grant("verified", -timedelta(days=1))) == "verified"
    assert files.file_status({"status": "uploaded"}) == "uploaded"  # /upload-file records


@pytest.mark.parametrize("change, message", [
    ({"size": "10"}, "invalid_field"),
    ({"size": True}, "invalid_field"),
    ({"size": None}, "missing_fields"),
    ({"sha256": "ab"}, "invalid_field"),
    ({"file_name": ""}, "missing_fields"),
    ({"signature": 5}, "invalid_field"),
])
def test_malformed_grant_requests_are_400_before_anything_is_read(change, message, monkeypatch):
    monkeypatch.setattr("shared_code.devices.registry.authenticate", lambda deviceid, token: {"id": deviceid})
    body = {"file_name": "a.bin", "size": 10, "sha256": "a" * 64, "content_type": "application/octet-stream",
            "challenge": "c" * 43, "signature": "c2ln", **change}
    body = {k: v for k, v in body.items() if v is not None}
    headers, raw = json_body(body)
    status, answer = call("create_upload", "POST", "api/uploads", headers={"deviceid": "d", "deviceToken": "t", **headers},
                          body=raw)
    assert (status, answer["message"]) == (400, message), json.dumps(answer)
