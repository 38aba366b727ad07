"""The KMS key service's functions as the host indexes them."""

import azure.functions as func

import function_app
from devhost.server import indexed_functions

FUNCTIONS = {f.get_function_name(): f for f in indexed_functions(function_app.app)}


def test_kms_status_is_a_function_key_get_outside_the_hosts_reserved_admin_routes():
    trigger = FUNCTIONS["kms_status"].get_trigger()
    assert (trigger.route, trigger.methods, trigger.auth_level) == ("kms/status", [func.HttpMethod.GET], func.AuthLevel.FUNCTION)


def test_no_http_route_claims_the_hosts_admin_or_runtime_prefix():
    # The Functions host refuses such functions ("The specified route conflicts with one or more
    # built in routes"), and host.json's routePrefix is "".
    routes = [f.get_trigger().route or f.get_function_name() for f in FUNCTIONS.values()
              if f.get_trigger().get_binding_name() == "httpTrigger"]
    assert [r for r in routes if r.lower().split("/")[0] in ("admin", "runtime")] == []


def test_the_rewrap_timer_runs_on_its_setting():
    timer = FUNCTIONS["kms_rewrap_timer"].get_trigger()
    assert timer.get_binding_name() == "timerTrigger" and timer.schedule == "%KMS_REWRAP_SCHEDULE%"


def test_the_key_service_routes_are_session_posts():
    for name, route in (("unwrap_key", "unwrap_key"), ("rotate_file_key", "rotate_file_key"), ("retire_file_key", "retire_file_key")):
        trigger = FUNCTIONS[name].get_trigger()
        assert (trigger.route, trigger.methods, trigger.auth_level) == (route, [func.HttpMethod.POST], func.AuthLevel.ANONYMOUS)
