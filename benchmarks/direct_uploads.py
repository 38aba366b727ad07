"""Direct-to-blob uploads: the client straight to Azurite vs. a plain SDK ``upload_blob`` of the same bytes.

For each size in :data:`REPEATS` (random bytes in a temp file; MB = 10^6 B, MiB = 2^20 B),
against the same Azurite, the two sides alternating (which goes first alternates too):

- **direct**: :mod:`benchmarks.direct_worker` (a subprocess) runs the steps of
  :func:`client.direct_upload.direct_upload` against a ``python -m devhost run`` subprocess that
  polls the staging container every :data:`POLL_SECONDS`: hash, grant, 8 MiB blocks 4 at a time
  straight to the SAS URL, commit, then wait for ``verified``. ``transfer`` = blocks + commit;
  ``to verified`` = commit → the client sees ``verified`` (devhost's poll, the ETag-pinned
  SHA-256 of the staged blob, the server-side copy, the record); ``total`` = the whole call.
- **SDK**: :mod:`benchmarks.sdk_worker` uploads the same file with ``upload_blob`` in 8 MiB blocks
  with ``max_concurrency=4`` (the direct client's settings), with the account key.
- **SDK through a SAS**: the same ``upload_blob`` through a grant's upload URL (what a device
  using the plain SDK would do), so the auth cost Azurite adds to SAS requests is on both sides.

RSS (:class:`benchmarks.rss.RssPeak`): the devhost's growth (peak − before) from the grant to the
verdict, which covers the verifier; the client worker's absolute peak. Targets:
transfer throughput ≥ 0.9× the SDK's, devhost growth < 10 MiB at any size, client peak < 150 MiB
for 1 GB. The machine's load average is printed with the figures: wall-clock ratios are only as
good as the quiet of the machine.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.report import MB, MIB, heading, table
from benchmarks.rss import RssPeak
from benchmarks.stack import StackSettings, devhost_subprocess
from benchmarks.workers import LineWorker
from shared_code.platform import blobs
from shared_code.platform.config import get_settings

REPEATS = {50_000_000: 3, 1_000_000_000: 2}
POLL_SECONDS = 0.2
CONCURRENCY = 4
BLOCK_BYTES = 8 * 1024 * 1024
SDK_CONTAINER = "bench-sdk"


@dataclass
class DirectSeries:
    """Runs of one size: seconds per phase, RSS figures (bytes), the SDK's seconds, load averages."""

    size: int
    total: list[float] = field(default_factory=list)
    transfer: list[float] = field(default_factory=list)
    to_verified: list[float] = field(default_factory=list)
    sdk: list[float] = field(default_factory=list)
    host_growth: list[int] = field(default_factory=list)
    client_peak: list[int] = field(default_factory=list)
    sdk_peak: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    storage_cpu: list[float] = field(default_factory=list)  # Azurite CPU seconds during the direct transfer
    sas_sdk: list[float] = field(default_factory=list)  # upload_blob through an upload URL (same SAS auth)
    sdk_storage_cpu: list[float] = field(default_factory=list)  # ... during the SDK upload

    def mb_per_s(self, seconds: list[float]) -> float:
        return self.size / MB / statistics.median(seconds)

    @property
    def ratio(self) -> float:
        """Direct transfer throughput / SDK throughput (same bytes, same concurrency)."""
        return statistics.median(self.sdk) / statistics.median(self.transfer)

    @property
    def sas_ratio(self) -> float:
        """Direct transfer throughput / ``upload_blob`` through the same kind of upload URL."""
        return statistics.median(self.sas_sdk) / statistics.median(self.transfer)

    @property
    def cpu_ratio(self) -> float:
        """Storage CPU per byte, SDK / direct: the throughput ratio when the storage's CPU is the
        bottleneck (it is for Azurite, a single Node.js process), free of other load's noise."""
        return statistics.median(self.sdk_storage_cpu) / statistics.median(self.storage_cpu)


def _azurite() -> psutil.Process:
    """The Azurite process :func:`benchmarks.stack.emulators` started (a child of this process)."""
    for child in psutil.Process().children(recursive=True):
        if "azurite" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("no Azurite child process")


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for offset in range(0, size, 16 * 1024 * 1024):
            handle.write(os.urandom(min(16 * 1024 * 1024, size - offset)))


