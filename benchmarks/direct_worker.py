"""Subprocess for the device side of the direct-upload benchmark:
``python -m benchmarks.direct_worker URL HOME [STORAGE_PID]``.

Registers and attests a fresh device at ``URL`` (state and pending uploads under ``HOME``),
prints ``ready``, then for each stdin line ``<path>`` (or ``sdk\t<path>``) runs the steps of
:func:`client.direct_upload.direct_upload` one by one, timing each: hash + grant
(:func:`~client.direct_upload.prepare_direct_upload`), blocks + commit
(:func:`~client.direct_upload.send_blocks`, 4 at once), commit → ``verified``
(:func:`~client.direct_upload.wait_for_verdict`, polling at most every 0.1 s). With
``STORAGE_PID`` (Azurite's process) it also reports the CPU seconds that process spent during
the block transfer. With ``sdk``, the block transfer is a plain ``upload_blob`` (8 MiB blocks,
``max_concurrency`` 4) through the same kind of upload URL instead, so the two client paths can
be compared with the same storage authorisation. Prints one JSON line per file. A separate process so the parent can measure
the client's RSS alone.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

import psutil
from azure.storage.blob import BlobClient

from client.device_api import DeviceClient
from client.direct_upload import forget_pending, prepare_direct_upload, send_blocks, wait_for_verdict
from client.keys import generate_private_key

CONCURRENCY = 4


def cpu_seconds(process: psutil.Process | None) -> float:
    """User + system CPU seconds of ``process`` (0 without one)."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def main(argv: list[str]) -> int:
    url, home, *pid = argv
    storage = psutil.Process(int(pid[0])) if pid else None
    device = DeviceClient(url, f"bench-direct-{secrets.token_hex(4)}", secrets.token_urlsafe(32),
                          generate_private_key("p256"), timeout=120)
    device.register()
    device.attest()
    print("ready", flush=True)
    for line in sys.stdin:
        *mode, path = line.rstrip("\n").split("\t")
        start = time.perf_counter()
        prepared = prepare_direct_upload(device, path, home=home)
        granted, storage_before = time.perf_counter(), cpu_seconds(storage)
        block_size = int(prepared.grant["block_size"])
        if mode == ["sdk"]:
            blob = BlobClient.from_blob_url(prepared.grant["upload_url"], max_block_size=block_size,
                                            max_single_put_size=block_size)
            with open(prepared.path, "rb") as handle:
                blob.upload_blob(handle, length=prepared.size, overwrite=True, max_concurrency=CONCURRENCY)
        else:
            send_blocks(prepared.grant["upload_url"], prepared.path, prepared.size, block_size, concurrency=CONCURRENCY)
        committed, storage_cpu = time.perf_counter(), cpu_seconds(storage) - storage_before
        state = wait_for_verdict(device, prepared.grant["upload_id"], max_interval=0.1)
        done = time.perf_counter()
        forget_pending(home, prepared.grant["upload_id"])
        print(json.dumps({
            "state": state.get("state"), "seconds": done - start, "prepare_seconds": granted - start,
            "transfer_seconds": committed - granted, "verification_seconds": done - committed,
            "storage_cpu_seconds": storage_cpu, "blob_name": f"{device.deviceid}/{prepared.grant['upload_id']}",
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
