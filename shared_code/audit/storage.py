"""Where the audit log lives: blobs in ``AUDIT_CONTAINER`` and two small Cosmos state items.

Blobs (the container has a time-based immutability policy allowing protected appends in Azure,
so nothing here is ever overwritten or deleted, only created and appended to):

- ``log/{segment:06d}.bin``: append blob of length-prefixed records (:mod:`.entries`); segment k
  holds exactly the entries ``seq`` in ``[k * SEGMENT_ENTRIES, (k + 1) * SEGMENT_ENTRIES)``, one
  Append Block each, so a segment has at most 8,192 of the service's 50,000 blocks.
- ``tiles/0/{index:09d}``: block blob, the 256 leaf hashes of entries ``[256 i, 256 i + 256)``
  (8 KiB), metadata ``offset`` = byte offset of entry ``256 i`` in its segment; written once,
  when the tile is complete.
- ``tiles/{level}/{index:09d}`` (level >= 1): append blob of the hashes of the tree nodes at height
  ``8 * level`` with indices ``[256 i, 256 i + 256)``, 32 bytes each, appended as they complete.
  (The C2SP tlog-tiles layout of tile height 8, with partial upper tiles as append blobs.)
- ``checkpoints/{segment:06d}.bin``: append blob of length-prefixed signed checkpoints.

Cosmos container ``audit_state`` (partition ``/id``): item ``log`` (the tree state, see
:mod:`.sequencer`) and item ``checkpoint`` (the latest published checkpoint). Both are caches of
what the blobs say and can always be rebuilt forward from them. Container ``audit_index``
(partition ``/subject``): one item per (subject, seq), e.g. a device's entries.

Every SDK failure becomes :class:`~shared_code.platform.errors.ServiceUnavailable` (503).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Iterator

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared_code.audit.entries import decode_records
from shared_code.platform import blobs
from shared_code.platform.config import get_settings

SEGMENT_ENTRIES = 8192
TILE_WIDTH = 256
TILE_HEIGHT = 8
HASH_BYTES = 32
CHECKPOINT_SEGMENT_RECORDS = 10_000
READ_WINDOW_BYTES = 1024 * 1024
_CACHED_TILES = 512


class PositionTaken(Exception):
    """An append with ``appendpos_condition`` found the blob longer than expected (HTTP 412):
    another writer (or an earlier attempt of this one whose answer was lost) got there first."""


def container() -> ContainerClient:
    return blobs.container_client(get_settings().audit_container)


def log_segment(segment: int) -> str:
    return f"log/{segment:06d}.bin"


def checkpoint_segment(segment: int) -> str:
    return f"checkpoints/{segment:06d}.bin"


def tile_name(level: int, index: int) -> str:
    return f"tiles/{level}/{index:09d}"


def append_at(name: str, data: bytes, position: int) -> None:
    """Append ``data`` as one block to append blob ``name`` if and only if it is exactly
    ``position`` bytes long (``x-ms-blob-condition-appendpos``); creates the blob (never
    truncating one) when it does not exist yet and ``position`` is 0.

    Raises :class:`PositionTaken` on 412, :class:`ServiceUnavailable` on any other failure. The
    SDK's own retries are safe: a retried block that had landed meets the condition as 412. If
    the call times out, the block may still land later; the caller's next attempt at the same
    position then gets :class:`PositionTaken` and reads what is there.
    """
    client = container().get_blob_client(name)
    with blobs.storage_errors("audit append"):
        for _ in range(2):
            try:
                client.append_block(data, length=len(data), appendpos_condition=position)
                return
            except ResourceNotFoundError as exc:
                if exc.error_code != "BlobNotFound" or position != 0:
                    raise
                try:
                    client.create_append_blob(if_none_match="*")
                except ResourceExistsError:
                    pass
            except HttpResponseError as exc:
                if exc.status_code == 412:
                    raise PositionTaken(name) from None
                raise
        raise PositionTaken(name)


def read_bytes(name: str, offset: int = 0, length: int | None = None) -> bytes:
    """Bytes ``[offset, offset + length)`` of blob ``name`` (to its end when ``length`` is None);
    ``b""`` when the blob does not exist or ends before ``offset``."""
    with blobs.storage_errors("audit read"):
        try:
            return container().get_blob_client(name).download_blob(offset=offset, length=length).readall()
        except ResourceNotFoundError:
            return b""
        except HttpResponseError as exc:
            if exc.status_code == 416:  # offset at (or past) the end
                return b""
            raise


def iter_records(name_of: Callable[[int], str], seq: int, offset: int, per_segment: int,
                 ) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(seq, next offset, entry)`` for every record stored from position ``(seq, offset)``
    on: ``seq`` is the next record's number, ``offset`` its byte offset in segment
    ``seq // per_segment`` (0 at a segment boundary), ``name_of(segment)`` names the segment blob.
    ``next offset`` is where the record after it goes (0 when it starts a new segment).

    Raises ``ValueError`` for bytes that are not whole records (a corrupt segment)."""
    while True:
        data = read_bytes(name_of(seq // per_segment), offset, READ_WINDOW_BYTES)
        if not data:
            return
        consumed = 0
        for end, entry in decode_records(data):
            consumed = end
            seq += 1
            yield seq - 1, 0 if seq % per_segment == 0 else offset + end, entry
            if seq % per_segment == 0:
                break
        if consumed == 0:
            raise ValueError(f"{name_of(seq // per_segment)}: no whole record at byte {offset}")
        offset = 0 if seq % per_segment == 0 else offset + consumed


# -- tiles -----------------------------------------------------------------------------------------

_tile_lock = threading.Lock()
_full_tiles: OrderedDict[tuple[int, int], bytes] = OrderedDict()


def read_tile(level: int, index: int) -> bytes:
    """The hashes stored in tile ``(level, index)`` (``b""`` if none yet). Full tiles never change
    and are cached in the process."""
    key = (level, index)
    with _tile_lock:
        if key in _full_tiles:
            _full_tiles.move_to_end(key)
            return _full_tiles[key]
    data = read_bytes(tile_name(level, index))
    if len(data) == TILE_WIDTH * HASH_BYTES:  # full: immutable from now on
        with _tile_lock:
            _full_tiles[key] = data
            while len(_full_tiles) > _CACHED_TILES:
                _full_tiles.popitem(last=False)
    return data


def forget_tiles() -> None:
    """Empty the process cache of full tiles."""
    with _tile_lock:
        _full_tiles.clear()


def tile_offset(index: int) -> int | None:
    """The ``offset`` metadata of level-0 tile ``index`` (where its first entry starts), or None."""
    with blobs.storage_errors("audit read"):
        try:
            properties = container().get_blob_client(tile_name(0, index)).get_blob_properties()
        except ResourceNotFoundError:
            return None
    return int(properties.metadata["offset"])


def write_leaf_tile(index: int, hashes: bytes, offset: int) -> None:
    """Create level-0 tile ``index`` (256 leaf hashes); an existing identical tile is success.

    Raises ``ValueError`` if a different tile is already stored (never overwritten)."""
    client = container().get_blob_client(tile_name(0, index))
    with blobs.storage_errors("audit tile"):
        try:
            client.upload_blob(hashes, overwrite=False, metadata={"offset": str(offset)})
        except ResourceExistsError:
            if read_bytes(tile_name(0, index)) != hashes:
                raise ValueError(f"level-0 tile {index} is stored with other hashes") from None


def append_tile_hash(level: int, index: int, slot: int, node: bytes) -> None:
    """Store ``node`` at ``slot`` of upper tile ``(level, index)``; idempotent (a repeat finds the
    same hash there). Raises ``ValueError`` if another hash holds the slot, or if an earlier slot
    is still missing (the caller folds in order, so that would be a bug)."""
    name = tile_name(level, index)
    try:
        append_at(name, node, slot * HASH_BYTES)
    except PositionTaken:
        stored = read_bytes(name, slot * HASH_BYTES, HASH_BYTES)
        if stored != node:
            raise ValueError(f"tile {level}/{index} slot {slot}: stored hash differs or slots are missing") from None
