"""Binding user functions to their trigger, and the invocation log."""

from __future__ import annotations

import threading

import azure.functions as func
import pytest

from devhost.invoke import InvocationLog, UnsupportedFunction, bind


def only_function(app: func.FunctionApp) -> func.Function:
    (function,) = app.get_functions()
    return function


def test_http_function_with_context_is_bound_by_parameter_names():
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x", trigger_arg_name="request")
    def handler(request: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse("ok")

    bound = bind(only_function(app))
    assert (bound.name, bound.kind, bound.binding_name, bound.wants_context, bound.is_async) == (
        "handler", "http", "request", True, False)


def test_async_timer_without_context():
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="t", schedule="0 * * * * *")
    async def every_minute(t: func.TimerRequest) -> None:
        return None

    bound = bind(only_function(app))
    assert (bound.kind, bound.binding_name, bound.wants_context, bound.is_async) == ("timer", "t", False, True)


def test_a_binding_devhost_does_not_provide_is_refused_with_its_name():
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="in/{name}", connection="STORAGE")
    @app.blob_output(arg_name="copy", path="out/{name}", connection="STORAGE")
    def copy_blob(blob: func.InputStream, copy: func.Out[bytes]) -> None:
        copy.set(blob.read())

    with pytest.raises(UnsupportedFunction, match="copy"):
        bind(only_function(app))


def test_unsupported_trigger_kind_is_refused():
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="work", connection="STORAGE")
    def on_message(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(UnsupportedFunction, match="queueTrigger"):
        bind(only_function(app))


def _record(log: InvocationLog, function: str, status: str = "succeeded"):
    return log.add(function=function, trigger="timer", status=status, duration_ms=1.0, error=None,
                   invocation_id="id", started_at=None)


def test_wait_for_returns_a_matching_record_recorded_later():
    log = InvocationLog()
    _record(log, "other")
    threading.Timer(0.05, _record, args=(log, "tick", "failed")).start()
    record = log.wait_for("tick", lambda r: r.status == "failed", timeout=2)
    assert (record.function, record.status, record.seq) == ("tick", "failed", 2)


def test_wait_for_times_out_listing_what_was_seen():
    log = InvocationLog()
    _record(log, "tick")
    with pytest.raises(TimeoutError, match="tick"):
        log.wait_for("tick", lambda r: r.status == "failed", timeout=0.05)