def run(stack: StackSettings, workdir: Path) -> list[DirectSeries]:
    """Measure and print; returns one :class:`DirectSeries` per size."""
    results = []
    uploads = blobs.container_client(get_settings().uploads_container)
    with devhost_subprocess(stack, workdir / "devhost-direct.log", blob_poll_seconds=POLL_SECONDS) as host:
        azurite = _azurite()
        client = LineWorker("benchmarks.direct_worker", host.base_url, str(workdir / "direct-home"), str(azurite.pid))
        sdk = LineWorker("benchmarks.sdk_worker", stack.storage_connection_string, SDK_CONTAINER)
        try:
            warm = workdir / "direct-warm.bin"
            _write_random(warm, 9 * 1024 * 1024)
            client.ask(str(warm))
            sdk.ask(f"{warm}\twarm\t{CONCURRENCY}\t{BLOCK_BYTES}")
            for size, repeats in REPEATS.items():
                path = workdir / f"direct-{size // MB}MB.bin"
                _write_random(path, size)
                series = DirectSeries(size)
                for i in range(repeats):
                    series.load.append(os.getloadavg()[0])
                    # Alternate which side goes first, so neither always runs after the other's clean-up.
                    for side in ("direct", "sdk", "sas") if i % 2 == 0 else ("sas", "sdk", "direct"):
                        if side == "direct":
                            _direct_run(client, host.process, uploads, path, series)
                        elif side == "sas":
                            answer = client.ask(f"sdk\t{path}")
                            series.sas_sdk.append(answer["transfer_seconds"])
                            uploads.delete_blob(answer["blob_name"])
                        else:
                            _sdk_run(sdk, azurite, path, f"direct-{size}-{i}", series)
                path.unlink()
                results.append(series)
        finally:
            client.close()
            sdk.close()
    _print(results)
    return results


def _direct_run(client: LineWorker, host: psutil.Process, uploads, path: Path, series: DirectSeries) -> None:
    with RssPeak(host) as host_rss, RssPeak(client.process) as client_rss:
        answer = client.ask(str(path))
    if answer["state"] != "verified":
        raise RuntimeError(f"direct upload ended {answer['state']}")
    series.total.append(answer["seconds"])
    series.transfer.append(answer["transfer_seconds"])
    series.to_verified.append(answer["verification_seconds"])
    series.storage_cpu.append(answer["storage_cpu_seconds"])
    series.host_growth.append(host_rss.delta)
    series.client_peak.append(client_rss.best_peak)
    uploads.delete_blob(answer["blob_name"])  # keep the in-memory Azurite small


def _sdk_run(sdk: LineWorker, azurite: psutil.Process, path: Path, blob: str, series: DirectSeries) -> None:
    with RssPeak(sdk.process) as sdk_rss:
        before = _cpu(azurite)
        series.sdk.append(float(sdk.ask(f"{path}\t{blob}\t{CONCURRENCY}\t{BLOCK_BYTES}")["seconds"]))
        series.sdk_storage_cpu.append(_cpu(azurite) - before)
    series.sdk_peak.append(sdk_rss.best_peak)
    blobs.container_client(SDK_CONTAINER).delete_blob(blob)


def _print(results: list[DirectSeries]) -> None:
    heading("Direct uploads: client → Azurite via a grant, vs. plain SDK upload_blob (8 MiB blocks, 4 at once)")
    rows = []
    for s in results:
        rows.append([
            f"{s.size / MB:g} MB", len(s.total), s.mb_per_s(s.transfer), s.mb_per_s(s.sdk), s.ratio, s.cpu_ratio,
            s.mb_per_s(s.sas_sdk), s.sas_ratio,
            s.mb_per_s(s.total), statistics.median(s.to_verified), max(s.host_growth) / MIB,
            max(s.client_peak) / MIB, max(s.sdk_peak) / MIB, max(s.load),
        ])
    table(["size", "N", "direct MB/s", "SDK MB/s", "ratio", "CPU ratio", "SDK/SAS MB/s", "ratio/SAS",
           "end-to-end MB/s", "to verified s",
           "host ΔRSS MiB", "client peak MiB", "SDK peak MiB", "load 1m"], rows)
    print("direct MB/s = size / median transfer time (blocks + commit); ratio = direct / SDK MB/s; CPU ratio = Azurite\n"
          "CPU seconds of the SDK upload / of the direct transfer (the storage process is the bottleneck on loopback,\n"
          "and CPU time does not depend on the machine's other load). SDK/SAS = upload_blob through an upload URL\n"
          "(same blocks, concurrency and SAS authorisation as the direct client). end-to-end adds hashing the file, the grant\n"
          "and waiting for 'verified'; 'to verified' = commit → verified as the client sees it (devhost polls the\n"
          f"staging container every {POLL_SECONDS} s). host ΔRSS = devhost peak − before, grant to verdict; client/SDK\n"
          "peak = absolute RSS of the worker process. load 1m = the machine's 1-minute load average at the start\n"
          "of a run (2 cores: above ~2 the figures are contended).", flush=True)


def summary_lines(results: list[DirectSeries]) -> list[str]:
    """One line per size for the ``make bench`` summary."""
    return [
        f"direct upload {s.size / MB:g} MB (N={len(s.total)}): {s.mb_per_s(s.transfer):.0f} MB/s vs SDK "
        f"{s.mb_per_s(s.sdk):.0f} MB/s ({s.ratio:.2f}x; by storage CPU {s.cpu_ratio:.2f}x; vs upload_blob through "
        f"the same SAS {s.mb_per_s(s.sas_sdk):.0f} MB/s, {s.sas_ratio:.2f}x), end-to-end {s.mb_per_s(s.total):.0f} MB/s, verified "
        f"{statistics.median(s.to_verified):.1f} s after the commit, devhost +{max(s.host_growth) / MIB:.1f} MiB, "
        f"client peak {max(s.client_peak) / MIB:.0f} MiB, load {max(s.load):.1f}"
        for s in results
    ]
