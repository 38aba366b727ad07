"""``python -m devhost``: command dispatch, settings fallback and the function listing."""

from __future__ import annotations

import sys
import types

import pytest

import devhost.__main__ as cli
from devhost.server import indexed_functions
from tests.fixtures import sample_app


def test_demo_dispatches_to_devhost_demo_main_with_its_arguments(monkeypatch):
    seen = {}

    def fake_main():
        seen["argv"] = list(sys.argv)
        return 3

    monkeypatch.setitem(sys.modules, "devhost.demo", types.SimpleNamespace(main=fake_main))
    monkeypatch.setattr(sys, "argv", ["devhost"])
    assert cli.main(["demo", "--keep"]) == 3
    assert seen["argv"][1:] == ["--keep"]


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve"])
    assert caught.value.code == 2


def test_example_settings_are_used_when_there_is_no_local_settings_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.delenv("TRUSTGATE_LOCAL_SETTINGS", raising=False)
    cli.use_example_settings_if_needed()
    assert cli.os.environ["TRUSTGATE_LOCAL_SETTINGS"] == str(tmp_path / "local.settings.example.json")


def test_an_existing_local_settings_file_is_kept(tmp_path, monkeypatch):
    (tmp_path / "local.settings.json").write_text("{}")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.delenv("TRUSTGATE_LOCAL_SETTINGS", raising=False)
    cli.use_example_settings_if_needed()
    assert "TRUSTGATE_LOCAL_SETTINGS" not in cli.os.environ


def test_function_listing_shows_methods_routes_schedules_and_blob_paths():
    functions = {f.get_function_name(): f for f in indexed_functions(sample_app.app)}
    assert cli.describe(functions["item_by_name"], "api").split() == ["item_by_name", "http", "DELETE,GET", "/api/items/{name}"]
    assert cli.describe(functions["echo"], "").split() == ["echo", "http", "ALL", "/echo/{*rest}"]
    assert cli.describe(functions["tick"], "").split() == ["tick", "timer", "%SAMPLE_TIMER_SCHEDULE%", "(runs", "on", "startup)"]
    assert cli.describe(functions["on_sample_blob"], "").split() == ["on_sample_blob", "blob", "samples/{name}", "(connection", "STORAGE)"]
