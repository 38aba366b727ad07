"""Tokens, rate-limit counters and the purge against cosmosdb-server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from shared_code.platform import cosmos, purge, rate_limit
from shared_code.platform.crypto import random_token, sha256_hex
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import to_iso
from shared_code.tokens import bearer_tokens
from tests.support.devices import HANDLERS, call

pytestmark = pytest.mark.integration


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, emulators):
    """A controllable clock for the tokens and rate-limit modules."""
    now = {"t": datetime.now(timezone.utc)}
    monkeypatch.setattr(bearer_tokens, "utc_now", lambda: now["t"])
    monkeypatch.setattr(rate_limit, "utc_now", lambda: now["t"])
    return now


def test_only_the_hash_is_stored_and_the_token_verifies_with_its_scope(clock) -> None:
    issued = bearer_tokens.issue_token(600, scope="files:read")

    stored = cosmos.read_item(cosmos.TOKENS, sha256_hex(issued.token), sha256_hex(issued.token))
    assert stored is not None and issued.token not in str(stored) and stored["ttl"] == 601
    info = bearer_tokens.verify_token(issued.token)
    assert info is not None and (info.scope, info.one_time) == ("files:read", False)
    assert bearer_tokens.verify_token(issued.token) is not None  # reusable


def test_expired_token_is_invalid_before_any_purge(clock) -> None:
    issued = bearer_tokens.issue_token(60)
    clock["t"] += timedelta(seconds=59)
    assert bearer_tokens.verify_token(issued.token) is not None
    clock["t"] += timedelta(seconds=1)
    assert bearer_tokens.verify_token(issued.token) is None
    assert cosmos.read_item(cosmos.TOKENS, issued.token_hash, issued.token_hash) is not None  # not purged yet


def test_one_time_token_is_valid_for_exactly_one_of_fifty_concurrent_verifications(clock) -> None:
    issued = bearer_tokens.issue_token(60, one_time=True)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: bearer_tokens.verify_token(issued.token), range(50)))
    assert sum(result is not None for result in results) == 1
    assert bearer_tokens.verify_token(issued.token) is None


def test_revoked_token_is_invalid_at_once_and_unknown_tokens_revoke_quietly(clock) -> None:
    issued = bearer_tokens.issue_token(60)
    assert bearer_tokens.revoke_token(issued.token) == (issued.token_hash, True)
    assert bearer_tokens.verify_token(issued.token) is None
    assert bearer_tokens.revoke_token(issued.token)[1] is False
    assert bearer_tokens.revoke_token("not a token")[1] is False
    assert bearer_tokens.verify_token(random_token(32)) is None


def test_rate_limit_counts_concurrent_hits_exactly_and_resets_each_window(clock) -> None:
    clock["t"] = datetime(2030, 1, 1, 12, 0, 10, tzinfo=timezone.utc)
    key = random_token(8)
    with ThreadPoolExecutor(max_workers=20) as pool:
        decisions = list(pool.map(lambda _: rate_limit.hit("test", key, 7), range(20)))
    assert sum(d.allowed for d in decisions) == 7
    assert sorted(d.count for d in decisions if d.allowed) == [1, 2, 3, 4, 5, 6, 7]
    assert {d.retry_after for d in decisions} == {50}
    assert rate_limit.hit("test", "another client", 7).allowed
    clock["t"] += timedelta(seconds=50)
    assert rate_limit.hit("test", key, 7).count == 1


def _item(spec: cosmos.ContainerSpec, expires_at: datetime | None) -> dict:
    item_id = "purge-" + random_token(12)
    item = {"id": item_id, spec.partition_key.strip("/"): item_id if spec.partition_key == "/id" else "pk-" + item_id[-4:]}
    if expires_at is not None:
        item.update(expires_at=to_iso(expires_at), ttl=60)
    return cosmos.create_item(spec, item)


def test_purge_deletes_exactly_the_expired_items_of_every_ttl_container_in_batches(emulators) -> None:
    now = datetime.now(timezone.utc)
    created = {}
    for spec in purge.expiring_containers():
        expired = [_item(spec, now - timedelta(seconds=s)) for s in (1, 3600, 5)]
        live = [_item(spec, now + timedelta(seconds=30)), _item(spec, None)]
        created[spec.name] = (spec, expired, live)

    for spec, expired, live in created.values():
        count, more = purge.purge_container(spec, now, batch_size=2, max_batches=1000)  # other tests leave expired items too
        assert count >= len(expired) and more is False
        pk = spec.partition_key.strip("/")
        assert [cosmos.read_item(spec, i["id"], i[pk]) for i in expired] == [None] * len(expired)
        assert all(cosmos.read_item(spec, i["id"], i[pk]) is not None for i in live)


def test_purge_is_bounded_and_a_later_run_finishes(emulators) -> None:
    now = datetime.now(timezone.utc)
    spec = cosmos.CHALLENGES
    purge.purge_container(spec, now)  # start from no expired challenges
    expired = [_item(spec, now - timedelta(minutes=1)) for _ in range(5)]
    assert purge.purge_container(spec, now, batch_size=2, max_batches=1) == (2, True)
    assert purge.purge_container(spec, now, batch_size=2, max_batches=10) == (3, False)
    assert all(cosmos.read_item(spec, i["id"], i["deviceid"]) is None for i in expired)
    report = purge.purge_expired()
    assert set(report.deleted) == {s.name for s in purge.expiring_containers()} and report.failed == []


def test_purge_stopped_by_an_outage_leaves_whole_items_and_the_next_run_finishes(emulators, monkeypatch) -> None:
    now = datetime.now(timezone.utc)
    spec = cosmos.TOKENS
    purge.purge_container(spec, now)
    expired = [_item(spec, now - timedelta(minutes=1)) for _ in range(4)]
    original, calls = cosmos.delete_item, {"n": 0}

    mine = {i["id"] for i in expired}

    def failing_delete(container_spec, item_id, partition_key, etag=None):
        if container_spec is spec and item_id in mine:
            calls["n"] += 1
            if calls["n"] >= 3:  # the store goes down after two of these deletes
                raise ServiceUnavailable(detail="injected")
        return original(container_spec, item_id, partition_key, etag=etag)

    monkeypatch.setattr(cosmos, "delete_item", failing_delete)
    report = purge.purge_expired()
    assert report.failed == ["tokens"] and "challenges" in report.deleted  # the others still ran
    remaining = [i for i in expired if cosmos.read_item(spec, i["id"], i["id"]) is not None]
    assert len(remaining) == 2 and all(i == cosmos.read_item(spec, i["id"], i["id"]) for i in remaining)
    with pytest.raises(RuntimeError, match="tokens"):
        HANDLERS["purge_expired_items"](timer=_timer())
    monkeypatch.setattr(cosmos, "delete_item", original)
    HANDLERS["purge_expired_items"](timer=_timer())
    assert [cosmos.read_item(spec, i["id"], i["id"]) for i in expired] == [None] * 4


def _timer() -> func.TimerRequest:
    return TimerRequest(past_due=False, schedule_status={}, schedule={})


def test_token_endpoints_answer_503_when_cosmos_fails(emulators, monkeypatch) -> None:
    def down(*args, **kwargs):
        raise ServiceUnavailable(detail="the database is unavailable, try again later")

    issued = bearer_tokens.issue_token(60)
    monkeypatch.setattr(cosmos, "read_item", down)
    status, body = call("verify_token", "GET", "verify_token", headers={"Authorization": f"Bearer {issued.token}"})
    assert (status, body["message"]) == (503, "service_unavailable")
    monkeypatch.setattr(cosmos, "create_item", down)
    monkeypatch.setattr(cosmos, "increment_if", down)
    status, body = call("generate_token", "POST", "generate_token")
    assert (status, body["message"]) == (503, "service_unavailable")
