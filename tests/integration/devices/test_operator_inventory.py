"""GET /operator/devices: filters by trust level and status, sealed continuations."""

from __future__ import annotations

import pytest

from tests.support.devices import DeviceActor
from tests.support.lifecycle import list_devices, revoke, suspend

pytestmark = pytest.mark.integration


def every_page(**params) -> list[dict]:
    found, continuation = [], None
    while True:
        status, body = list_devices(**params, **({"continuation": continuation} if continuation else {}))
        assert status == 200, body
        found += body["devices"]
        continuation = body["continuation"]
        if not continuation:
            return found


def test_devices_are_listed_by_status_and_trust_level_page_by_page(emulators):
    actors = [DeviceActor() for _ in range(4)]
    for actor in actors:
        assert actor.register()[0] == 201
    for actor in actors[:3]:
        assert actor.attest()[0] == 200
    suspend(actors[1].deviceid)
    revoke(actors[2].deviceid)
    ids = {a.deviceid for a in actors}
    everyone = {d["deviceid"]: d for d in every_page(page_size=2) if d["deviceid"] in ids}
    assert set(everyone) == ids and "token_hash" not in str(everyone)
    assert {d["deviceid"] for d in every_page(status="suspended", page_size=3)} >= {actors[1].deviceid}
    revoked = every_page(status="revoked")
    assert actors[2].deviceid in {d["deviceid"] for d in revoked} and {d["status"] for d in revoked} == {"revoked"}
    active_software = every_page(status="active", trust_level="software")
    assert actors[0].deviceid in {d["deviceid"] for d in active_software}
    assert {(d["status"], d["trust_level"]) for d in active_software} == {("active", "software")}
    unattested = every_page(trust_level="none")
    assert actors[3].deviceid in {d["deviceid"] for d in unattested} and {d["trust_level"] for d in unattested} == {None}
    assert everyone[actors[1].deviceid]["status_reason"] == "lost phone reported"


def test_filters_and_continuations_are_checked(emulators):
    assert list_devices(status="lost")[1]["message"] == "invalid_status"
    assert list_devices(trust_level="tpm")[1]["message"] == "invalid_trust_level"
    assert list_devices(page_size=0)[1]["message"] == "invalid_page_size"
    assert list_devices(continuation="forged.00")[1]["message"] == "invalid_continuation"
    for actor in (DeviceActor(), DeviceActor()):
        actor.register()
    status, body = list_devices(page_size=1)
    assert status == 200 and body["continuation"]
    assert list_devices(page_size=1, status="active", continuation=body["continuation"])[1]["message"] == "invalid_continuation"
