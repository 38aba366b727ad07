"""The purge timer against an item re-issued between its query and its delete (fault harness)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared_code.accounts import otp
from shared_code.platform import cosmos, purge
from shared_code.platform.timeutil import to_iso, utc_now
from tests.conftest import reset_app_state
from tests.support.accounts import new_email
from tests.support.faults import cosmos_op

pytestmark = pytest.mark.integration


def test_the_purge_deletes_only_the_item_it_read_never_one_reissued_under_its_id(faults, monkeypatch):
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "10")  # nothing times out here; the re-issue takes its time
    reset_app_state()
    email = new_email("purge")
    otp.store(email, otp.LOGIN, "123456")
    item_id = otp._item_id(email, otp.LOGIN)
    expired = cosmos.read_item(cosmos.OTPS, item_id, item_id)
    cosmos.upsert_item(cosmos.OTPS, {**expired, "expires_at": to_iso(utc_now() - timedelta(minutes=1))})

    # A new code is mailed for the address after the purge read the expired one, before its delete.
    with faults.cosmos.before(cosmos_op("delete", cosmos.OTPS.name), lambda: otp.store(email, otp.LOGIN, "654321")):
        deleted, _ = purge.purge_container(cosmos.OTPS, utc_now())

    assert deleted == 0
    assert otp.verify(email, otp.LOGIN, "654321") == {}  # the new code survived
