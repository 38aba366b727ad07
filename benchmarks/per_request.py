"""Per-request cost of the hot endpoints through a devhost subprocess: latency, throughput, CPU
per request in every process, and storage round trips per request.

Workloads (each with 1, 8 and 32 concurrent clients, keep-alive, each client its own address in
``X-Forwarded-For`` so each has its own rate-limit counters, as distinct callers would):
``GET /verify_token`` (a valid reusable token), ``POST /generate_token``, the gatherer's
``POST /message`` (200 bytes), ``POST /get_private_key`` (RSA-3072 key of a file the caller owns),
and ``POST /upload`` of a 1 MiB envelope (one new file per call, so fewer calls).

Per workload and level: client-side p50/p95 (ms), requests per second (calls / wall time of the
level), and CPU ms per request of the devhost processes (primary + HTTP workers, summed), of
cosmosdb-server and of Azurite (psutil CPU times before and after the level, divided by the
calls). Storage round trips per request are counted from the SDKs in this process: the same
handlers are called in-process with every HTTP request the SDK transports send counted
(``RequestsTransport.send`` wrapped), so they are exactly what the code does per call.

Guarantees are checked during the run and the benchmark fails (exit code 3) if one breaks:
every one-time token verifies valid exactly once under concurrent verification from many clients
(both worker processes), and a revoked token never verifies valid.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil
import requests

from benchmarks.report import Stats, heading, summarize, table
from benchmarks.stack import StackSettings, devhost_subprocess, environment

LEVELS = (1, 8, 32)
WARMUP = 3
BENCH_SETTINGS = {
    "TRUSTED_PROXY_HOPS": "2",
    "TOKEN_RATE_LIMIT_PER_MINUTE": "1000000",
    "LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE": "1000000",
    "LOGIN_RATE_LIMIT_PER_MINUTE": "1000000",
    "KMS_RSA_KEY_BITS": "3072",
    "KMS_KEYS_PER_HOUR": "1000000",
    "BCRYPT_COST": "12",
}
MESSAGE = "m" * 200
ENVELOPE_BYTES = 1024 * 1024


class GuaranteeBroken(AssertionError):
    """A security guarantee did not hold during the run (a one-time token valid twice, ...)."""


@dataclass(frozen=True)
class Level:
    clients: int
    ms: Stats
    requests_per_s: float
    failures: int
    cpu_ms: dict[str, float]  # process kind -> CPU ms per request


@dataclass(frozen=True)
class Workload:
    """One endpoint under load: ``call(session, client_index, call_index)`` makes one request and
    returns whether it got the expected answer; ``calls`` per level; ``round_trips`` per request."""

    name: str
    call: Callable[[requests.Session, int, int], bool]
    calls: int
    round_trips: float = 0.0
    levels: tuple[Level, ...] = ()


@dataclass(frozen=True)
class Result:
    workloads: list[Workload]
    guarantees: list[str]
    worker_processes: int


def _cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals = {}
    for kind, members in processes.items():
        seconds = 0.0
        for process in members:
            try:
                times = process.cpu_times()
                seconds += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        totals[kind] = seconds
    return totals


def _level(workload: Workload, clients: int, processes: dict[str, list[psutil.Process]]) -> Level:
    calls = max(clients, workload.calls // clients * clients) // clients
    samples: list[float] = []
    failures: list[int] = []
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        session = requests.Session()
        for warm in range(WARMUP):
            workload.call(session, index, -1 - warm)
        start.wait()
        mine, bad = [], 0
        for number in range(calls):
            began = time.perf_counter()
            ok = workload.call(session, index, number)
            mine.append((time.perf_counter() - began) * 1000)
            bad += not ok
        samples.extend(mine)
        failures.append(bad)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    before = _cpu_seconds(processes)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    after = _cpu_seconds(processes)
    total = len(samples)
    cpu = {kind: (after[kind] - before[kind]) * 1000 / total for kind in processes}
    return Level(clients, summarize(samples), total / elapsed, sum(failures), cpu)


def _processes(host: psutil.Process, stack_pids: dict[str, int]) -> dict[str, list[psutil.Process]]:
    found = {"devhost": [host, *host.children(recursive=True)]}
    for kind, pid in stack_pids.items():
        root = psutil.Process(pid)
        found[kind] = [root, *root.children(recursive=True)]
    return found


def run(stack: StackSettings, workdir: Path, stack_pids: dict[str, int]) -> Result:
    """Measure and print. Raises :class:`GuaranteeBroken` when a guarantee fails during the run."""
    with environment(BENCH_SETTINGS):  # the devhost subprocess inherits the environment
        result = _measure(stack, workdir, stack_pids)
    _print(result)
    return result


def _measure(stack: StackSettings, workdir: Path, stack_pids: dict[str, int]) -> Result:
    from benchmarks.round_trips import count_round_trips
    from devhost.workers import default_worker_count

    workers = default_worker_count()
    with devhost_subprocess(stack, workdir / "devhost-per-request.log") as host:
        time.sleep(1)  # the HTTP workers answer as soon as the primary does; let them settle
        processes = _processes(host.process, stack_pids)
        fixtures = _Fixtures(host.base_url)
        trips = count_round_trips(fixtures)
        workloads = []
        for workload in fixtures.workloads():
            workload = Workload(workload.name, workload.call, workload.calls, trips.get(workload.name, 0.0))
            levels = tuple(_level(workload, clients, processes) for clients in LEVELS)
            workloads.append(Workload(workload.name, workload.call, workload.calls, workload.round_trips, levels))
        guarantees = _check_guarantees(host.base_url)
    return Result(workloads, guarantees, workers)


class _Fixtures:
    """Credentials and request builders for the workloads (made through the API and the stores)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        setup = requests.Session()
        response = setup.post(f"{base_url}/generate_token", json={"ttl_seconds": 3600},
                              headers={"X-Forwarded-For": "10.77.0.1"}, timeout=30)
        response.raise_for_status()
        self.token = response.json()["token"]
        self.gatherer_tokens = [self._gatherer_token(setup, index) for index in range(max(LEVELS))]
        self.email, self.sid = user_session()
        self.file_name = f"bench-{secrets.token_hex(4)}.bin"
        self._post_json(setup, "get_public_key", {"file_name": self.file_name}, sid=self.sid).raise_for_status()
        self.envelope = _envelope()
        self._uploads = 0
        self._upload_names: list[str] = []
        self._upload_lock = threading.Lock()

    def _post_json(self, session: requests.Session, path: str, body: dict, *, sid: str | None = None,
                   address: str = "10.77.0.1", bearer: str | None = None) -> requests.Response:
        headers = {"X-Forwarded-For": address}
        if sid:
            headers["sid"] = sid
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return session.post(f"{self.base_url}/{path}", json=body, headers=headers, timeout=60)

    def _gatherer_token(self, session: requests.Session, index: int) -> str:
        username = f"bench{index}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        self._post_json(session, "identify", {"message_type": "IDENTIFY", "username": username}).raise_for_status()
        response = self._post_json(session, "authenticate", {"message_type": "AUTHENTICATE", "username": username,
                                                             "password": password})
        response.raise_for_status()
        return response.json()["token"]

    def prepare_uploads(self, count: int) -> None:
        """Create ``count`` file keys (owner: the bench user) for the upload workload, in parallel."""
        names = [f"up-{secrets.token_hex(6)}.bin" for _ in range(count)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: self._post_json(requests.Session(), "get_public_key", {"file_name": name},
                                                       sid=self.sid).raise_for_status(), names))
        self._upload_names.extend(names)

    def workloads(self) -> list[Workload]:
        url = self.base_url

        def verify(session, client, _):
            response = session.get(f"{url}/verify_token", timeout=30, headers={
                "Authorization": f"Bearer {self.token}", "X-Forwarded-For": f"10.78.{client // 250}.{client % 250 + 1}"})
            return response.status_code == 200 and response.json().get("valid") is True

        def generate(session, client, _):
            response = session.post(f"{url}/generate_token", json={"ttl_seconds": 60}, timeout=30,
                                    headers={"X-Forwarded-For": f"10.79.{client // 250}.{client % 250 + 1}"})
            return response.status_code == 200

        def message(session, client, _):
            response = session.post(f"{url}/message", json={"message_type": "MESSAGE", "message": MESSAGE}, timeout=30,
                                    headers={"Authorization": f"Bearer {self.gatherer_tokens[client]}"})
            return response.status_code == 201

        def private_key(session, client, _):
            response = self._post_json(session, "get_private_key", {"file_name": self.file_name}, sid=self.sid)
            return response.status_code == 200

        def upload(session, client, _):
            with self._upload_lock:
                name = self._upload_names.pop() if self._upload_names else None
            if name is None:
                return False
            response = self._post_json(session, "upload", {"file_name": name, **self.envelope}, sid=self.sid)
            return response.status_code == 200

        upload_calls = 48
        self.prepare_uploads(upload_calls * len(LEVELS) + WARMUP * sum(LEVELS))
        return [
            Workload("verify_token", verify, 640),
            Workload("generate_token", generate, 640),
            Workload("message", message, 640),
            Workload("get_private_key", private_key, 320),
            Workload("upload_1mib", upload, upload_calls),
        ]


