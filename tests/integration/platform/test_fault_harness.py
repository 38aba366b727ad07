"""The fault harness itself (:mod:`tests.support.faults`): each fault has the semantics its
docstring promises, against the real emulators."""

from __future__ import annotations

import secrets

import pytest

from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable
from tests.support.faults import cosmos_op

pytestmark = pytest.mark.integration

SPEC = cosmos.GATHERER_USERS  # any container partitioned by /id


def _item() -> dict:
    return {"id": "harness-" + secrets.token_hex(6), "state": "test"}


def _stored(item: dict) -> bool:
    return cosmos.read_item(SPEC, item["id"], item["id"]) is not None


def test_a_freeze_times_the_caller_out_and_the_write_lands_after_the_resume(faults):
    item = _item()
    with faults.cosmos.freeze(cosmos_op("create", SPEC.name)) as fault:
        with pytest.raises(ServiceUnavailable):
            cosmos.create_item(SPEC, item)
        assert fault.request.cosmos == ("create", SPEC.name, None)
    assert _stored(item)


def test_a_freeze_after_the_answer_loses_only_the_answer(faults):
    item = _item()
    with faults.cosmos.freeze(cosmos_op("create", SPEC.name), after_response=True):
        with pytest.raises(ServiceUnavailable):
            cosmos.create_item(SPEC, item)
    assert _stored(item)
    with pytest.raises(cosmos.AlreadyExists):
        cosmos.create_item(SPEC, item)


def test_a_hold_stalls_one_request_while_the_emulator_serves_the_others(faults):
    held, other = _item(), _item()
    with faults.cosmos.hold(cosmos_op("create", SPEC.name)):
        with pytest.raises(ServiceUnavailable):
            cosmos.create_item(SPEC, held)
        cosmos.create_item(SPEC, other)  # the emulator is not frozen
        assert not _stored(held)
    assert _stored(held) and _stored(other)


def test_an_action_runs_between_the_request_arriving_and_its_forwarding(faults):
    item, seen = _item(), []
    with faults.cosmos.before(cosmos_op("create", SPEC.name), lambda: seen.append(_stored(item))):
        cosmos.create_item(SPEC, item)
    assert seen == [False] and _stored(item)


def test_a_fault_that_never_fires_fails_the_test(faults):
    with pytest.raises(AssertionError, match="never reached the emulator"):
        with faults.cosmos.freeze(cosmos_op("delete", SPEC.name)):
            cosmos.create_item(SPEC, _item())
