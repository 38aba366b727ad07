"""Cascade by attestation evidence: one revoked certificate reaches every device whose stored
chain holds it, by the operator's ``revoke-intermediate`` or the status-list sweep, downgrading or
revoking them by ``ATTESTATION_REVOCATION_ACTION``."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared_code.audit.sequencer import synced_state
from shared_code.devices.attestation import sweep
from tests.support.attestation import SharedIntermediate, android_body, apple_body, attest, chain_for
from tests.support.audit import entries_since
from tests.support.devices import DeviceActor, call
from tests.support.lifecycle import device_state, revoke_intermediate

pytestmark = pytest.mark.integration


def android_device(pki, intermediate: SharedIntermediate | None) -> DeviceActor:
    actor = DeviceActor()
    assert actor.register()[0] == 201
    actor.key = ec.generate_private_key(ec.SECP256R1())
    challenge = actor.challenge()
    chain = intermediate.chain(actor.key, challenge) if intermediate else chain_for(pki, actor.key, challenge)
    status, body = attest(actor, android_body(pki, challenge, chain))
    assert (status, body["trust_level"]) == (200, "hardware"), body
    return actor


@pytest.fixture
def fleet(attestation_settings, pki):
    """Two devices under one shared intermediate and one under another chain of the same root."""
    intermediate = SharedIntermediate(pki)
    return intermediate, [android_device(pki, intermediate), android_device(pki, intermediate)], android_device(pki, None)


def test_a_dry_run_names_the_devices_and_changes_nothing(fleet):
    intermediate, shared, other = fleet
    before = [device_state(a.deviceid) for a in [*shared, other]]
    status, body = revoke_intermediate({"serial": intermediate.serial.upper()}, dry_run="true")
    assert (status, body["message"], body["action"], body["serial"]) == (200, "revocation_dry_run", "downgrade", intermediate.serial)
    assert sorted(body["devices"]) == sorted(a.deviceid for a in shared)
    assert body["summary"] == {"devices_matched": 2, "devices_downgraded": 2, "devices_failed": 0}
    assert [device_state(a.deviceid) for a in [*shared, other]] == before


def test_downgrade_drops_the_trust_level_of_exactly_the_devices_under_the_certificate(fleet):
    intermediate, shared, other = fleet
    before = synced_state().size
    status, body = revoke_intermediate({"serial": intermediate.serial, "reason": "intermediate key leaked"})
    assert (status, body["message"], body["summary"]["devices_downgraded"]) == (200, "certificate_revoked", 2)
    assert [a.record()["trust_level"] for a in shared] == ["revoked", "revoked"]
    assert other.record()["trust_level"] == "hardware"
    assert shared[0].upload(b"after the downgrade")[1]["message"] == "attestation_required"
    assert call("get_challenge", "GET", "api/challenge", headers=shared[0].headers)[0] == 200  # it may still call
    names = [e["event"] for e in entries_since(before)]
    assert names[0] == "attestation_certificate_revoked" and names.count("device_trust_revoked") == 2
    assert revoke_intermediate({"serial": intermediate.serial})[1]["summary"]["devices_matched"] == 0  # done already


def test_revoke_by_policy_revokes_the_devices_with_their_cascade(fleet, attestation_settings):
    intermediate, shared, other = fleet
    attestation_settings({"ATTESTATION_REVOCATION_ACTION": "revoke"})
    assert shared[0].upload(b"a file")[0] == 200
    status, body = revoke_intermediate({"serial": intermediate.serial})
    assert (status, body["action"]) == (200, "revoke")
    assert body["summary"]["devices_revoked"] == 2 and body["summary"]["files_marked"] == 1
    assert [a.record()["status"] for a in shared] == ["revoked", "revoked"] and other.record().get("status") is None
    assert [a.record()["revoked_by"] for a in shared] == ["attestation", "attestation"]
    assert call("get_challenge", "GET", "api/challenge", headers=shared[1].headers)[1]["message"] == "device_revoked"


def test_the_status_list_sweep_applies_the_same_policy(fleet, attestation_settings, status):
    intermediate, shared, other = fleet
    attestation_settings({"ATTESTATION_REVOCATION_ACTION": "revoke"})
    status.revoke(intermediate.serial)
    report = sweep.refresh_and_recheck()
    assert sorted(report.revoked) == sorted(a.deviceid for a in shared)
    assert [a.record()["status"] for a in shared] == ["revoked", "revoked"] and other.record().get("status") is None
    assert sweep.refresh_and_recheck().revoked == []


def test_an_app_attest_chain_is_matched_too(attestation_settings, pki):
    device = DeviceActor()
    assert device.register()[0] == 201
    assert attest(device, apple_body(pki, ec.generate_private_key(ec.SECP256R1()), device.challenge()))[0] == 200
    serial = device.record()["attestation"]["serials"][-1]
    status, body = revoke_intermediate({"serial": serial, "action": "downgrade"})
    assert (status, body["devices"], device.record()["trust_level"]) == (200, [device.deviceid], "revoked")


def test_the_request_is_checked(attestation_settings):
    assert revoke_intermediate({"serial": "not hex"})[1]["message"] == "invalid_serial"
    assert revoke_intermediate({"serial": "ab", "action": "delete"})[1]["message"] == "invalid_field"
    assert revoke_intermediate({})[1]["message"] == "missing_fields"
