"""Subprocess for the plain-SDK side of the upload benchmark: ``python -m benchmarks.sdk_worker CONN CONTAINER``.

Creates the container (if missing) and does one small warm-up upload, prints ``ready``, then
for each stdin line ``<path>\\t<blob name>`` uploads that file with a plain
``ContainerClient.upload_blob(name, handle, length=size, overwrite=True)`` (SDK defaults: a
single Put Blob up to 64 MiB) and prints ``{"seconds": ..., "bytes": ...}`` as one JSON line,
timing only the ``upload_blob`` call with :func:`time.perf_counter`. A separate process so the
parent can measure its RSS alone, as it does for the devhost process.
"""

from __future__ import annotations

import json
import os
import sys
import time

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient


def main(argv: list[str]) -> int:
    connection_string, container = argv
    client = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    client.upload_blob("warm-up", b"x" * 1024, overwrite=True)
    print("ready", flush=True)
    for line in sys.stdin:
        path, blob_name, *blocks = line.rstrip("\n").split("\t")
        target, options = client, {}
        if blocks:
            concurrency, block_bytes = int(blocks[0]), int(blocks[1])
            target = BlobServiceClient.from_connection_string(
                connection_string, max_block_size=block_bytes, max_single_put_size=block_bytes,
            ).get_container_client(container)
            options = {"max_concurrency": concurrency}
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = time.perf_counter()
            target.upload_blob(blob_name, handle, length=size, overwrite=True, **options)
            seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "bytes": size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
