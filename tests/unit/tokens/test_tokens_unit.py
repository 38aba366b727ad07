"""Token request validation, the token and maintenance functions as indexed, expiring containers."""

import json
import os

import azure.functions as func
import pytest

import function_app
from devhost.server import indexed_functions
from shared_code.platform import config, cosmos, purge
from shared_code.platform.config import ConfigError
from shared_code.platform.errors import BadRequest
from shared_code.tokens import bearer_tokens


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    """Apply settings for one test (the endpoint is never contacted here)."""
    if not os.environ.get("COSMOS_ENDPOINT"):
        monkeypatch.setenv("COSMOS_ENDPOINT", "https://unit-test.invalid:443/")
    config.reset_settings()

    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config.reset_settings()
    yield apply
    monkeypatch.undo()
    config.reset_settings()


def test_defaults_come_from_settings(settings):
    settings(TOKEN_EXPIRATION_TIME="900")
    assert bearer_tokens.validate_request(None, None, None) == (900, False, None)
    assert bearer_tokens.validate_request(60, True, "files:read files:write") == (60, True, "files:read files:write")


@pytest.mark.parametrize("ttl", [0, -5, 86401, 1.5, "60", True, [60]])
def test_bad_ttl_is_invalid_ttl(settings, ttl):
    settings(TOKEN_MAX_TTL_SECONDS="86400")
    with pytest.raises(BadRequest) as raised:
        bearer_tokens.validate_request(ttl, None, None)
    assert raised.value.message == "invalid_ttl"


@pytest.mark.parametrize("one_time, scope", [("yes", None), (1, None), (None, 5), (None, ""), (None, "a  b"),
                                             (None, 'quote"d'), (None, "x" * 257), (None, "tâche")])
def test_bad_one_time_or_scope_is_invalid_field(one_time, scope):
    with pytest.raises(BadRequest) as raised:
        bearer_tokens.validate_request(None, one_time, scope)
    assert raised.value.message == "invalid_field"


def test_default_above_maximum_is_a_configuration_error(settings):
    settings(TOKEN_EXPIRATION_TIME="7200", TOKEN_MAX_TTL_SECONDS="3600")
    with pytest.raises(ConfigError) as raised:
        bearer_tokens.validate_request(None, None, None)
    assert raised.value.setting == "TOKEN_EXPIRATION_TIME"


def test_bad_ip_lists_are_configuration_errors(settings):
    settings(TOKEN_IP_ALLOW="10.0.0.0/8, not-an-ip")
    with pytest.raises(ConfigError) as raised:
        config.get_settings()
    assert raised.value.setting == "TOKEN_IP_ALLOW" and "not-an-ip" not in str(raised.value)


def test_token_and_purge_functions_are_indexed_with_their_triggers():
    functions = {f.get_function_name(): f for f in indexed_functions(function_app.app)}
    generate = functions["generate_token"].get_trigger()
    assert (generate.route, generate.methods, generate.auth_level) == ("generate_token", [func.HttpMethod.POST], func.AuthLevel.FUNCTION)
    assert functions["verify_token"].get_trigger().methods == [func.HttpMethod.GET]
    assert functions["revoke_token"].get_trigger().methods == [func.HttpMethod.POST]
    timer = functions["purge_expired_items"].get_trigger()
    assert timer.get_binding_name() == "timerTrigger" and timer.schedule == "%PURGE_SCHEDULE%"


def test_purge_covers_every_container_with_a_ttl_and_nothing_else():
    names = {spec.name for spec in purge.expiring_containers()}
    assert {"challenges", "sessions", "tokens", "rate_limits"} <= names
    assert not names & {"devices", "users"}
    # files holds direct-upload grants that expire; its files proper carry no expires_at,
    # so the purge never touches them (tests/integration/devices/test_direct_uploads.py).
    assert names == {spec.name for spec in cosmos.CONTAINERS if spec.default_ttl is not None}


def test_purge_schedule_is_every_five_minutes_by_default_and_in_the_example():
    example = json.loads((config.PROJECT_ROOT / "local.settings.example.json").read_text())["Values"]
    assert example["PURGE_SCHEDULE"] == "0 */5 * * * *"
    assert config.load_settings({**os.environ, "PURGE_SCHEDULE": ""}).purge_schedule == "0 */5 * * * *"


def test_an_integral_json_number_is_an_integer_ttl(offline_settings):
    from shared_code.tokens.bearer_tokens import validate_request

    assert validate_request(600.0, None, None)[0] == 600  # JSON's 600.0 is 600 (RFC 8259 §6)
    for bad in (600.5, float("inf"), 0.0, 1e300, True):
        with pytest.raises(BadRequest):
            validate_request(bad, None, None)


def test_introspect_is_indexed_as_a_function_key_post():
    functions = {f.get_function_name(): f for f in indexed_functions(function_app.app)}
    trigger = functions["introspect"].get_trigger()
    assert (trigger.route, trigger.methods, trigger.auth_level) == ("introspect", [func.HttpMethod.POST], func.AuthLevel.FUNCTION)


@pytest.mark.parametrize("client_id", ["", "x" * 129, "caf\u00e9", "tab\there", 5])
def test_bad_client_id_is_invalid_field(client_id):
    with pytest.raises(BadRequest) as raised:
        bearer_tokens.validate_client_id(client_id)
    assert raised.value.message == "invalid_field"


def test_client_ids_are_rfc6749_vschar():
    assert bearer_tokens.validate_client_id("l238j323ds-23ij4") == "l238j323ds-23ij4"
    assert bearer_tokens.validate_client_id("a client with spaces ~!") == "a client with spaces ~!"
    assert bearer_tokens.validate_client_id(None) is None


def test_introspection_requests_parse_forms_and_json_alike():
    from shared_code.tokens.introspection import parse_request

    assert parse_request({"token": "t", "token_type_hint": "access_token", "consume": "true"}).consume is True
    assert parse_request({"token": "t", "consume": False}).consume is False
    request = parse_request({"token": "secret-token"})
    assert (request.token_type_hint, request.consume) == (None, False) and "secret-token" not in repr(request)
    for bad in ({}, {"token": ""}, {"token": "x" * 1025}, {"token": "t", "consume": 1}, {"token": "t", "token_type_hint": 3}):
        with pytest.raises(BadRequest) as raised:
            parse_request(bad)
        assert raised.value.message == "invalid_request"