def user_session() -> tuple[str, str]:
    """A registered user and a live session, written straight to the stores (not measured):
    ``(email, sid)``. Also used by the kms and audit sections."""
    from shared_code.accounts import sessions
    from shared_code.accounts.users import user_key
    from shared_code.platform import cosmos
    from shared_code.platform.timeutil import to_iso, utc_now

    email = f"bench-{secrets.token_hex(4)}@example.org"
    cosmos.create_item(cosmos.USERS, {"id": user_key(email), "email": email, "password_hash": "x",
                                      "created_at": to_iso(utc_now())})
    return email, sessions.create_session(email)


def _envelope() -> dict[str, str]:
    """A 1 MiB envelope in the store's shape (random bytes: the server sees only ciphertext)."""
    return {
        "encrypted_data": base64.b64encode(os.urandom(ENVELOPE_BYTES)).decode("ascii"),
        "encrypted_aes_key": base64.b64encode(os.urandom(384)).decode("ascii"),  # RSA-3072 modulus
        "encrypted_aes_initial_vector": base64.b64encode(os.urandom(12)).decode("ascii"),
    }


def _check_guarantees(base_url: str) -> list[str]:
    """One-time tokens valid exactly once under concurrency; revoked tokens never valid."""
    session = requests.Session()
    one_time = []
    for _ in range(40):
        response = session.post(f"{base_url}/generate_token", json={"ttl_seconds": 60, "one_time": True},
                                headers={"X-Forwarded-For": "10.80.0.1"}, timeout=30)
        response.raise_for_status()
        one_time.append(response.json()["token"])
    sessions = [requests.Session() for _ in range(16)]

    def verify(args: tuple[int, str]) -> bool:
        index, token = args
        response = sessions[index % len(sessions)].get(f"{base_url}/verify_token", timeout=30, headers={
            "Authorization": f"Bearer {token}", "X-Forwarded-For": f"10.81.0.{index % 200 + 1}"})
        return response.status_code == 200 and response.json().get("valid") is True

    attempts = [(index, token) for token in one_time for index in range(16)]
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(verify, attempts))
    per_token = [sum(outcomes[i * 16:(i + 1) * 16]) for i in range(len(one_time))]
    if per_token != [1] * len(one_time):
        raise GuaranteeBroken(f"one-time tokens valid {per_token} times (each must be exactly 1)")
    revoked = []
    for _ in range(20):
        token = session.post(f"{base_url}/generate_token", json={"ttl_seconds": 60},
                             headers={"X-Forwarded-For": "10.80.0.2"}, timeout=30).json()["token"]
        session.post(f"{base_url}/revoke_token", json={"token": token}, headers={"X-Forwarded-For": "10.80.0.2"},
                     timeout=30).raise_for_status()
        revoked.append(token)
    with ThreadPoolExecutor(16) as pool:
        valid = sum(pool.map(verify, [(index, token) for token in revoked for index in range(8)]))
    if valid:
        raise GuaranteeBroken(f"revoked tokens verified valid {valid} times")
    return [f"{len(one_time)} one-time tokens x 16 concurrent verifications: each valid exactly once",
            f"{len(revoked)} revoked tokens x 8 verifications: never valid"]


