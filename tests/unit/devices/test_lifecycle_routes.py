"""The lifecycle functions are indexed where the Functions host accepts them, operators behind a
function key, and the operator handlers refuse bad input before touching any store."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

import function_app
from devhost.server import indexed_functions
from shared_code.devices.attestation.sweep import normalize_serial
from shared_code.platform.errors import BadRequest
from tests.support.devices import call

FUNCTIONS = {f.get_function_name(): f for f in indexed_functions(function_app.app)}
OPERATOR = ("operator_suspend_device", "operator_resume_device", "operator_revoke_device", "operator_revoke_intermediate",
            "operator_list_devices", "operator_suspend_user", "operator_resume_user")
SELF_SERVICE = ("rotate_device_key", "rotate_device_token", "delete_account_otp", "delete_account")


def test_no_route_or_name_is_one_the_functions_host_reserves():
    """The host refuses HTTP routes under admin/ (its admin API) and runtime/ (webhooks) when the
    route prefix is empty: "The specified route conflicts with one or more built in routes"."""
    for name, function in FUNCTIONS.items():
        trigger = function.get_trigger()
        route = (getattr(trigger, "route", None) or "").lower()
        assert not route.startswith(("admin", "runtime")), (name, route)
        assert not name.lower().startswith("admin"), name


def test_operator_routes_need_a_function_key_and_self_service_does_not():
    for name in OPERATOR:
        assert FUNCTIONS[name].get_trigger().auth_level == func.AuthLevel.FUNCTION, name
        assert FUNCTIONS[name].get_trigger().route.startswith("operator/"), name
    for name in SELF_SERVICE:
        assert FUNCTIONS[name].get_trigger().auth_level in (None, func.AuthLevel.ANONYMOUS), name


@pytest.mark.parametrize("raw, expected", [("0A:1b", "a1b"), ("65d2949536924da6", "65d2949536924da6"), ("00", "0"),
                                           ("f" * 64, "f" * 64)])
def test_serials_are_compared_as_lowercase_hex_without_leading_zeros(raw, expected):
    assert normalize_serial(raw) == expected


@pytest.mark.parametrize("raw", ["", "0x1f", "1f ", "g1", "1:2:3", "f" * 65, "ab:cd:"])
def test_anything_else_is_an_invalid_serial(raw):
    with pytest.raises(BadRequest) as refused:
        normalize_serial(raw)
    assert refused.value.message == "invalid_serial"


@pytest.mark.parametrize("params, body, message", [
    ({"dry_run": "yes"}, {"reason": "x"}, "invalid_dry_run"),
    ({"dry_run": ""}, {"reason": "x"}, "invalid_dry_run"),
    ({}, {}, "missing_fields"),
    ({}, {"reason": 5}, "invalid_field"),
    ({}, {"reason": "r" * 501}, "invalid_field"),
])
def test_revoke_refuses_bad_input_before_any_lookup(params, body, message):
    status, answer = call("operator_revoke_device", "POST", "operator/devices/x/revoke", params=params,
                          headers={"content-type": "application/json"}, body=json.dumps(body).encode(),
                          route_params={"deviceid": "x"})
    assert (status, answer["message"]) == (400, message)


def test_the_device_listing_refuses_unknown_filters_before_any_query():
    for params, message in (({"status": "lost"}, "invalid_status"), ({"trust_level": ""}, "invalid_trust_level"),
                            ({"page_size": "0"}, "invalid_page_size")):
        status, answer = call("operator_list_devices", "GET", "operator/devices", params=params)
        assert (status, answer["message"]) == (400, message)
