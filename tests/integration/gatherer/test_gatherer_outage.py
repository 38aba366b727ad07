"""Message gatherer under storage faults: 503 with the app's JSON error, nothing half done.

Uses its own emulators (function scope) so stopping them does not disturb other tests.
"""

import pytest

from shared_code.gatherer import message_log
from shared_code.platform import cosmos
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration


def test_blob_outage_gives_503_and_leaves_the_user_authenticated(private_stack):
    user = Gatherer().login()
    private_stack.stop_blob()
    status, body = user.send("lost?")
    assert (status, body["message"], body["code"]) == (503, "service_unavailable", 503)
    record = cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)
    assert record["state"] == "authenticated"


def test_cosmos_outage_gives_503_for_every_step_and_writes_no_message(private_stack):
    user = Gatherer().login()
    private_stack.stop_cosmos()
    assert Gatherer().identify()[0] == 503
    assert user.authenticate()[0] == 503
    assert user.send("not checked, not stored")[0] == 503
    message_log._current_seq.clear()
    assert message_log.read_messages(user.username, 10, None) == ([], None)
