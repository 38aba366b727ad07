"""Upload throughput (MB/s) and peak RSS: devhost + the device client vs. a plain SDK upload.

For each size in :data:`REPEATS` (random bytes from :func:`os.urandom` in a temp file; MB =
10^6 bytes, MiB = 2^20), alternating run by run, against the same Azurite:

- **devhost**: ``DeviceClient.upload(path)`` (streams the file as multipart, after hashing it and
  fetching a challenge) to a ``python -m devhost run`` subprocess. Time = the whole
  ``upload()`` call; the ``POST /upload-file`` alone is shown too. RSS = the devhost process.
- **SDK**: ``ContainerClient.upload_blob`` of the same file in :mod:`benchmarks.sdk_worker` (a
  subprocess). Time = the ``upload_blob`` call, measured inside the worker. RSS = the worker.

RSS is sampled by :class:`benchmarks.rss.RssPeak` from just before each upload until it returns:
``Δ`` = peak − RSS just before that upload, ``peak`` = absolute peak. Both processes are warmed
up first (one small upload each). Blob-trigger polling is off for the run (see
:mod:`benchmarks.stack`), so the trigger re-reading the blob is not counted.
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import MB, MIB, heading, table
from benchmarks.rss import RssPeak
from benchmarks.stack import StackSettings, devhost_subprocess
from benchmarks.timed_session import TimedSession
from benchmarks.workers import LineWorker
from client.device_api import DeviceClient
from client.keys import generate_private_key

REPEATS = {1_000_000: 5, 50_000_000: 3}
SDK_CONTAINER = "bench-sdk"


@dataclass
class Series:
    """Runs of one (path, size): seconds per run, RSS Δ and peak per run (bytes)."""

    path: str
    size: int
    seconds: list[float] = field(default_factory=list)
    post_seconds: list[float] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    baselines: list[int] = field(default_factory=list)

    def add(self, seconds: float, rss: RssPeak) -> None:
        self.seconds.append(seconds)
        self.deltas.append(rss.delta)
        self.peaks.append(rss.best_peak)
        self.baselines.append(rss.baseline)

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / statistics.median(self.seconds)

    @property
    def post_mb_per_s(self) -> float | None:
        return self.size / MB / statistics.median(self.post_seconds) if self.post_seconds else None


class SdkWorker(LineWorker):
    """The :mod:`benchmarks.sdk_worker` subprocess."""

    def __init__(self, connection_string: str, container: str) -> None:
        super().__init__("benchmarks.sdk_worker", connection_string, container)

    def upload(self, path: Path, blob_name: str, *blocks: int) -> float:
        """Seconds of one ``upload_blob``; ``blocks`` = ``(concurrency, block bytes)`` for a block upload."""
        return float(self.ask("\t".join([str(path), blob_name, *map(str, blocks)]))["seconds"])


def run(stack: StackSettings, workdir: Path) -> list[Series]:
    """Measure and print; returns one :class:`Series` per (path, size)."""
    files = {}
    for size in REPEATS:
        path = workdir / f"payload-{size // MB}MB.bin"
        path.write_bytes(os.urandom(size))
        files[size] = path
    warm = workdir / "warm-up.bin"
    warm.write_bytes(os.urandom(1024))

    results: list[Series] = []
    with devhost_subprocess(stack, workdir / "devhost.log") as host:
        worker = SdkWorker(stack.storage_connection_string, SDK_CONTAINER)
        try:
            session = TimedSession()
            device = DeviceClient(host.base_url, f"bench-up-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(32),
                                  generate_private_key("p256"), session=session, timeout=300)
            device.register()
            device.attest()
            device.upload(warm)
            for size, repeats in REPEATS.items():
                via_devhost, via_sdk = Series("devhost + client", size), Series("plain SDK upload_blob", size)
                for i in range(repeats):
                    with RssPeak(host.process) as rss:
                        start = time.perf_counter()
                        device.upload(files[size])
                        seconds = time.perf_counter() - start
                    via_devhost.add(seconds, rss)
                    via_devhost.post_seconds.append(session.last("POST", "/upload-file").ms / 1000)
                    with RssPeak(worker.process) as rss:
                        seconds = worker.upload(files[size], f"run-{size}-{i}")
                    via_sdk.add(seconds, rss)
                results += [via_devhost, via_sdk]
        finally:
            worker.close()
    _print(results)
    return results


def _print(results: list[Series]) -> None:
    heading("Upload throughput and peak RSS (devhost subprocess vs. plain SDK subprocess)")
    rows = []
    for s in results:
        rows.append([
            s.path, f"{s.size / MB:g} MB", len(s.seconds), statistics.median(s.seconds) * 1000, s.mb_per_s,
            s.post_mb_per_s if s.post_mb_per_s is not None else "-",
            s.baselines[0] / MIB, max(s.deltas) / MIB, max(s.peaks) / MIB,
        ])
    table(["path", "size", "N", "median ms", "MB/s", "POST MB/s", "RSS before MiB", "max ΔRSS MiB", "max peak MiB"],
          rows)
    print("MB/s = size / median time (MB = 10^6 B). devhost time = whole DeviceClient.upload() (hash, challenge,\n"
          "sign, streamed multipart POST); 'POST MB/s' = the POST /upload-file request alone. SDK time = upload_blob()\n"
          "with defaults. RSS of the receiving process (devhost) or of the SDK worker; 'RSS before' = before the\n"
          "first run of that size; ΔRSS = peak − RSS just before each run.", flush=True)
