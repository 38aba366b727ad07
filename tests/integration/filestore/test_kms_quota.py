"""KMS key creation is limited per user (KMS_KEYS_PER_HOUR): 429 with Retry-After, nothing created.

Before, one session made 80 RSA-3072 key pairs in 16 s while /health slowed from 11 ms to 0.5-1 s.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.support.accounts import new_user
from tests.support.devices import json_body, respond

pytestmark = pytest.mark.integration


@pytest.fixture
def quota(emulators, mail_server, app_settings) -> None:
    app_settings(KMS_KEYS_PER_HOUR="3")


def _kms(name: str, sid: str, file_name: str):
    headers, body = json_body({"file_name": file_name})
    response = respond(name, "POST", name, headers={**headers, "sid": sid}, body=body)
    return response.status_code, json.loads(response.get_body()), response.headers.get("Retry-After")


def test_key_creation_beyond_the_hourly_quota_is_429_and_creates_nothing(quota, mail_server):
    user, other = new_user(mail_server), new_user(mail_server)
    names = [f"quota-{secrets.token_hex(4)}-{index}.bin" for index in range(4)]
    answers = [_kms("get_public_key", user.sid, name) for name in names]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    status, body, retry_after = answers[-1]
    assert body["message"] == "rate_limited" and 1 <= int(retry_after) <= 3600
    assert _kms("get_private_key", user.sid, names[-1])[:2][1]["message"] == "access_denied"
    assert _kms("get_private_key", user.sid, names[0])[0] == 200  # what was made stays usable
    assert _kms("get_public_key", other.sid, f"quota-{secrets.token_hex(4)}.bin")[0] == 200  # per user