def _print(result: Result) -> None:
    heading(f"Per-request cost through a devhost subprocess ({result.worker_processes} HTTP worker processes, keep-alive)")
    rows = []
    for workload in result.workloads:
        for level in workload.levels:
            rows.append([workload.name, level.clients, level.ms.n, level.ms.p50, level.ms.p95, level.requests_per_s,
                         level.cpu_ms.get("devhost", 0.0), level.cpu_ms.get("cosmos", 0.0), level.cpu_ms.get("azurite", 0.0),
                         workload.round_trips, level.failures])
    table(["endpoint", "clients", "calls", "p50 ms", "p95 ms", "req/s", "app CPU ms", "cosmos CPU ms",
           "azurite CPU ms", "round trips", "failed"], rows)
    print("CPU ms are per request (user + system) over the counted calls; round trips are storage "
          "HTTP requests per call, counted from the SDKs in-process.", flush=True)
    for line in result.guarantees:
        print(f"guarantee held: {line}", flush=True)


def summary_line(result: Result) -> str:
    """One line for the benchmark summary."""
    parts = []
    for workload in result.workloads:
        one, many = workload.levels[0], workload.levels[-1]
        parts.append(f"{workload.name} p50 {one.ms.p50:.1f} ms, {many.requests_per_s:.0f}/s at {many.clients}, "
                     f"app CPU {one.cpu_ms.get('devhost', 0.0):.2f} ms, {workload.round_trips:g} trips")
    return "per request: " + "; ".join(parts)


def as_json(result: Result) -> str:
    """The figures as JSON (for comparing runs)."""
    return json.dumps([{
        "endpoint": w.name, "round_trips": w.round_trips,
        "levels": [{"clients": lv.clients, "p50_ms": lv.ms.p50, "p95_ms": lv.ms.p95, "req_per_s": lv.requests_per_s,
                    "cpu_ms": lv.cpu_ms, "failures": lv.failures} for lv in w.levels],
    } for w in result.workloads], indent=1)
