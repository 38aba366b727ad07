"""Request latency through devhost over real HTTP (one ``requests.Session``, keep-alive).

Each call goes through :class:`client.device_api.DeviceClient` on a :class:`TimedSession`, so the
figure is what a device sees: HTTP on loopback, devhost (uvicorn + ``func.HttpRequest``), the
handler, and its Cosmos DB / Blob Storage calls to the emulators. The client runs in the same
process as the in-process devhost, so both share one GIL (the numbers include that).

- ``GET /benchmarks-no-such-route``: ``FLOOR_N`` requests devhost answers 404 itself without
  invoking any function: the floor of HTTP + devhost routing under every other figure.
- ``POST /register-device``: ``REGISTER_N`` distinct new devices, one call each.
- ``GET /api/challenge``: ``CHALLENGE_N`` calls for one registered device.
- ``POST /upload-file`` of a 1 KiB file: ``UPLOAD_N`` ``DeviceClient.upload(path)`` calls on an
  attested P-256 device, each with a fresh challenge. Reported twice: the upload request alone
  (from the session timings) and the whole round trip (hash file, ``GET /api/challenge``, sign,
  ``POST /upload-file``).

``WARMUP`` calls of each kind run first and are not counted (first connections, lazy clients).
Percentiles: :func:`benchmarks.report.summarize`.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Stats, heading, summarize, table
from benchmarks.timed_session import TimedSession
from client.device_api import DeviceClient
from client.keys import generate_private_key

FLOOR_N = 50
FLOOR_PATH = "/benchmarks-no-such-route"
REGISTER_N = 200
CHALLENGE_N = 300
UPLOAD_N = 100
UPLOAD_BYTES = 1024
WARMUP = 5


@dataclass(frozen=True)
class Row:
    short: str  # for the summary line
    label: str  # for the table
    ms: Stats


@dataclass(frozen=True)
class LatencyResult:
    rows: list[Row]


def run(base_url: str, workdir: Path) -> LatencyResult:
    """Measure and print; returns the figures (ms)."""
    session = TimedSession()
    key = generate_private_key("p256")
    run_id = uuid.uuid4().hex[:8]

    def new_device(label: str) -> DeviceClient:
        return DeviceClient(base_url, f"bench-{run_id}-{label}", secrets.token_urlsafe(32), key, session=session)

    floor_ms = []
    for i in range(WARMUP + FLOOR_N):
        session.get(base_url + FLOOR_PATH, timeout=30)
        if i >= WARMUP:
            floor_ms.append(session.last("GET", FLOOR_PATH).ms)

    for i in range(WARMUP):
        new_device(f"warm-{i}").register()
    register_ms = []
    for i in range(REGISTER_N):
        device = new_device(f"reg-{i:04d}")
        device.register()
        register_ms.append(session.last("POST", "/register-device").ms)

    device = new_device("main")
    device.register()
    for _ in range(WARMUP):
        device.challenge()
    challenge_ms = []
    for _ in range(CHALLENGE_N):
        device.challenge()
        challenge_ms.append(session.last("GET", "/api/challenge").ms)

    device.attest()
    sample = workdir / "sample-1k.bin"
    sample.write_bytes(os.urandom(UPLOAD_BYTES))
    for _ in range(WARMUP):
        device.upload(sample)
    upload_ms, round_trip_ms = [], []
    for _ in range(UPLOAD_N):
        start = time.perf_counter()
        device.upload(sample)
        round_trip_ms.append((time.perf_counter() - start) * 1000)
        upload_ms.append(session.last("POST", "/upload-file").ms)

    rows = [
        Row("404 floor", "GET unknown route (devhost 404, no function)", summarize(floor_ms)),
        Row("register", "POST /register-device", summarize(register_ms)),
        Row("challenge", "GET /api/challenge", summarize(challenge_ms)),
        Row("upload 1KiB", "POST /upload-file 1 KiB (call alone)", summarize(upload_ms)),
        Row("challenge+upload", "challenge + sign + upload 1 KiB (round trip)", summarize(round_trip_ms)),
    ]
    heading("Latency through devhost (ms, HTTP keep-alive, client in the same process)")
    table(["request", "N", "p50 ms", "p95 ms", "mean ms", "min ms", "max ms"],
          [[r.label, r.ms.n, r.ms.p50, r.ms.p95, r.ms.mean, r.ms.minimum, r.ms.maximum] for r in rows])
    print(f"({WARMUP} warm-up calls of each kind not counted; register: {REGISTER_N} distinct devices; "
          f"uploads: P-256 device, fresh challenge each)", flush=True)
    return LatencyResult(rows)
