"""One version of a blob, read or copied without ever holding it whole: a streaming SHA-256 over
ranged reads, and a server-side copy that the service refuses if the source has changed.

Both are pinned to the source's ETag (the version that was measured), so a blob rewritten half
way never mixes two versions: every ranged read carries ``If-Match`` and every Put Block From
URL carries ``x-ms-source-if-match``; a change surfaces as :class:`SourceChanged`.

The copy stages the source in ranges with Put Block From URL and commits them with Put Block
List. One Put Blob From URL call would do for sources up to 5000 MiB, but the direct-upload limit
(``MAX_DIRECT_UPLOAD_BYTES``, 5 GiB by default) is larger and Azurite does not implement Put Blob
From URL, so there is one code path for every size and both services. References (Blob service
REST API): "Put Block From URL" (source range up to 4000 MiB, ``x-ms-source-if-match``),
"Put Block List", "Get Blob" (``Range``, ``If-Match``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContentSettings

from shared_code.platform import blobs

READ_CHUNK_BYTES = 1024 * 1024  # x READ_DEPTH in flight: the verifier's memory, whatever the blob size
READ_DEPTH = 4
COPY_BLOCK_BYTES = 32 * 1024 * 1024
COPY_CONCURRENCY = 4
# A Put Block From URL answers only once the service has fetched the whole range: seconds in Azure,
# tens of seconds on a loaded Azurite (it fetches from itself). The client-wide read timeout
# (STORAGE_TIMEOUT_SECONDS, sized for ordinary calls) is too short for that; the service itself
# allows a block write 10 minutes per MiB ("Setting timeouts for Blob service operations").
COPY_READ_TIMEOUT_SECONDS = 300


class SourceChanged(Exception):
    """The source blob no longer has the ETag that was measured (rewritten or deleted)."""


def sha256_of_version(client: BlobClient, etag: str, size: int,
                      chunk_bytes: int = READ_CHUNK_BYTES, depth: int = READ_DEPTH) -> str:
    """Lowercase hex SHA-256 of the ``size`` bytes of ``client``'s blob at ``etag``.

    Reads ``chunk_bytes`` ranges, at most ``depth`` in flight, hashed in order: memory stays at
    about ``chunk_bytes * depth`` whatever the size. Raises :class:`SourceChanged` when the blob
    changes or disappears during the read, and
    :class:`~shared_code.platform.errors.ServiceUnavailable` on a storage fault.
    """
    digest = hashlib.sha256()
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="blob-read") as pool:
        window: deque[Future[bytes]] = deque()
        try:
            for offset in range(0, size, chunk_bytes):
                window.append(pool.submit(_read_range, client, etag, offset, min(chunk_bytes, size - offset)))
                if len(window) >= depth:
                    digest.update(window.popleft().result())
            while window:
                digest.update(window.popleft().result())
        finally:
            for future in window:
                future.cancel()
    return digest.hexdigest()


def _read_range(client: BlobClient, etag: str, offset: int, length: int) -> bytes:
    with blobs.storage_errors("blob read"):
        try:
            data = client.download_blob(offset=offset, length=length, etag=etag,
                                        match_condition=MatchConditions.IfNotModified, max_concurrency=1).readall()
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise SourceChanged(client.blob_name) from exc
    if len(data) != length:
        raise SourceChanged(client.blob_name)
    return data


def copy_version(source: BlobClient, source_url: str, etag: str, size: int, destination: BlobClient, *,
                 metadata: Mapping[str, str], content_type: str,
                 block_bytes: int = COPY_BLOCK_BYTES, concurrency: int = COPY_CONCURRENCY) -> bool:
    """Copy ``source`` (readable at ``source_url``, e.g. a read SAS) at ``etag`` to a new blob
    ``destination`` of ``size`` bytes with ``metadata`` and ``content_type``, server side.

    The destination appears only at the final Put Block List, with ``If-None-Match: *``: it is
    never overwritten and never seen half written. Returns ``True`` when this call created it,
    ``False`` when it already existed (a previous attempt committed it; the caller decides
    whether it is the same copy). Raises :class:`SourceChanged` when any range no longer
    matches ``etag`` (nothing is committed then; staged blocks stay uncommitted and invisible,
    and the next attempt restages them under the same ids), and
    :class:`~shared_code.platform.errors.ServiceUnavailable` on a storage fault.

    If the process dies after the commit, the destination exists and a retry returns ``False``;
    before it, nothing is visible and a retry copies again.
    """
    ranges = [(offset, min(block_bytes, size - offset)) for offset in range(0, size, block_bytes)]
    block_ids = [f"{index:05d}" for index in range(len(ranges))]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="blob-copy") as pool:
        futures = [pool.submit(_stage_range, destination, block_id, source_url, etag, offset, length)
                   for block_id, (offset, length) in zip(block_ids, ranges)]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()
    with blobs.storage_errors("blob commit"):
        try:
            destination.commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in block_ids], metadata=dict(metadata),
                content_settings=ContentSettings(content_type=content_type),
                match_condition=MatchConditions.IfMissing,
            )
        except (ResourceExistsError, ResourceModifiedError):
            return False
    return True


def _stage_range(destination: BlobClient, block_id: str, source_url: str, etag: str, offset: int, length: int) -> None:
    with blobs.storage_errors("blob stage from URL"):
        try:
            # The SDK has no keyword for the source conditions of Put Block From URL; the header
            # is the REST API's own (x-ms-source-if-match), passed through azure-core's headers.
            destination.stage_block_from_url(block_id, source_url, source_offset=offset, source_length=length,
                                             headers={"x-ms-source-if-match": etag},
                                             read_timeout=COPY_READ_TIMEOUT_SECONDS)
        except HttpResponseError as exc:
            # 412 SourceConditionNotMet: rewritten; 404 CannotVerifyCopySource: deleted. Anything
            # else (403 on the source URL, 5xx) is a fault, not a change.
            if exc.status_code in (404, 412):
                raise SourceChanged(destination.blob_name) from exc
            raise
