"""The attestation status list: parsed fail-closed, cached within its staleness budget, from a
local fake of Google's endpoint (no network)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared_code.devices.attestation import status_list
from shared_code.platform.errors import ServiceUnavailable
from tests.support.attestation import NOW, FakeStatusList


@pytest.fixture
def endpoint():
    with FakeStatusList() as fake:
        yield fake


def cache(endpoint: FakeStatusList, max_age: int = 86400) -> status_list.StatusCache:
    return status_list.StatusCache(lambda: status_list.fetch_status_list(endpoint.url, 2), max_age)


def test_revoked_and_suspended_serials_are_refused_others_not(endpoint):
    endpoint.revoke("c35747a084470c3135aeefe2b8d40cd6")
    endpoint.suspend("A1B2")
    endpoint.entries["77"] = {"status": "VALID"}
    assert cache(endpoint).current(NOW).refused == frozenset({"c35747a084470c3135aeefe2b8d40cd6", "a1b2"})


def test_the_list_is_reused_then_refetched_when_due(endpoint):
    copy = cache(endpoint)
    copy.current(NOW)
    copy.current(NOW + timedelta(minutes=59))
    assert endpoint.requests == 1
    endpoint.revoke("abc")
    assert copy.current(NOW + timedelta(minutes=61)).refused == frozenset({"abc"}) and endpoint.requests == 2


@pytest.mark.parametrize("behaviour", ["down", "garbage"])
def test_a_failed_refresh_serves_the_old_list_within_the_budget_then_fails_closed(endpoint, behaviour):
    copy = cache(endpoint, max_age=7200)
    endpoint.revoke("abc")
    copy.current(NOW)
    endpoint.behaviour = behaviour
    assert copy.current(NOW + timedelta(hours=2)).refused == frozenset({"abc"})
    with pytest.raises(ServiceUnavailable) as stale:
        copy.current(NOW + timedelta(hours=2, seconds=1))
    assert stale.value.message == "revocation_status_unavailable"
    endpoint.behaviour = "ok"
    assert copy.current(NOW + timedelta(hours=3)).fetched_at == NOW + timedelta(hours=3)


def test_no_list_at_all_fails_closed(endpoint):
    endpoint.behaviour = "down"
    with pytest.raises(ServiceUnavailable):
        cache(endpoint).current(NOW)
    with pytest.raises(status_list.StatusListUnavailable):
        cache(endpoint).refresh(NOW)


@pytest.mark.parametrize("body", [b"[]", b'{"entries": []}', b"{}", b"not json"])
def test_documents_that_are_not_the_list_are_unavailable(body):
    with pytest.raises(status_list.StatusListUnavailable):
        status_list.parse_status_list(body)
