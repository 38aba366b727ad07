"""The message gatherer under storage timeouts (the fault harness, :mod:`tests.support.faults`).

An append that timed out may have landed: it answers 503 and the line is stored once (the SDK
never repeats an append that may have reached the service); a retry stores it again (the
protocol has no client message id), so a message is stored at least once and never more often
than it was sent. A state change that landed after a timeout leaves a recovery path.
"""

from __future__ import annotations

import pytest

from shared_code.gatherer import message_log
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from tests.support.faults import blob_op, cosmos_op
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration

LANDINGS = pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])


@pytest.fixture
def user(faults) -> Gatherer:
    message_log._current_seq.clear()  # another test's emulators held other blobs
    return Gatherer().login()


def _messages(user: Gatherer) -> list[str]:
    return [m["message"] for m in user.read_all()]


@LANDINGS
def test_a_stalled_append_stores_the_line_once_and_a_retry_once_more(faults, user, after_response):
    assert user.send("before")[0] == 201
    append = blob_op("append_block", get_settings().messages_container)
    appends = faults.blob.count(append)
    with faults.blob.freeze(append, after_response=after_response):
        assert user.send("stalled")[0] == 503
    assert faults.blob.count(append) == appends + 1  # one try: the SDK never repeats an append
    assert _messages(user) == ["before", "stalled"]
    assert user.send("stalled")[0] == 201
    assert _messages(user) == ["before", "stalled", "stalled"]


def test_a_stalled_creation_of_the_days_blob_is_taken_up_by_the_retry(faults, user):
    with faults.blob.freeze(blob_op("create_append_blob", get_settings().messages_container)):
        assert user.send("first of the day")[0] == 503
    assert _messages(user) == []  # the blob landed, the line was never sent
    assert user.send("first of the day")[0] == 201
    assert _messages(user) == ["first of the day"]


def test_a_stalled_authentication_leaves_the_user_a_way_back_in(faults):
    user = Gatherer()
    assert user.identify()[0] == 201
    with faults.cosmos.freeze(cosmos_op("replace", cosmos.GATHERER_USERS.name)):
        assert user.authenticate()[0] == 503
    # The move to Authenticated landed with a token nobody received: the retry says why not ...
    assert user.authenticate()[1]["message"] == "not_identified"
    # ... and IDENTIFY then AUTHENTICATE logs the user in, with a token that works.
    assert user.identify()[0] == 200
    assert user.authenticate()[0] == 200
    assert user.send("in again")[0] == 201
