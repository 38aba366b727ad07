"""``GET /verify_token`` through a devhost subprocess with 1, 8 and 32 concurrent clients.

The devhost runs as its own process (``benchmarks.stack.devhost_subprocess``), so the client
threads here do not share its GIL. Each client is a thread with its own ``requests.Session``
(keep-alive) and its own address in ``X-Forwarded-For`` (the devhost runs with
``TRUSTED_PROXY_HOPS=2``), so each has its own rate-limit counter, as distinct callers would; the
limit is raised out of the way. Every call verifies one reusable, valid token: IP check, one
conditional Patch of the rate-limit counter, one point read of the token.

Per level: ``WARMUP`` calls per client first (not counted), then all clients start together and
make ``TOTAL_CALLS // clients`` calls each. Reported: client-side latency p50/p95 (ms) over all
calls, and requests per second = calls / wall time of the counted phase.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.report import Stats, heading, summarize, table
from benchmarks.stack import StackSettings, devhost_subprocess, environment

LEVELS = (1, 8, 32)
TOTAL_CALLS = 640
WARMUP = 3
BENCH_SETTINGS = {"TRUSTED_PROXY_HOPS": "2", "TOKEN_RATE_LIMIT_PER_MINUTE": "1000000"}


@dataclass(frozen=True)
class Level:
    clients: int
    ms: Stats
    requests_per_s: float
    failures: int


def _client(base_url: str, address: str, token: str, calls: int, start: threading.Barrier,
            samples: list[float], failures: list[int]) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
    url = f"{base_url}/verify_token"
    for _ in range(WARMUP):
        session.get(url, headers=headers, timeout=30)
    start.wait()
    mine, bad = [], 0
    for _ in range(calls):
        began = time.perf_counter()
        response = session.get(url, headers=headers, timeout=30)
        mine.append((time.perf_counter() - began) * 1000)
        bad += response.status_code != 200 or response.json().get("valid") is not True
    samples.extend(mine)
    failures.append(bad)


def _level(base_url: str, token: str, clients: int) -> Level:
    calls = TOTAL_CALLS // clients
    samples: list[float] = []
    failures: list[int] = []
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=_client, args=(base_url, f"10.77.{clients}.{i + 1}", token, calls, start, samples, failures))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Level(clients, summarize(samples), len(samples) / elapsed, sum(failures))


def run(stack: StackSettings, workdir: Path) -> list[Level]:
    """Measure and print; returns one :class:`Level` per concurrency level."""
    with environment(BENCH_SETTINGS):  # the devhost subprocess inherits the environment
        levels = _measure(stack, workdir)
    heading("GET /verify_token through a devhost subprocess (valid token, keep-alive)")
    table(["clients", "calls", "p50 ms", "p95 ms", "max ms", "req/s", "failed"],
          [[str(lv.clients), lv.ms.n, lv.ms.p50, lv.ms.p95, lv.ms.maximum, lv.requests_per_s, lv.failures] for lv in levels])
    print(f"({WARMUP} warm-up calls per client not counted; {TOTAL_CALLS} calls per level split across the clients)",
          flush=True)
    return levels


def _measure(stack: StackSettings, workdir: Path) -> list[Level]:
    with devhost_subprocess(stack, workdir / "devhost-tokens.log") as host:
        response = requests.post(f"{host.base_url}/generate_token", json={"ttl_seconds": 3600},
                                 headers={"X-Forwarded-For": "10.77.0.1"}, timeout=30)
        response.raise_for_status()
        token = response.json()["token"]
        return [_level(host.base_url, token, clients) for clients in LEVELS]
