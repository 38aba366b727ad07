"""``FUNCTIONS_WORKER_PROCESS_COUNT`` in devhost: extra HTTP worker processes share the listening
port (SO_REUSEPORT), the kernel spreads connections over all of them, each answers as the primary
does, and they stop with the host."""

from __future__ import annotations

import http.client
import json
import os

import psutil
import pytest

from devhost.server import serving
from tests.fixtures import sample_app

pytestmark = pytest.mark.integration

CONNECTIONS = 24  # all on one process by chance: 2 x 2^-24


def _listens(process: psutil.Process, port: int) -> bool:
    return any(connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
               for connection in process.net_connections(kind="tcp"))


def _serving_pids(ports: set[int], candidates: list[psutil.Process]) -> dict[int, int]:
    """Client port -> pid of the process holding the server side of that connection."""
    owners = {}
    for process in candidates:
        for connection in process.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_ESTABLISHED and connection.raddr and connection.raddr.port in ports:
                owners[connection.raddr.port] = process.pid
    return owners


def test_worker_processes_share_the_port_and_each_serves_requests():
    with serving(sample_app.app, timers=False, blob_triggers=False, route_prefix="api",
                 worker_processes=2, app_ref="tests.fixtures.sample_app:app") as running:
        workers = [child for child in psutil.Process().children(recursive=True) if _listens(child, running.port)]
        assert len(workers) == 1  # the primary is the second
        connections = [http.client.HTTPConnection("127.0.0.1", running.port, timeout=10) for _ in range(CONNECTIONS)]
        try:
            for index, connection in enumerate(connections):
                connection.request("GET", f"/api/echo/{index}")
                response = connection.getresponse()
                assert response.status == 200
                assert json.loads(response.read())["route_params"] == {"rest": str(index)}
            ports = {connection.sock.getsockname()[1] for connection in connections}
            owners = _serving_pids(ports, [psutil.Process(), *workers])
        finally:
            for connection in connections:
                connection.close()
        assert set(owners) == ports
        assert set(owners.values()) == {os.getpid(), workers[0].pid}
    assert not workers[0].is_running() or workers[0].status() == psutil.STATUS_ZOMBIE
