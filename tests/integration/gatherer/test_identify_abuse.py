"""IDENTIFY needs no credentials, so nobody can use it against someone else's live session.

Before, anyone could ``POST /identify`` a victim's username and move them from Authenticated back
to Identified (the victim's valid token got 409 until they logged in again), as often as they
liked and with no limit. Now IDENTIFY never takes away a live authentication, and /identify is
limited per client address like /authenticate.
"""

from __future__ import annotations

import json
import secrets

import pytest

from shared_code.platform import cosmos
from tests.support.devices import json_body, respond
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(emulators):
    """Every test here runs against the emulators."""




def identify(username: str, client: str) -> tuple[int, dict, str | None]:
    headers, body = json_body({"message_type": "IDENTIFY", "username": username})
    response = respond("gather_identify", "POST", "identify", headers={**headers, "X-Forwarded-For": client}, body=body)
    return response.status_code, json.loads(response.get_body()), response.headers.get("Retry-After")


def _record(user: Gatherer) -> dict:
    return cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)


def test_a_strangers_identify_does_not_log_the_victim_out():
    victim = Gatherer().login()
    attacker_address = f"203.0.113.{secrets.randbelow(254) + 1}"
    for _ in range(3):
        status, body, _ = identify(victim.username, attacker_address)
        assert (status, body["message"]) == (200, "identified")
    assert _record(victim)["state"] == "authenticated"
    assert victim.send("still here")[0] == 201
    status, body = victim.read()
    assert status == 200 and [item["message"] for item in body["messages"]] == ["still here"]
    # The stranger cannot AUTHENTICATE without the password, and trying changes nothing.
    assert Gatherer(victim.username, password="not the password").authenticate()[0] == 401
    assert victim.send("and still")[0] == 201
    assert victim.send("logout")[0] == 200 and _record(victim)["state"] == "grounded"


def test_identify_is_limited_per_client_address(app_settings):
    victim = Gatherer().login()
    app_settings(LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE="3")
    address = f"198.51.100.{secrets.randbelow(254) + 1}"
    answers = [identify(victim.username, address) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    status, body, retry_after = answers[-1]
    assert body["message"] == "rate_limited" and retry_after and int(retry_after) >= 1
    assert identify(Gatherer().username, f"198.51.100.{secrets.randbelow(254) + 1}")[0] == 201  # other clients pass
    assert victim.send("unaffected")[0] == 201
