"""Timer triggers on real schedules (one-second NCRONTAB)."""

from __future__ import annotations

import logging

import pytest
import requests

from devhost.server import serving
from tests.fixtures import sample_app

from .conftest import wait_until

pytestmark = pytest.mark.integration


def test_timer_runs_on_startup_then_on_its_schedule(sample, monkeypatch):
    monkeypatch.setenv("SAMPLE_TIMER_SCHEDULE", "* * * * * *")
    with serving(sample_app.app, blob_triggers=False) as host:
        wait_until(lambda: len(sample.calls["tick"]) >= 3, timeout=5)
        records = [r for r in host.invocations if r.function == "tick"]
    first, *scheduled = records
    assert first.details["scheduled_for"].microsecond != 0  # on startup, not on a schedule tick
    assert [r.details["scheduled_for"].microsecond for r in scheduled] == [0] * len(scheduled)
    gaps = [(b.details["scheduled_for"] - a.details["scheduled_for"]).total_seconds() for a, b in zip(scheduled, scheduled[1:])]
    assert gaps == [1.0] * len(gaps)
    assert all(r.trigger == "timer" and r.status == "succeeded" for r in records)
    assert [c["past_due"] for c in sample.calls["tick"][:3]] == [False, False, False]


def test_overrunning_timer_never_overlaps_and_the_late_run_is_past_due(sample, monkeypatch):
    monkeypatch.setenv("SAMPLE_TIMER_SCHEDULE", "* * * * * *")
    sample.behaviour["tick_sleep_seconds"] = [0, 1.8]  # the first scheduled run overruns
    with serving(sample_app.app, blob_triggers=False):
        wait_until(lambda: len(sample.calls["tick"]) >= 4, timeout=8)
    calls = sample.calls["tick"]
    for earlier, later in zip(calls, calls[1:]):
        assert later["started"] >= earlier["ended"]
    assert [c["past_due"] for c in calls[:4]] == [False, False, True, False]


def test_bad_schedule_leaves_the_timer_out_and_the_rest_running(sample, monkeypatch, caplog):
    monkeypatch.setenv("SAMPLE_TIMER_SCHEDULE", "* * * * *")
    caplog.set_level(logging.ERROR, logger="devhost")
    with serving(sample_app.app, blob_triggers=False, route_prefix="api") as host:
        assert requests.get(f"{host.base_url}/api/pages/1", timeout=5).status_code == 200
    assert "expected 6 NCRONTAB fields" in host.skipped["tick"]
    assert any("tick is not loaded" in r.getMessage() for r in caplog.records)
    assert sample.calls["tick"] == []
