"""Leased rate-limit counters on cosmosdb-server: one Patch per block of units, never more than
the limit across processes, exact counting near the limit, refusal without asking once full."""

from __future__ import annotations

import multiprocessing
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from shared_code.platform import cosmos, rate_limit

pytestmark = pytest.mark.integration

# 40 s before its one-minute window ends, so no test straddles a window boundary.
START = datetime(2034, 4, 4, 4, 4, 20, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _stack(emulators, monkeypatch):
    monkeypatch.setattr(rate_limit, "utc_now", lambda: START)
    rate_limit.reset_leases()
    yield
    rate_limit.reset_leases()


@pytest.fixture
def patches(monkeypatch) -> list[int]:
    """The amount of every conditional Patch the limiter sends (the real call, counted)."""
    sent: list[int] = []
    real = cosmos.increment_if

    def counting(*args, amount: int = 1, **kwargs):
        sent.append(amount)
        return real(*args, amount=amount, **kwargs)
    monkeypatch.setattr(cosmos, "increment_if", counting)
    return sent


def shared_count(bucket: str, key: str) -> int:
    item_id, _, _ = rate_limit._current(bucket, key, 60)
    item = cosmos.read_item(cosmos.RATE_LIMITS, item_id, item_id)
    return 0 if item is None else int(item["count"])


def test_a_lease_costs_one_write_per_block_and_stops_exactly_at_the_limit(patches):
    key = secrets.token_hex(8)
    decisions = [rate_limit.hit("lease_test", key, 64, lease=8) for _ in range(70)]
    assert [d.allowed for d in decisions] == [True] * 64 + [False] * 6
    assert shared_count("lease_test", key) == 64
    # 8 blocks of 8 (the first Patch finds no item and creates it), then a refused block and
    # a refused single unit; the requests after them are refused without asking again.
    assert patches == [8] * 8 + [8, 1]


def test_near_the_limit_the_lease_counts_one_by_one(patches):
    key = secrets.token_hex(8)
    allowed = sum(rate_limit.hit("lease_test", key, 20, lease=8).allowed for _ in range(25))
    assert allowed == 20
    assert shared_count("lease_test", key) == 20
    # two blocks (16), the third refused, then one unit per request: 4 admitted, 1 refused, full
    assert patches == [8, 8, 8, 1, 1, 1, 1, 1]


def test_concurrent_threads_never_exceed_the_limit():
    key = secrets.token_hex(8)
    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(lambda _: rate_limit.hit("lease_test", key, 100, lease=8), range(160)))
    assert sum(d.allowed for d in decisions) == 100
    assert shared_count("lease_test", key) == 100


def _instance(env: dict[str, str], key: str, calls: int, results) -> None:
    """One app instance: its own process, its own leases, the same Cosmos counter."""
    os.environ.update(env)
    from shared_code.platform import rate_limit as limiter

    limiter.utc_now = lambda: START
    results.put(sum(limiter.hit("lease_test", key, 120, lease=10).allowed for _ in range(calls)))


def test_instances_share_the_limit_within_the_documented_bound():
    key = secrets.token_hex(8)
    instances, lease = 3, 10
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    env = {name: value for name, value in os.environ.items() if name.startswith(("COSMOS_", "TRUSTGATE_"))}
    workers = [context.Process(target=_instance, args=(env, key, 60, results)) for _ in range(instances)]
    for worker in workers:
        worker.start()
    admitted = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert sum(admitted) <= 120
    assert sum(admitted) >= 120 - instances * (lease - 1)
    assert shared_count("lease_test", key) <= 120


def test_exact_counting_is_unchanged_without_a_lease(patches):
    key = secrets.token_hex(8)
    allowed = [rate_limit.hit("lease_test", key, 3).allowed for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    assert patches == [1] * 5  # every request asks (the first Patch finds no item and creates it)


def test_the_lease_size_is_at_most_an_eighth_of_the_limit(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_LEASE_UNITS", "16")
    from shared_code.platform import config

    config.reset_settings()
    try:
        assert [rate_limit.lease_units(limit) for limit in (3, 64, 120, 1000)] == [1, 8, 15, 16]
    finally:
        monkeypatch.undo()
        config.reset_settings()
