"""Extra language-worker processes for HTTP, as the Functions host runs them.

The Functions host starts ``FUNCTIONS_WORKER_PROCESS_COUNT`` Python worker processes per
instance, each with its own thread pool (``PYTHON_THREADPOOL_THREAD_COUNT``), so one instance
uses more than one core despite the GIL. devhost does the same for HTTP: the primary process
serves its listening socket; each extra worker is a *spawned* process (a fresh interpreter, as a
language worker is, never a fork of a process that holds SDK clients and threads) that imports
the app, indexes it and serves HTTP triggers on its own socket bound to the same address with
``SO_REUSEPORT``, so the kernel spreads new connections evenly over the processes. Timers and blob triggers run in the primary only, so a
schedule fires once and a blob is processed once, whatever the worker count.

Every worker is its own Python process: module state (settings cache, SDK clients, leased
rate-limit blocks) is per worker, exactly as in Azure, and only the primary's invocations appear
in :attr:`devhost.server.RunningHost.invocations`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from devhost.settings import get_number

log = logging.getLogger("devhost")

START_SECONDS = 60
STOP_SECONDS = 10


def default_worker_count() -> int:
    """``FUNCTIONS_WORKER_PROCESS_COUNT``, or one worker per CPU (at most 10, the host's cap)."""
    return int(get_number("FUNCTIONS_WORKER_PROCESS_COUNT", min(10, os.cpu_count() or 1), minimum=1))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to serve exactly what the primary serves."""

    app_ref: str  # "module:attribute" of the FunctionApp, e.g. "function_app:app"
    route_prefix: str
    max_request_bytes: int
    log_level: int


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port); with ``reuse_port``, ``SO_REUSEPORT``
    so the primary and each worker process bind the same port and the kernel spreads connections.

    ``IPPROTO_TCP`` explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    listening socket's proto is IPPROTO_TCP (see :func:`devhost.server.serving`). Raises
    ``OSError`` when the address cannot be bound.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def start_workers(host: str, port: int, count: int, spec: WorkerSpec) -> list[BaseProcess]:
    """Spawn ``count`` HTTP worker processes serving ``host:port`` (already bound by the primary
    with :func:`listening_socket`); returns them once each serves.

    Raises :class:`RuntimeError` (after stopping the others) when a worker dies or is not
    serving within :data:`START_SECONDS` (e.g. the app fails to import in a fresh interpreter).
    """
    context = multiprocessing.get_context("spawn")
    workers, ready = [], []
    for number in range(count):
        serving = context.Event()
        worker = context.Process(target=_worker_main, args=(host, port, spec, serving), name=f"worker-{number + 2}",
                                 daemon=True)
        worker.start()
        workers.append(worker)
        ready.append(serving)
    deadline = time.monotonic() + START_SECONDS
    for worker, serving in zip(workers, ready):
        while not serving.wait(0.1):
            if not worker.is_alive() or time.monotonic() > deadline:
                stop_workers(workers)
                raise RuntimeError(f"HTTP worker {worker.name} did not start (exit code {worker.exitcode})")
    if workers:
        log.info("%d extra HTTP worker process(es) serving: pids %s", len(workers), ", ".join(str(w.pid) for w in workers))
    return workers


def stop_workers(workers: list[BaseProcess]) -> None:
    """SIGTERM every worker (uvicorn lets invocations in progress finish), then wait; kill stragglers."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(STOP_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join(1)


def _worker_main(host: str, port: int, spec: WorkerSpec, serving: Any) -> None:
    """Entry point of a spawned worker: import and index the app, serve its HTTP triggers, set
    ``serving`` (a multiprocessing event) once uvicorn accepts connections."""
    logging.basicConfig(level=spec.log_level, format=f"%(asctime)s %(levelname)s %(name)s ({multiprocessing.current_process().name}): %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    from devhost.server import ROOT, build_http_server, indexed_functions, plan
    from devhost.blobwatch import default_host_id
    from devhost.invoke import Invoker

    module_name, _, attribute = spec.app_ref.partition(":")
    app = getattr(importlib.import_module(module_name), attribute)
    invoker = Invoker(function_directory=str(ROOT))
    the_plan = plan(indexed_functions(app), invoker, prefix=spec.route_prefix, timers=False, blob_triggers=False,
                    poll_seconds=1.0, host_id=default_host_id())
    server = build_http_server(the_plan.table, invoker, spec.max_request_bytes)
    sock = listening_socket(host, port, reuse_port=True)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))  # uvicorn handles SIGTERM / SIGINT
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            serving.set()
        await task
    asyncio.run(main())
