"""The devhost itself: HTTP triggers over uvicorn, timer and blob triggers alongside.

:func:`serving` indexes the app once (``app.get_functions()``), then runs everything on one asyncio
loop in a background thread: uvicorn answers HTTP, one task per timer and per blob-triggered
function. HTTP requests become :class:`azure.functions.HttpRequest` objects exactly as the host
builds them (full URL, the values of a repeated query key joined with ``,``, route parameters, raw body, the peer appended
to ``X-Forwarded-For`` as Azure's front end does), and the returned
:class:`azure.functions.HttpResponse` is sent back with all its headers, repeated ones included.

Function keys are not checked: like Core Tools running locally, devhost serves ``AuthLevel.FUNCTION``
and ``ADMIN`` routes without a key (Azure enforces them).

Settings (environment first, then ``local.settings.json``):
``DEVHOST_MAX_REQUEST_BYTES`` (default 104857600, Azure's limit) and ``DEVHOST_BLOB_POLL_SECONDS``
(default 2). HTTP can be served by several processes (:mod:`devhost.workers`), as the host runs
``FUNCTIONS_WORKER_PROCESS_COUNT`` language workers. The route prefix comes from ``host.json`` ``extensions.http.routePrefix``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator
from urllib.parse import parse_qsl

import azure.functions as func
import uvicorn

from devhost.blobwatch import BlobPathError, BlobWatcher, default_host_id
from devhost.invoke import BoundFunction, InvocationLog, InvocationRecord, Invoker, UnsupportedFunction, bind
from devhost.routing import (
    MethodNotAllowed,
    Route,
    RouteTable,
    RouteTemplateError,
    compile_template,
    normalise_methods,
    read_route_prefix,
)
from devhost.settings import SettingError, get_number
from devhost.timers import ScheduleError, TimerRunner

log = logging.getLogger("devhost")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
DEFAULT_BLOB_POLL_SECONDS = 2.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _json_response(status: int, message: str, detail: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    body = json.dumps({"code": status, "message": message, "detail": detail}, separators=(",", ":"))
    return func.HttpResponse(body, status_code=status, mimetype="application/json", headers=headers)


async def _send(send: Send, response: func.HttpResponse) -> None:
    """Send ``response`` with every header (duplicates kept) and an exact Content-Length."""
    body = response.get_body() or b""
    headers: list[tuple[bytes, bytes]] = []
    for name, value in response.headers.items():
        if name.lower() in ("content-length", "transfer-encoding"):
            continue
        headers.append((name.encode("latin-1"), str(value).encode("utf-8")))
    if "content-type" not in response.headers:
        mimetype = response.mimetype
        content_type = f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype
        headers.append((b"content-type", content_type.encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class HttpApp:
    """The ASGI application that routes requests to HTTP-triggered functions."""

    def __init__(self, table: RouteTable, invoker: Invoker, max_request_bytes: int) -> None:
        self.table = table
        self.invoker = invoker
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        resolved = self.table.resolve(method, path)
        if resolved is None:
            await self._refuse(send, method, path, _json_response(404, "not_found", f"no function serves {path}"))
            return
        if isinstance(resolved, MethodNotAllowed):
            allowed = ", ".join(resolved.allowed)
            await self._refuse(send, method, path, _json_response(
                405, "method_not_allowed", f"{path} accepts {allowed}", {"Allow": allowed}))
            return
        headers = _headers(scope)
        _append_forwarded_for(headers, scope)
        try:
            body = await self._read_body(headers, receive)
        except _ClientGone:
            return
        if body is None:
            await self._refuse(send, method, path, _json_response(
                413, "payload_too_large", f"the request body exceeds {self.max_request_bytes} bytes"))
            return
        request = func.HttpRequest(
            method, _url(scope, headers), headers=headers, params=_query(scope),
            route_params=resolved.params, body=body,
        )
        response = await self._invoke(resolved.route.target, request, method, path)
        await _send(send, response)

    @staticmethod
    async def _refuse(send: Send, method: str, path: str, response: func.HttpResponse) -> None:
        """Answer without invoking a function (404, 405, 413), with a log line."""
        log.info("%s %s -> %d %s", method, path, response.status_code, json.loads(response.get_body())["message"])
        await _send(send, response)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it is known to exceed the limit (the rest is
        not read). Raises :class:`_ClientGone` if the client disconnects first."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_request_bytes:
            return None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            body += message.get("body", b"")
            if len(body) > self.max_request_bytes:
                return None
            if not message.get("more_body", False):
                return bytes(body)

    async def _invoke(self, bound: BoundFunction, request: func.HttpRequest, method: str, path: str) -> func.HttpResponse:
        invocation_id = str(uuid.uuid4())
        started_at = datetime.now(timezone.utc)
        start = time.perf_counter()
        error: Exception | None = None
        try:
            result = await self.invoker.call(bound, request, invocation_id)
            if isinstance(result, str):
                result = func.HttpResponse(result)
            if not isinstance(result, func.HttpResponse):
                raise TypeError(f"{bound.name} returned {type(result).__name__}, expected azure.functions.HttpResponse")
            response = result
        except Exception as exc:  # the function failed: 500 without internals, traceback in the log
            error = exc
            response = _json_response(500, "internal_error", "the function failed; see the devhost log")
        self.invoker.record(
            bound, invocation_id=invocation_id, started_at=started_at,
            duration_ms=(time.perf_counter() - start) * 1000, error=error, http_status=response.status_code,
            summary=f"{method} {path}", method=method, path=path,
        )
        return response


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-case names; repeated headers joined with ", " as ASP.NET does."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _append_forwarded_for(headers: dict[str, str], scope: Scope) -> None:
    """Append the TCP peer to ``X-Forwarded-For`` as ``ip:port``, as the App Service front end
    does, so the app finds the client address where it does in Azure (``TRUSTED_PROXY_HOPS=1``)."""
    client = scope.get("client")
    if not client:
        return
    host, port = client[0], client[1]
    entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    existing = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{existing}, {entry}" if existing else entry


def _query(scope: Scope) -> dict[str, str]:
    """Query parameters; a key given more than once maps to its values joined with ``,``, as the
    Functions host passes them (ASP.NET Core's ``StringValues.ToString()``), so the app sees that a
    parameter was repeated instead of silently getting the first value."""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return {key: ",".join(items) for key, items in values.items()}


def _url(scope: Scope, headers: dict[str, str]) -> str:
    """The full request URL, query string included."""
    host = headers.get("host")
    if not host:
        server_host, server_port = scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{server_port}"
    path = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")


@dataclass
class Plan:
    """What :func:`serving` runs: the route table, background runners and functions it skipped."""

    table: RouteTable
    runners: list[Any]
    skipped: dict[str, str] = field(default_factory=dict)


def plan(functions: list[func.Function], invoker: Invoker, *, prefix: str, timers: bool, blob_triggers: bool,
         poll_seconds: float, host_id: str) -> Plan:
    """Bind every function to its trigger. A function the devhost cannot run (unsupported trigger or
    binding, bad route, schedule, blob path or connection) is skipped with an ERROR log naming the
    reason, as the Functions host reports a function in error and runs the others."""
    routes, runners, skipped = [], [], {}
    for function in functions:
        name = function.get_function_name()
        try:
            bound = bind(function)
            if bound.kind == "http":
                template = compile_template(bound.trigger.route or bound.name, prefix)
                routes.append(Route(template, normalise_methods(bound.trigger.methods), bound))
            elif bound.kind == "timer" and timers:
                runners.append(TimerRunner(bound, invoker))
            elif bound.kind == "blob" and blob_triggers:
                runners.append(BlobWatcher(bound, invoker, host_id=host_id, poll_seconds=poll_seconds))
        except (UnsupportedFunction, RouteTemplateError, ScheduleError, BlobPathError, SettingError) as exc:
            skipped[name] = str(exc)
            log.error("function %s is not loaded: %s", name, exc)
    return Plan(RouteTable(routes), runners, skipped)


class RunningHost:
    """Handle on a running devhost (what :func:`serving` yields)."""

    def __init__(self, host: str, port: int, functions: list[func.Function], skipped: dict[str, str],
                 route_prefix: str, log_: InvocationLog, thread: threading.Thread) -> None:
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.functions = functions  # every indexed function
        self.skipped = skipped  # function name -> why it is not running
        self.route_prefix = route_prefix  # "" or e.g. "api"
        self._log = log_
        self._thread = thread

    @property
    def running(self) -> bool:
        """Whether the server thread is still up."""
        return self._thread.is_alive()

    @property
    def invocations(self) -> list[InvocationRecord]:
        """Recent invocation records, oldest first (a copy)."""
        return self._log.snapshot()

    def wait_for_invocation(self, function_name: str, predicate: Callable[[InvocationRecord], bool] | None = None,
                            timeout: float = 10) -> InvocationRecord:
        """The oldest record of ``function_name`` matching ``predicate`` (already recorded or coming
        within ``timeout`` seconds). Raises :class:`TimeoutError`."""
        return self._log.wait_for(function_name, predicate, timeout)


class _LoopThread(threading.Thread):
    """Runs uvicorn and the trigger runners on one event loop."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, runners: list[Any]) -> None:
        super().__init__(name="devhost", daemon=True)
        self.server = server
        self.sock = sock
        self.runners = runners
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the starting thread by serving()
            self.error = exc
            log.exception("devhost stopped on an error")

    async def _main(self) -> None:
        tasks = [asyncio.create_task(runner.run(), name=f"devhost:{runner.bound.name}") for runner in self.runners]
        for task in tasks:
            task.add_done_callback(_report_crash)
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped on an error", task.get_name(), exc_info=task.exception())


_indexed: weakref.WeakKeyDictionary[func.FunctionApp, list[func.Function]] = weakref.WeakKeyDictionary()
_indexed_lock = threading.Lock()


def indexed_functions(app: func.FunctionApp) -> list[func.Function]:
    """``app.get_functions()``, called once per app object and remembered.

    ``FunctionApp.get_functions()`` raises "does not have a unique function name" when called a
    second time on the same app, so the devhost never calls it twice; serving the same app again in
    one process reuses the first result.
    """
    with _indexed_lock:
        if app not in _indexed:
            _indexed[app] = app.get_functions()
        return _indexed[app]


@contextlib.contextmanager
def serving(app: func.FunctionApp, *, host: str = "127.0.0.1", port: int = 0, timers: bool = True,
            blob_triggers: bool = True, blob_poll_seconds: float | None = None,
            max_request_bytes: int | None = None, route_prefix: str | None = None,
            worker_processes: int = 1, app_ref: str | None = None) -> Iterator[RunningHost]:
    """Serve ``app`` on ``host:port`` (0 = a free port) until the block exits.

    ``worker_processes`` > 1 adds that many minus one HTTP worker processes on the same socket
    (:mod:`devhost.workers`), each importing the app from ``app_ref`` (``"module:attribute"``);
    timers, blob triggers and :attr:`RunningHost.invocations` stay in this process.

    Indexes the app once (:func:`indexed_functions`); serves HTTP triggers, and unless disabled
    runs timer triggers and polls blob triggers (every ``blob_poll_seconds``, default
    ``DEVHOST_BLOB_POLL_SECONDS`` or 2 s). ``max_request_bytes`` defaults to ``DEVHOST_MAX_REQUEST_BYTES`` or 100 MiB;
    ``route_prefix`` replaces host.json's ``routePrefix``. Returns once the port accepts
    connections; on exit stops uvicorn and the runners, letting invocations in progress finish.
    Raises :class:`RuntimeError` if the server does not start within 10 s, ``OSError`` if the
    port is taken, :class:`devhost.settings.SettingError` for a malformed ``DEVHOST_*`` setting.
    """
    functions = indexed_functions(app)
    invoker = Invoker(function_directory=str(ROOT))
    prefix = read_route_prefix(ROOT / "host.json") if route_prefix is None else route_prefix.strip("/")
    poll = blob_poll_seconds if blob_poll_seconds is not None else get_number(
        "DEVHOST_BLOB_POLL_SECONDS", DEFAULT_BLOB_POLL_SECONDS, minimum=0.01)
    limit = max_request_bytes if max_request_bytes is not None else int(get_number(
        "DEVHOST_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, minimum=0))
    the_plan = plan(functions, invoker, prefix=prefix, timers=timers, blob_triggers=blob_triggers,
                    poll_seconds=poll, host_id=default_host_id())
    server = build_http_server(the_plan.table, invoker, limit)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket's proto is IPPROTO_TCP. With proto 0, Nagle holds each response body (written after its
    # headers) for the client's delayed ACK: ~40 ms on every keep-alive request.
    if worker_processes > 1 and app_ref is None:
        raise ValueError("worker_processes > 1 needs app_ref, the importable 'module:attribute' of the app")
    from devhost.workers import WorkerSpec, listening_socket, start_workers

    sock = listening_socket(host, port, reuse_port=worker_processes > 1)
    actual_port = sock.getsockname()[1]
    workers: list[Any] = []
    if worker_processes > 1:
        try:
            workers = start_workers(host, actual_port, worker_processes - 1,
                                    WorkerSpec(app_ref or "", prefix, limit, logging.getLogger().level))
        except RuntimeError:
            sock.close()
            raise
    thread = _LoopThread(server, sock, the_plan.runners)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"devhost did not start on {host}:{actual_port}: {thread.error!r}")
            time.sleep(0.01)
        url_host = f"[{host}]" if ":" in host else host
        yield RunningHost(url_host, actual_port, functions, the_plan.skipped, prefix, invoker.log, thread)
    finally:
        if workers:
            from devhost.workers import stop_workers

            stop_workers(workers)
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


def build_http_server(table: RouteTable, invoker: Invoker, max_request_bytes: int) -> uvicorn.Server:
    """The uvicorn server for HTTP triggers (the primary and every extra worker build the same)."""
    config = uvicorn.Config(
        HttpApp(table, invoker, max_request_bytes), lifespan="off", log_config=None, access_log=False,
        http="httptools", loop="uvloop", ws="none", server_header=False, timeout_graceful_shutdown=5,
        # The peer must stay the TCP peer: uvicorn would otherwise take it from X-Forwarded-For
        # for loopback clients, and the header the app sees would no longer be Azure's.
        proxy_headers=False,
    )
    return uvicorn.Server(config)
